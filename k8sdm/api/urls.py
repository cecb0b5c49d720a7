"""/api/v1/ (namespace `api-v1`), the schema and the docs page."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from deployments_app.views import DeploymentViewSet
from k8sdm.api.docs import OfflineRedocView
from k8sdm.api.index import ApiIndexView

v1_patterns = [
    path("", ApiIndexView.as_view(), name="index"),
    path("", include("requests_app.urls")),
    path("", include("users_app.urls")),
    path("", include("events_app.urls")),
    path("deployments/", DeploymentViewSet.as_view({"get": "list"}), name="deployment-list"),
    path("deployments/<str:identifier>", DeploymentViewSet.as_view({"get": "retrieve"}), name="deployment-detail"),
    path("deployments/<str:identifier>/diagnosis", DeploymentViewSet.as_view({"get": "diagnosis"}),
         name="deployment-diagnosis"),
    path("deployments/<str:identifier>/logs", DeploymentViewSet.as_view({"get": "logs"}), name="deployment-logs"),
]

# The schema and docs are public (no identity header) and not rate limited.
_public = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}

urlpatterns = [
    path("v1/", include((v1_patterns, "api-v1"))),
    path("schema/", SpectacularAPIView.as_view(**_public), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema", **_public), name="api-docs"),
    path("redoc/", OfflineRedocView.as_view(url_name="schema", **_public), name="api-redoc"),
]
