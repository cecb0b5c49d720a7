"""Deployment request input (the three actions) and output serializers."""

from __future__ import annotations

from urllib.parse import quote

from rest_framework import serializers

from deployments_app import validators as v
from deployments_app.serializers import (
    DeploymentConfigFieldsSerializer,
    DeploymentConfigInputSerializer,
    DeploymentConfigSerializer,
)
from k8sdm.api.fields import URL_SAFE, StrictCharField, StrictSerializer, api_v1_prefix, iso
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


class DeploymentRequestOutputSerializer(serializers.Serializer):
    """A stored request. Fields are declared for the schema; to_representation builds the dict
    directly (a list page renders 50 of these: DRF's per-field machinery and reverse() per link
    would cost more than the query)."""

    id = serializers.IntegerField()
    request_id = serializers.CharField()
    action = serializers.ChoiceField(choices=RequestAction.choices)
    status = serializers.ChoiceField(
        choices=RequestStatus.choices,
        help_text="CREATED: accepted and waiting to be applied (pending; not the deployment's CREATED); "
        "SUCCESS: applied; FAILURE: not applied, see error.",
    )
    pending = serializers.BooleanField(help_text="True until the request is applied or fails (status CREATED).")
    identifier = serializers.CharField()
    namespace = serializers.CharField()
    payload = serializers.JSONField(help_text="What the client sent (UPDATE: the patch; DELETE: {}).")
    config = DeploymentConfigSerializer(help_text="The complete config the worker applies.")
    error = serializers.CharField(allow_blank=True, help_text="Why it failed (status FAILURE).")
    attempts = serializers.IntegerField()
    resource_version = serializers.CharField(allow_blank=True, help_text="Kubernetes resourceVersion after apply.")
    correlation_id = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True, help_text="When JetStream acknowledged it.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    links = RequestLinksSerializer()

    def to_representation(self, obj: DeploymentRequest) -> dict:
        prefix = api_v1_prefix()
        return {
            "id": obj.pk,
            "request_id": obj.request_id,
            "action": obj.action,
            "status": obj.status,
            "pending": obj.status == RequestStatus.CREATED,
            "identifier": obj.identifier,
            "namespace": obj.namespace,
            "payload": obj.payload,
            "config": obj.config,
            "error": obj.error,
            "attempts": obj.attempts,
            "resource_version": obj.resource_version,
            "correlation_id": obj.correlation_id,
            "created_at": iso(obj.created_at),
            "published_at": iso(obj.published_at),
            "started_at": iso(obj.started_at),
            "finished_at": iso(obj.finished_at),
            "links": {
                "self": f"{prefix}requests/{quote(obj.request_id, safe=URL_SAFE)}",
                "deployment": f"{prefix}deployments/{obj.identifier}",
            },
        }


class DeploymentRequestFilterSerializer(serializers.Serializer):
    """Query parameters of the request list (cursor and page_size belong to the paginator)."""

    status = serializers.ChoiceField(choices=RequestStatus.choices, required=False)
    action = serializers.ChoiceField(choices=RequestAction.choices, required=False)
    identifier = StrictCharField(max_length=63, required=False, validators=[v.validate_identifier])


