from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from users_app.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["user_external_id", "created_at", "deployments_link", "requests_link"]
    search_fields = ["user_external_id"]
    ordering = ["-created_at"]
    readonly_fields = ["created_at", "updated_at"]
    list_per_page = 100

    @admin.display(description="Deployments")
    def deployments_link(self, obj: User):
        url = reverse("admin:deployments_app_deployment_changelist") + f"?owner__id__exact={obj.pk}"
        return format_html('<a href="{}">deployments</a>', url)

    @admin.display(description="Requests")
    def requests_link(self, obj: User):
        url = reverse("admin:requests_app_deploymentrequest_changelist") + f"?user__id__exact={obj.pk}"
        return format_html('<a href="{}">requests</a>', url)
