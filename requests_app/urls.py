"""/api/v1/ routes of requests (included by k8sdm/api/urls.py under the `api-v1` namespace)."""

from django.urls import path

from requests_app.views import DeploymentRequestCommandViewSet, DeploymentRequestViewSet, RevisionViewSet

urlpatterns = [
    path(
        "deployments/requests/create",
        DeploymentRequestCommandViewSet.as_view({"post": "create"}),
        name="deployment-request-create",
    ),
    path(
        "deployments/requests/<str:identifier>",
        DeploymentRequestCommandViewSet.as_view({"patch": "partial_update", "delete": "destroy"}),
        name="deployment-request-change",
    ),
    path(
        "deployments/requests/<str:identifier>/rollback",
        DeploymentRequestCommandViewSet.as_view({"post": "rollback"}),
        name="deployment-request-rollback",
    ),
    path(
        "deployments/requests/<str:identifier>/restart",
        DeploymentRequestCommandViewSet.as_view({"post": "restart"}),
        name="deployment-request-restart",
    ),
    path("deployments/<str:identifier>/revisions", RevisionViewSet.as_view({"get": "list"}), name="revision-list"),
    path("deployments/<str:identifier>/revisions/<str:number>", RevisionViewSet.as_view({"get": "retrieve"}),
         name="revision-detail"),
    path("requests/", DeploymentRequestViewSet.as_view({"get": "list"}), name="request-list"),
    path("requests/<str:request_id>", DeploymentRequestViewSet.as_view({"get": "retrieve"}), name="request-detail"),
]
