"""Personal API tokens over the API: input and output shapes. The secret appears only in the
creation answer (ApiTokenCreatedOutputSerializer)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers

from k8sdm.api.fields import StrictCharField, StrictIntegerField, StrictSerializer

from users_app.models import ApiToken


class ApiTokenCreateInputSerializer(StrictSerializer):
    name = StrictCharField(
        max_length=100, validators=[RegexValidator(r"^[A-Za-z0-9 ._:@+-]{1,100}$")],
        help_text="What the token is for (1-100 of letters, digits, space and . _ : @ + -).",
    )
    expires_in_days = StrictIntegerField(
        required=False, allow_null=True, min_value=1,
        help_text="Days until the token expires (at most the server's K8SDM_TOKEN_MAX_DAYS; default: that maximum).",
    )

    def validate_expires_in_days(self, value):
        if value is not None and value > settings.K8SDM_TOKEN_MAX_DAYS:
            raise serializers.ValidationError(f"must be at most {settings.K8SDM_TOKEN_MAX_DAYS}")
        return value


class ApiTokenOutputSerializer(serializers.ModelSerializer):
    token_prefix = serializers.SerializerMethodField(help_text="The token's visible start, to tell tokens apart.")
    revoked = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "token_prefix", "created_at", "expires_at", "last_used_at", "revoked", "revoked_at"]

    def get_token_prefix(self, obj: ApiToken) -> str:
        return f"k8sdm_{obj.prefix}"

    def get_revoked(self, obj: ApiToken) -> bool:
        return obj.revoked_at is not None


class ApiTokenCreatedOutputSerializer(ApiTokenOutputSerializer):
    token = serializers.SerializerMethodField(help_text="The secret. Shown this once only: store it now.")

    class Meta(ApiTokenOutputSerializer.Meta):
        fields = ["token", *ApiTokenOutputSerializer.Meta.fields]

    def get_token(self, obj) -> str:
        return self.context["secret"]
