"""/api/v1/ routes of events and webhooks (included by k8sdm/api/urls.py under the `api-v1` namespace)."""

from django.urls import path

from events_app.views import EventStreamView, WebhookDeliveryViewSet, WebhookViewSet

urlpatterns = [
    # The stream is served by the ASGI events server (k8sdm.asgi); this route documents it.
    path("events", EventStreamView.as_view(), name="event-stream"),
    path("webhooks", WebhookViewSet.as_view({"get": "list", "post": "create"}), name="webhook-list"),
    path("webhooks/<str:webhook_id>",
         WebhookViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
         name="webhook-detail"),
    path("webhooks/<str:webhook_id>/deliveries", WebhookDeliveryViewSet.as_view({"get": "list"}),
         name="webhook-deliveries"),
]
