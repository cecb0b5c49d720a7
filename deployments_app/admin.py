from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from deployments_app.models import Deployment

# Written by the worker from the live cluster: ops staff read them, never edit them.
OBSERVED_FIELDS = [
    "status",
    "health",
    "observed_spec",
    "image",
    "replicas",
    "ready_replicas",
    "updated_replicas",
    "available_replicas",
    "generation",
    "observed_generation",
    "conditions",
    "resource_version",
    "uid",
    "drift",
    "last_synced_at",
]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = [
        "identifier",
        "namespace",
        "owner",
        "status",
        "health",
        "image",
        "replica_counts",
        "has_drift",
        "last_synced_at",
        "requests_link",
    ]
    list_filter = ["status", "health", "namespace"]
    search_fields = ["identifier", "owner__user_external_id"]
    ordering = ["-created_at"]
    list_select_related = ["owner"]
    list_per_page = 100
    raw_id_fields = ["owner"]
    readonly_fields = ["identifier", "namespace", "owner", "desired_config", *OBSERVED_FIELDS, "created_at",
                       "updated_at", "requests_link"]
    fieldsets = [
        (None, {"fields": ["identifier", "namespace", "owner", "requests_link"]}),
        ("State", {"fields": ["status", "health", "drift", "last_synced_at"]}),
        ("Desired", {"fields": ["desired_config"]}),
        ("Observed in the cluster", {
            "fields": ["image", "replicas", "ready_replicas", "updated_replicas", "available_replicas",
                       "generation", "observed_generation", "conditions", "observed_spec", "resource_version",
                       "uid"],
        }),
        ("Timestamps", {"fields": ["created_at", "updated_at"]}),
    ]

    def has_add_permission(self, request):
        # Deployments come from requests through the API; an admin-made row would never reach the cluster.
        return False

    @admin.display(description="ready/updated/available/desired")
    def replica_counts(self, obj: Deployment) -> str:
        desired = "-" if obj.replicas is None else obj.replicas
        return f"{obj.ready_replicas}/{obj.updated_replicas}/{obj.available_replicas}/{desired}"

    @admin.display(description="drift", boolean=True)
    def has_drift(self, obj: Deployment) -> bool:
        return bool(obj.drift)

    @admin.display(description="Requests")
    def requests_link(self, obj: Deployment):
        url = reverse("admin:requests_app_deploymentrequest_changelist") + f"?deployment__id__exact={obj.pk}"
        return format_html('<a href="{}">requests for {}</a>', url, obj.identifier)
