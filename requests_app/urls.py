"""/api/v1/ routes of requests (included by k8sdm/api/urls.py under the `api-v1` namespace)."""

from django.urls import path

from requests_app.views import DeploymentRequestCommandViewSet, DeploymentRequestViewSet

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
    path("requests/", DeploymentRequestViewSet.as_view({"get": "list"}), name="request-list"),
    path("requests/<str:request_id>", DeploymentRequestViewSet.as_view({"get": "retrieve"}), name="request-detail"),
]
