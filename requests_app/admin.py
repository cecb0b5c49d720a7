from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from requests_app.models import DeploymentRequest


@admin.register(DeploymentRequest)
class DeploymentRequestAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "request_id",
        "user",
        "action",
        "deployment_link",
        "status",
        "attempts",
        "created_at",
        "published_at",
        "finished_at",
        "short_error",
    ]
    list_filter = ["status", "action", "namespace"]
    search_fields = ["request_id", "identifier", "user__user_external_id", "correlation_id"]
    ordering = ["-created_at", "-id"]
    list_select_related = ["user", "deployment"]
    list_per_page = 100
    show_full_result_count = False  # a COUNT(*) over 100k+ rows on every page is wasted work
    readonly_fields = [
        "request_id",
        "user",
        "deployment_link",
        "identifier",
        "namespace",
        "action",
        "status",
        "payload",
        "config",
        "payload_hash",
        "error",
        "attempts",
        "resource_version",
        "correlation_id",
        "created_at",
        "published_at",
        "started_at",
        "finished_at",
    ]
    exclude = ["deployment"]

    def has_add_permission(self, request):
        # Requests enter through the API, which validates them and queues them in one transaction.
        return False

    @admin.display(description="Deployment", ordering="identifier")
    def deployment_link(self, obj: DeploymentRequest):
        url = reverse("admin:deployments_app_deployment_change", args=[obj.deployment_id])
        return format_html('<a href="{}">{}</a>', url, obj.identifier)

    @admin.display(description="Error")
    def short_error(self, obj: DeploymentRequest) -> str:
        return obj.error[:80]
