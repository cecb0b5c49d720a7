"""The base of every model admin in the console: records are read, never edited.

Rows here are either the record of what users asked (requests) or a mirror of the cluster
(deployments): editing or deleting one in the admin would change neither the request's history
nor the cluster, only make the row lie. So: no add, no change form, no delete, no bulk delete;
pages are titled "View ...". What staff may do is a named action (`operate` permission: the
model's Django "change" permission), each going through the system's own services.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from k8sdm.ops.services import ActionRefused


class RecordAdmin(admin.ModelAdmin):
    list_per_page = 100
    show_full_result_count = False  # no COUNT(*) over the whole table on every page
    # object action name -> (method name, button label); see object_action_view
    object_actions: dict[str, tuple[str, str]] = {}

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_operate_permission(self, request, obj=None) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    # --- one-record actions, as buttons on the record's page (POST only, CSRF-checked) ------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        extra = [
            path("<path:object_id>/do/<slug:action>/", self.admin_site.admin_view(self.object_action_view),
                 name="%s_%s_action" % info),
        ]
        return extra + super().get_urls()

    def object_action_view(self, request, object_id, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = get_object_or_404(self.get_queryset(request), pk=object_id)
        if action not in self.object_actions or not self.has_operate_permission(request, obj):
            self.message_user(request, "You may not do that.", messages.ERROR)
            return HttpResponseRedirect(self.record_url(obj))
        method, _label = self.object_actions[action]
        try:
            target = getattr(self, method)(request, obj)
        except ActionRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            target = obj
        return HttpResponseRedirect(self.record_url(target))

    def record_url(self, obj) -> str:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk],
                       current_app=self.admin_site.name)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_operate_permission(request, obj):
            info = self.opts.app_label, self.opts.model_name
            context["ops_object_actions"] = [
                {"url": reverse("admin:%s_%s_action" % info, args=[obj.pk, name], current_app=self.admin_site.name),
                 "label": label, "name": name}
                for name, (method, label) in self.object_actions.items()
                if self.object_action_applies(name, obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def object_action_applies(self, name: str, obj) -> bool:
        return True
