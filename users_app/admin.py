"""API users (the callers of the REST API, as their gateway names them) in the operations console.

Not the console's own staff accounts: those are Django auth users ("Staff accounts")."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from k8sdm.ops.records import RecordAdmin
from users_app.models import ApiToken, Refusal, User, UserPolicy
from users_app.policy import LIMIT_FIELDS, QUANTITY_LIMITS, limit_valid
from users_app.selectors import refusal_recent
from users_app.services import token_create, token_revoke


@admin.register(User)
class UserAdmin(RecordAdmin):
    list_display = ["user_external_id", "created_at", "deployments_link", "requests_link"]
    search_fields = ["user_external_id"]
    ordering = ["-created_at"]
    fields = ["user_external_id", "created_at", "updated_at", "deployments_link", "requests_link",
              "policy_link", "tokens_link", "recent_refusals"]
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

    @admin.display(description="Policy and quotas")
    def policy_link(self, obj: User):
        policy = UserPolicy.objects.filter(user=obj).first()
        if policy is None:
            url = reverse("admin:users_app_userpolicy_add") + f"?user={obj.pk}"
            return format_html('defaults from settings (<a href="{}">set a policy</a>)', url)
        return format_html('<a href="{}">edit the policy</a>',
                           reverse("admin:users_app_userpolicy_change", args=[policy.pk]))

    @admin.display(description="API tokens")
    def tokens_link(self, obj: User):
        url = reverse("admin:users_app_apitoken_changelist") + f"?user__id__exact={obj.pk}"
        return format_html('<a href="{}">API tokens</a>', url)

    @admin.display(description="Recent refusals")
    def recent_refusals(self, obj: User):
        rows = refusal_recent(user=obj) if obj.pk else []
        if not rows:
            return "none"
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r.created_at.strftime("%Y-%m-%d %H:%M:%S"), r.kind, r.code, r.source_address, r.detail[:200])
             for r in rows),
        )
        url = reverse("admin:users_app_refusal_changelist") + f"?user__id__exact={obj.pk}"
        return format_html(
            '<table><tr><th>when (UTC)</th><th>kind</th><th>code</th><th>from</th><th>detail</th></tr>{}</table>'
            '<a href="{}">all refusals</a>', body, url,
        )


class ApiTokenAddForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name", "expires_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff create tokens here (the secret is shown once, in the message after saving) and revoke them."""

    list_display = ["name", "user", "visible_prefix", "created_at", "created_by", "expires_at", "last_used_at",
                    "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__user_external_id", "name", "prefix"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    actions = ["revoke"]
    ordering = ["-created_at"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["user", "name", "visible_prefix", "created_at", "created_by", "expires_at", "last_used_at",
                "revoked_at"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "expires_at"]
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Token")
    def visible_prefix(self, obj: ApiToken):
        return f"k8sdm_{obj.prefix}..."

    def save_model(self, request, obj, form, change):
        if change:
            return  # every field is read-only once created
        issued = token_create(
            user=form.cleaned_data["user"], name=form.cleaned_data["name"],
            expires_at=form.cleaned_data.get("expires_at"), created_by=request.user.get_username(),
        )
        # The admin goes on with `obj` (log entry, redirect): make it the saved row.
        obj.__dict__.update({k: v for k, v in issued.token.__dict__.items() if k != "_state"})
        obj._state.adding = False
        self.message_user(
            request,
            f"Token created. Copy it now, it will not be shown again: {issued.secret}",
            level=messages.WARNING,
        )

    def save_related(self, request, form, formsets, change):
        pass

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        by = request.user.get_username()
        with transaction.atomic():
            count = sum(token_revoke(token=token, by=by) for token in queryset.select_related("user"))
        self.message_user(request, f"Revoked {count} token(s).")

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays for the record


class UserPolicyForm(forms.ModelForm):
    class Meta:
        model = UserPolicy
        fields = "__all__"

    def clean(self):
        data = super().clean()
        for name in LIMIT_FIELDS:
            value = (data.get(name) or "").strip()
            if not value or value.lower() == "unlimited":
                continue
            if not limit_valid(name, value):
                self.add_error(name, "a non-negative integer" + (" or quantity (500m, 2Gi)" if name in QUANTITY_LIMITS
                                                                 else "") + ", or unlimited")
        for name in ("allowed_namespaces", "allowed_registries"):
            value = data.get(name)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                self.add_error(name, "a JSON list of strings")
        return data


@admin.register(UserPolicy)
class UserPolicyAdmin(admin.ModelAdmin):
    form = UserPolicyForm
    list_display = ["user", "max_deployments", "max_replicas", "max_replicas_total", "max_cpu_total",
                    "max_memory_total", "updated_at"]
    search_fields = ["user__user_external_id"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


@admin.register(Refusal)
class RefusalAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "code", "user", "claimed_identity", "source_address"]
    list_filter = ["kind", "code"]
    search_fields = ["claimed_identity", "source_address", "user__user_external_id"]
    list_select_related = ["user"]
    readonly_fields = ["created_at", "kind", "code", "user", "claimed_identity", "source_address", "detail"]
    ordering = ["-created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
