"""/api/v1/ routes of tokens (included by k8sdm/api/urls.py under the `api-v1` namespace)."""

from django.urls import path

from users_app.views import ApiTokenViewSet

urlpatterns = [
    path("tokens/", ApiTokenViewSet.as_view({"get": "list", "post": "create"}), name="token-list"),
    path("tokens/<str:id>", ApiTokenViewSet.as_view({"delete": "destroy"}), name="token-detail"),
]
