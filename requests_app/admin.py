from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from requests_app.models import DeploymentRequest, RequestStatus
from requests_app.outbox import message_for
from requests_app.publishing import publish_now


class OutboxFilter(admin.SimpleListFilter):
    title = "outbox"
    parameter_name = "outbox"

    def lookups(self, request, model_admin):
        return [("pending", "not yet published"), ("published", "published")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(published_at__isnull=True)
        if self.value() == "published":
            return queryset.filter(published_at__isnull=False)
        return queryset


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
    list_filter = ["status", "action", "namespace", OutboxFilter]
    actions = ["publish_again"]
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

    @admin.action(description="Publish the selected pending requests to JetStream again")
    def publish_again(self, request, queryset):
        """For a request stuck in CREATED (e.g. its message ran out of deliveries): the worker
        skips finished requests, so publishing a pending one again is always safe."""
        pending = list(queryset.filter(status=RequestStatus.CREATED))
        published = sum(1 for req in pending if publish_now(message_for(req), fresh=True))
        level = messages.SUCCESS if published == len(pending) else messages.WARNING
        self.message_user(
            request, f"published {published} of {len(pending)} pending request(s); finished ones were skipped",
            level,
        )

    @admin.display(description="Deployment", ordering="identifier")
    def deployment_link(self, obj: DeploymentRequest):
        url = reverse("admin:deployments_app_deployment_change", args=[obj.deployment_id])
        return format_html('<a href="{}">{}</a>', url, obj.identifier)

    @admin.display(description="Error")
    def short_error(self, obj: DeploymentRequest) -> str:
        return obj.error[:80]
