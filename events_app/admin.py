"""Ops see every webhook and delivery; the signing secret is never shown."""

from django.contrib import admin

from events_app.models import WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "url", "active", "consecutive_failures", "failing_since", "last_success_at",
                    "created_at"]
    list_filter = ["active"]
    search_fields = ["url", "owner__user_external_id", "identifier"]
    list_select_related = ["owner"]
    exclude = ["secret"]
    readonly_fields = ["id", "owner", "failing_since", "consecutive_failures", "last_success_at", "last_failure_at",
                       "disabled_at", "created_at", "updated_at"]
    ordering = ["-created_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "endpoint", "event_id", "event_kind", "identifier", "status", "attempts", "response_code",
                    "duration_ms", "created_at", "finished_at"]
    list_filter = ["status", "event_kind"]
    search_fields = ["identifier", "endpoint__url", "endpoint__owner__user_external_id"]
    list_select_related = ["endpoint"]
    ordering = ["-created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
