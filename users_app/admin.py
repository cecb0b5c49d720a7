"""API users (the callers of the REST API, as their gateway names them) in the operations console.

Not the console's own staff accounts: those are Django auth users ("Staff accounts")."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from k8sdm.ops.records import RecordAdmin
from users_app.models import User


@admin.register(User)
class UserAdmin(RecordAdmin):
    list_display = ["user_external_id", "created_at", "deployments_link", "requests_link"]
    search_fields = ["user_external_id"]
    ordering = ["-created_at"]
    fields = ["user_external_id", "created_at", "updated_at", "deployments_link", "requests_link"]
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "API users (callers of the REST API)",
                                                 **(extra_context or {})})

    @admin.display(description="Deployments")
    def deployments_link(self, obj: User):
        url = reverse("admin:deployments_app_deployment_changelist") + f"?owner__id__exact={obj.pk}"
        return format_html('<a href="{}">deployments</a>', url)

    @admin.display(description="Requests")
    def requests_link(self, obj: User):
        url = reverse("admin:requests_app_deploymentrequest_changelist") + f"?user__id__exact={obj.pk}"
        return format_html('<a href="{}">requests</a>', url)
