"""The admin site ops staff use: branded, a dashboard as its index, sections named for what they hold."""

from __future__ import annotations

from django.contrib import admin

from k8sdm.ops import dashboard

# app label -> (section title, {model object_name: title}); apps not named keep Django's names.
SECTIONS = {
    "deployments_app": ("Deployments", {}),
    "requests_app": ("Deployment requests", {}),
    "users_app": ("API users", {"User": "API users (callers of the REST API)"}),
    "auth": ("Staff logins (this console)", {"User": "Staff accounts", "Group": "Staff groups"}),
    "axes": ("Staff login throttle", {}),
}
ORDER = list(SECTIONS)


class OpsAdminSite(admin.AdminSite):
    site_header = "k8sdm operations"
    site_title = "k8sdm operations"
    index_title = "Operations dashboard"
    index_template = "admin/ops/dashboard.html"
    # The lists need the full 1366 px; the header carries the navigation instead.
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        context = dict(extra_context or {})
        user = request.user
        if user.has_perm("requests_app.view_deploymentrequest") and user.has_perm("deployments_app.view_deployment"):
            context["dash"] = dashboard.snapshot()
        return super().index(request, context)

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for app in apps:
            title, models = SECTIONS.get(app["app_label"], (None, {}))
            if title:
                app["name"] = title
            for model in app["models"]:
                if model["object_name"] in models:
                    model["name"] = models[model["object_name"]]
        apps.sort(key=lambda app: (ORDER.index(app["app_label"]) if app["app_label"] in ORDER else len(ORDER),
                                   app["name"]))
        return apps
