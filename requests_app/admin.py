"""Deployment requests in the operations console: read-only records, readable, with safe actions."""

from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from deployments_app.models import Deployment
from k8sdm.ops import dashboard, display
from k8sdm.ops.records import RecordAdmin
from k8sdm.ops.services import ActionRefused, request_retry
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


class AttentionFilter(admin.SimpleListFilter):
    """The dashboard's "needs attention" sets, as list filters it links to."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        threshold = display.seconds_text(settings.K8SDM_ADMIN_PENDING_ALERT_SECONDS)
        return [("stuck", f"pending > {threshold}"), ("failed_1h", "failed in the last hour")]

    def queryset(self, request, queryset):
        if self.value() == "stuck":
            return queryset & dashboard.stuck_requests()
        if self.value() == "failed_1h":
            return queryset & dashboard.recent_failures()
        return queryset


class NamespaceFilter(admin.SimpleListFilter):
    """The namespaces deployments live in: read from the deployments table (one row per
    deployment), not by a DISTINCT over every request ever made."""

    title = "namespace"
    parameter_name = "namespace"

    def lookups(self, request, model_admin):
        names = Deployment.objects.order_by("namespace").values_list("namespace", flat=True).distinct()
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(namespace=self.value()) if self.value() else queryset


@admin.register(DeploymentRequest)
class DeploymentRequestAdmin(RecordAdmin):
    list_display = ["id", "request_id_col", "user", "action", "deployment_link", "status_col", "created_at",
                    "duration", "short_error"]
    list_display_links = ["id", "request_id_col"]
    list_filter = ["status", "action", AttentionFilter, OutboxFilter, NamespaceFilter]
    actions = ["retry_failed", "publish_again"]
    search_fields = ["request_id", "identifier", "user__user_external_id", "correlation_id"]
    ordering = ["-created_at", "-id"]
    list_select_related = ["user"]
    object_actions = {"retry": ("retry_one", "Retry as a new request")}
    fieldsets = [
        ("Request", {"fields": ["request_id", "user", "deployment_link", "action", "status_col", "error_block",
                                "attempts", "duration"]}),
        ("What was asked", {"fields": ["payload_json", "config_json"]}),
        ("Timeline (UTC)", {"fields": ["created", "published", "started", "finished"]}),
        ("Tracing", {"fields": ["correlation_id", "resource_version", "payload_hash", "outbox_lease"]}),
    ]
    readonly_fields = ["request_id", "user", "deployment_link", "action", "status_col", "error_block", "attempts",
                       "duration", "payload_json", "config_json", "created", "published", "started", "finished",
                       "correlation_id", "resource_version", "payload_hash", "outbox_lease"]

    # --- actions ------------------------------------------------------------------------------------

    @admin.action(description="Retry the selected FAILED requests as new requests", permissions=["operate"])
    def retry_failed(self, request, queryset):
        done, refused = [], []
        for original in queryset.filter(status=RequestStatus.FAILURE).select_related("user").order_by("id"):
            try:
                done.append(request_retry(request=original, staff_user=request.user).new)
            except ActionRefused as exc:
                refused.append(f"#{original.pk}: {exc}")
        skipped = queryset.exclude(status=RequestStatus.FAILURE).count()
        if done:
            self.message_user(request, "Retried as new request(s) " + ", ".join(f"#{r.pk}" for r in done),
                              messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.ERROR)
        if skipped:
            self.message_user(request, f"{skipped} selected request(s) were not FAILED and were left alone",
                              messages.WARNING)

    def retry_one(self, request, obj):
        retried = request_retry(request=obj, staff_user=request.user)
        self.message_user(request, f"Retried request #{obj.pk} as new request #{retried.new.pk} "
                                   f"({retried.new.request_id}); the worker applies it next.", messages.SUCCESS)
        return retried.new

    def object_action_applies(self, name, obj):
        return obj.status == RequestStatus.FAILURE

    @admin.action(description="Publish the selected pending requests to JetStream again", permissions=["operate"])
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

    # --- columns and fields ---------------------------------------------------------------------------

    @admin.display(description="Request ID", ordering="request_id")
    def request_id_col(self, obj: DeploymentRequest):
        short = obj.request_id if len(obj.request_id) <= 11 else obj.request_id[:10] + "\u2026"
        return format_html('<span class="ops-id" title="{}">{}</span>', obj.request_id, short)

    @admin.display(description="Deployment", ordering="identifier")
    def deployment_link(self, obj: DeploymentRequest):
        url = reverse("admin:deployments_app_deployment_change", args=[obj.deployment_id])
        return format_html('<a href="{}">{}</a>', url, obj.identifier)

    @admin.display(description="Status", ordering="status")
    def status_col(self, obj: DeploymentRequest):
        return display.status_badge(obj.status)

    @admin.display(description="Took")
    def duration(self, obj: DeploymentRequest) -> str:
        if obj.finished_at:
            return display.between(obj.created_at, obj.finished_at)
        return "waiting " + display.between(obj.created_at, timezone.now())

    @admin.display(description="Error", empty_value="")
    def short_error(self, obj: DeploymentRequest):
        text = obj.error if len(obj.error) <= 90 else obj.error[:87] + "..."
        return format_html('<span class="ops-error" title="{}">{}</span>', obj.error, text) if text else ""

    @admin.display(description="Error")
    def error_block(self, obj: DeploymentRequest):
        return format_html('<span class="ops-error">{}</span>', obj.error) if obj.error else "-"

    @admin.display(description="Payload (what the client sent)")
    def payload_json(self, obj):
        return display.json_html(obj.payload)

    @admin.display(description="Config (what the worker applies)")
    def config_json(self, obj):
        return display.json_html(obj.config)

    @admin.display(description="Accepted")
    def created(self, obj):
        return display.timestamp(obj.created_at)

    @admin.display(description="Published to JetStream")
    def published(self, obj):
        return display.timestamp(obj.published_at) if obj.published_at else "not yet (in the outbox)"

    @admin.display(description="Last attempt started")
    def started(self, obj):
        return display.timestamp(obj.started_at)

    @admin.display(description="Finished")
    def finished(self, obj):
        return display.timestamp(obj.finished_at)

    @admin.display(description="Outbox lease until")
    def outbox_lease(self, obj):
        return display.timestamp(obj.outbox_lease_until) if obj.outbox_lease_until else "-"
