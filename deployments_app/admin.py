"""Deployments in the operations console: the cluster's mirror, read-only, with a re-sync action,
its revisions (with their diffs), and rollback and restart actions that go through the requests
service and the queue like the API's, recorded as the staff user's."""

import json
import threading

from django.contrib import admin, messages
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from deployments_app import diagnosis
from deployments_app.models import Deployment, DeploymentHealth
from k8sdm.errors import DomainError
from k8sdm.ops import display
from k8sdm.ops.records import RecordAdmin
from k8sdm.ops.services import (
    ActionRefused,
    deployment_resync,
    deployment_restart,
    deployment_revisions,
    deployment_rollback,
)

RECENT_REQUESTS = 20
REVISIONS_SHOWN = 50

# The request being rendered, for the CSRF token of the revisions table's rollback buttons.
_rendering = threading.local()


class DriftFilter(admin.SimpleListFilter):
    title = "drift"
    parameter_name = "drift"

    def lookups(self, request, model_admin):
        return [("yes", "drifted from what was asked"), ("no", "in sync")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(drift={})
        if self.value() == "no":
            return queryset.filter(drift={})
        return queryset


@admin.register(Deployment)
class DeploymentAdmin(RecordAdmin):
    list_display = ["identifier", "namespace", "owner", "status_col", "health_col", "image", "replica_counts",
                    "drift_col", "last_synced_at"]
    list_filter = ["status", "health", DriftFilter, "namespace"]
    actions = ["resync_selected"]
    search_fields = ["identifier", "owner__user_external_id", "image"]
    ordering = ["-created_at"]
    list_select_related = ["owner"]
    object_actions = {
        "resync": ("resync_one", "Re-sync from the cluster"),
        "rollback": ("rollback_one", "Roll back (to the revision before)"),
        "restart": ("restart_one", "Rolling restart"),
    }
    fieldsets = [
        ("Deployment", {"fields": ["identifier", "namespace", "owner_link", "status_col", "status_reason",
                                   "health_col", "health_reason", "drift_block", "synced"]}),
        ("Recent requests", {"fields": ["recent_requests"]}),
        ("Revisions", {"fields": ["revisions_block"]}),
        ("Replicas and rollout", {"fields": ["rollout"]}),
        ("Conditions (from the cluster)", {"fields": ["conditions_table"]}),
        ("Diagnosis (read live from the cluster)", {"fields": ["diagnosis_block", "logs_block"]}),
        ("Desired (what was last asked)", {"fields": ["desired_json"]}),
        ("Observed in the cluster", {"fields": ["image", "observed_json", "resource_version", "uid"]}),
        ("Timestamps (UTC)", {"fields": ["created", "updated"]}),
    ]
    readonly_fields = ["identifier", "namespace", "owner_link", "status_col", "status_reason", "health_col",
                       "health_reason", "drift_block", "synced", "recent_requests", "revisions_block", "rollout",
                       "conditions_table", "diagnosis_block",
                       "logs_block", "desired_json",
                       "image", "observed_json", "resource_version", "uid", "created", "updated"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            qs = qs.defer("observed_spec", "desired_config")  # the list never shows them
        return qs

    # --- actions ------------------------------------------------------------------------------------

    @admin.action(description="Re-sync the selected deployments from the cluster", permissions=["operate"])
    def resync_selected(self, request, queryset):
        asked, refused = 0, []
        for deployment in queryset.order_by("id")[:500]:
            try:
                deployment_resync(deployment=deployment, staff_user=request.user)
                asked += 1
            except ActionRefused as exc:
                refused.append(f"{deployment.identifier}: {exc}")
        if asked:
            self.message_user(request, f"Asked a worker to re-read {asked} deployment(s) from the cluster",
                              messages.SUCCESS)
        for reason in refused[:5]:
            self.message_user(request, reason, messages.ERROR)

    def resync_one(self, request, obj):
        deployment_resync(deployment=obj, staff_user=request.user)
        self.message_user(request, f"Asked a worker to re-read {obj.key} from the cluster; "
                                   "reload this page in a moment to see the result.", messages.SUCCESS)
        return obj

    def object_action_applies(self, name: str, obj) -> bool:
        return name == "resync" or obj.is_live

    def rollback_one(self, request, obj):
        raw = request.POST.get("to_revision", "")
        to_revision = int(raw) if raw.isascii() and raw.isdigit() else None
        new = deployment_rollback(deployment=obj, staff_user=request.user, to_revision=to_revision)
        self.message_user(request, f"Queued request {new.request_id}: roll {obj.key} back to revision "
                                   f"{new.rollback_of}.", messages.SUCCESS)
        return obj

    def restart_one(self, request, obj):
        new = deployment_restart(deployment=obj, staff_user=request.user)
        self.message_user(request, f"Queued request {new.request_id}: rolling restart of {obj.key}.", messages.SUCCESS)
        return obj

    def change_view(self, request, object_id, form_url="", extra_context=None):
        _rendering.request = request
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # while the request is known to the revisions table
            return response
        finally:
            _rendering.request = None

    # --- columns and fields ---------------------------------------------------------------------------

    @admin.display(description=f"Last {REVISIONS_SHOWN}")
    def revisions_block(self, obj: Deployment):
        rows = deployment_revisions(deployment=obj, limit=REVISIONS_SHOWN)
        if not rows:
            return "none yet (a revision is made by each successful create, update, rollback or restart)"
        request = getattr(_rendering, "request", None)
        can_roll_back = request is not None and obj.is_live and self.has_operate_permission(request, obj)
        action_url = reverse("admin:deployments_app_deployment_action", args=[obj.pk, "rollback"])
        token = get_token(request) if can_roll_back else ""

        def button(revision):
            if not can_roll_back:
                return ""
            return format_html(
                '<form method="post" action="{}"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
                '<input type="hidden" name="to_revision" value="{}"><button type="submit" '
                'id="ops-rollback-to-{}">roll back to {}</button></form>',
                action_url, token, revision.number, revision.number, revision.number)

        def result(revision):
            if revision.completed_at:
                return display.status_badge("COMPLETE")
            if revision.request.rollout:
                return format_html("{} {}", display.status_badge(revision.request.rollout),
                                   revision.request.rollout_reason)
            return "-"

        body = format_html_join("", (
            '<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td>'
            "<td>{}</td><td>{}</td></tr>"
        ), (
            (r.number, r.kind + (f" of {r.rollback_of}" if r.rollback_of else ""), r.user.user_external_id,
             display.timestamp(r.created_at), reverse("admin:requests_app_deploymentrequest_change",
                                                      args=[r.request_id]), r.request.request_id,
             r.message, result(r), _diff_html(diff), button(r))
            for r, diff in rows
        ))
        return format_html(
            '<table class="ops-table" id="ops-revisions"><thead><tr><th>#</th><th>Kind</th><th>Who</th>'
            "<th>When (UTC)</th><th>Request</th><th>Message</th><th>Rollout</th><th>Diff to the previous</th>"
            "<th></th></tr></thead><tbody>{}</tbody></table>", body)

    @admin.display(description="Status", ordering="status")
    def status_col(self, obj: Deployment):
        return display.status_badge(obj.status)

    @admin.display(description="Health", ordering="health")
    def health_col(self, obj: Deployment):
        return display.status_badge(obj.health)

    @admin.display(description="Why")
    def health_reason(self, obj: Deployment) -> str:
        reason = obj.health_reason
        if reason and obj.health == DeploymentHealth.DEGRADED:
            return format_html('<span class="ops-error">{}</span>', reason)
        if reason:
            return reason
        return "-" if obj.health != DeploymentHealth.DEGRADED else "DEGRADED, but no condition says why"

    @admin.display(description="ready / desired")
    def replica_counts(self, obj: Deployment) -> str:
        desired = "-" if obj.replicas is None else obj.replicas
        return f"{obj.ready_replicas} / {desired}"

    @admin.display(description="Drift", empty_value="")
    def drift_col(self, obj: Deployment):
        return display.drift_html(obj.drift)

    @admin.display(description="Drift")
    def drift_block(self, obj: Deployment):
        return display.drift_html(obj.drift) or "in sync"

    @admin.display(description="Last synced from the cluster")
    def synced(self, obj: Deployment) -> str:
        return display.timestamp(obj.last_synced_at) if obj.last_synced_at else "never"

    @admin.display(description="Owner (API user)")
    def owner_link(self, obj: Deployment):
        url = reverse("admin:users_app_user_change", args=[obj.owner_id])
        return format_html('<a href="{}">{}</a>', url, obj.owner.user_external_id)

    @admin.display(description=f"Last {RECENT_REQUESTS}")
    def recent_requests(self, obj: Deployment):
        rows = list(obj.requests.select_related("user").defer("payload", "config")
                    .order_by("-created_at", "-id")[:RECENT_REQUESTS])
        all_url = reverse("admin:requests_app_deploymentrequest_changelist") + f"?deployment__id__exact={obj.pk}"
        if not rows:
            return format_html('none <a href="{}">(list)</a>', all_url)
        body = format_html_join("", (
            '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            '<td class="ops-error">{}</td></tr>'
        ), (
            (reverse("admin:requests_app_deploymentrequest_change", args=[r.pk]), r.pk, display.status_badge(r.status),
             r.action, r.user.user_external_id, display.timestamp(r.created_at),
             display.between(r.created_at, r.finished_at) if r.finished_at else "pending", r.error)
            for r in rows
        ))
        return format_html(
            '<table class="ops-table" id="ops-recent-requests"><thead><tr><th>Request</th><th>Status</th>'
            "<th>Action</th><th>Who</th><th>When (UTC)</th><th>Took</th><th>Error</th></tr></thead>"
            '<tbody>{}</tbody></table><p><a href="{}">all requests for {}</a></p>',
            body, all_url, obj.identifier,
        )

    @admin.display(description="Counts")
    def rollout(self, obj: Deployment):
        return display.field_table([
            ("desired replicas", "-" if obj.replicas is None else obj.replicas),
            ("ready", obj.ready_replicas),
            ("updated", obj.updated_replicas),
            ("available", obj.available_replicas),
            ("generation / observed", f"{obj.generation if obj.generation is not None else '-'} / "
                                      f"{obj.observed_generation if obj.observed_generation is not None else '-'}"),
        ])

    @admin.display(description="Conditions")
    def conditions_table(self, obj: Deployment):
        return display.conditions_table(obj.conditions)

    @admin.display(description="Pods and Warning events")
    def diagnosis_block(self, obj: Deployment):
        """The same diagnosis as GET /api/v1/deployments/{identifier}/diagnosis; soft when the cluster is away."""
        if not obj.is_live:
            return format_html('<span class="ops-quiet">{}</span>', "deleted: nothing runs")
        try:
            result = diagnosis.diagnose(obj)
        except DomainError as exc:
            return format_html('<span class="ops-error">{}</span>', f"Cannot read the cluster: {exc.message}")
        pods = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (pod["name"], pod["phase"], "yes" if pod["ready"] else "no",
             "; ".join(_container_text(c) for c in pod["containers"]) or pod["scheduling_message"])
            for pod in result["pods"]))
        events = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (e["last_seen"], e["object"], e["reason"], e["message"], e["count"]) for e in result["events"]))
        return format_html(
            '<p class="ops-diagnosis-summary"><strong>{}</strong></p>'
            '<table class="ops-table ops-pods"><thead><tr><th>Pod</th><th>Phase</th><th>Ready</th>'
            "<th>Containers</th></tr></thead><tbody>{}</tbody></table>"
            '<table class="ops-table ops-events"><thead><tr><th>Last seen</th><th>Object</th><th>Reason</th>'
            "<th>Message</th><th>Count</th></tr></thead><tbody>{}</tbody></table>",
            result["summary"], pods, events or format_html("<tr><td colspan=5>{}</td></tr>", "no Warning events"),
        )

    @admin.display(description="Last log lines")
    def logs_block(self, obj: Deployment):
        if not obj.is_live:
            return "-"
        try:
            logs = diagnosis.pod_logs(obj, tail=20)
        except DomainError as exc:
            return format_html('<span class="ops-quiet">{}</span>', exc.message)
        return format_html('<p>{} / {}</p><pre class="ops-logs">{}</pre>', logs["pod"], logs["container"],
                           "\n".join(logs["lines"]) or "(no lines)")

    @admin.display(description="Desired config")
    def desired_json(self, obj: Deployment):
        return display.json_html(obj.desired_config)

    @admin.display(description="Observed spec")
    def observed_json(self, obj: Deployment):
        return display.json_html(obj.observed_spec)

    @admin.display(description="Created")
    def created(self, obj):
        return display.timestamp(obj.created_at)

    @admin.display(description="Updated")
    def updated(self, obj):
        return display.timestamp(obj.updated_at)


def _diff_html(diff: dict | None):
    if diff is None:
        return "(previous revision pruned)"
    return format_html_join("", "<div><code>{}</code>: {} &rarr; {}</div>", (
        (name, _short(change["from"]), _short(change["to"])) for name, change in diff.items()))


def _short(value) -> str:
    text = "-" if value is None else (value if isinstance(value, str) else json.dumps(value))
    return text if len(text) <= 120 else text[:117] + "..."


def _container_text(container: dict) -> str:
    text = f"{container['name']}: {container['state']}"
    if container["reason"]:
        text += f" {container['reason']}"
    if container["exit_code"] is not None:
        text += f" (exit {container['exit_code']})"
    last = container["last_termination"]
    if last:
        text += f", last exit {last['exit_code']}"
    if container["restarts"]:
        text += f", {container['restarts']} restarts"
    return text
