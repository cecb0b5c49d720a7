"""Deployment request input (the three actions) and output serializers."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments_app import validators as v
from deployments_app.serializers import (
    DeploymentConfigFieldsSerializer,
    DeploymentConfigInputSerializer,
    DeploymentConfigSerializer,
)
from k8sdm.api.fields import StrictCharField, StrictSerializer
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus

RESERVED_IDENTIFIERS = frozenset({"create"})


def _request_id_field():
    return StrictCharField(
        max_length=v.REQUEST_ID_MAX, required=False, validators=[v.validate_request_id],
        help_text="Idempotency key chosen by the client (1-128 of letters, digits and . _ : @ + -); "
        "generated when absent. Unique per user.",
    )


class DeploymentRequestCreateInputSerializer(DeploymentConfigInputSerializer):
    request_id = _request_id_field()

    def validate_identifier(self, value):
        if value in RESERVED_IDENTIFIERS:
            # /deployments/requests/create is the CREATE endpoint itself.
            raise serializers.ValidationError(f"{value!r} is reserved")
        return value


class DeploymentRequestUpdateInputSerializer(DeploymentConfigFieldsSerializer):
    """A partial config: any config field except identifier (it is in the path)."""

    request_id = _request_id_field()

    def to_internal_value(self, data):
        if isinstance(data, dict) and "identifier" in data:
            raise serializers.ValidationError(
                {"identifier": ["cannot be changed; the deployment is named in the path"]}
            )
        return super().to_internal_value(data)


class DeploymentRequestDeleteInputSerializer(StrictSerializer):
    request_id = _request_id_field()


class RequestLinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    deployment = serializers.CharField()


class DeploymentRequestOutputSerializer(serializers.ModelSerializer):
    config = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = DeploymentRequest
        fields = [
            "id", "request_id", "action", "status", "identifier", "namespace", "payload", "config",
            "error", "attempts", "resource_version", "correlation_id",
            "created_at", "published_at", "started_at", "finished_at", "links",
        ]
        read_only_fields = fields

    @extend_schema_field(DeploymentConfigSerializer)
    def get_config(self, obj: DeploymentRequest) -> dict:
        return obj.config

    @extend_schema_field(RequestLinksSerializer)
    def get_links(self, obj: DeploymentRequest) -> dict:
        return {
            "self": reverse("api-v1:request-detail", kwargs={"request_id": obj.request_id}),
            "deployment": reverse("api-v1:deployment-detail", kwargs={"identifier": obj.identifier}),
        }


class DeploymentRequestFilterSerializer(serializers.Serializer):
    """Query parameters of the request list (cursor and page_size belong to the paginator)."""

    status = serializers.ChoiceField(choices=RequestStatus.choices, required=False)
    action = serializers.ChoiceField(choices=RequestAction.choices, required=False)
    identifier = StrictCharField(max_length=63, required=False, validators=[v.validate_identifier])


