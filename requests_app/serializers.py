"""Deployment request input (the three actions) and output serializers."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from rest_framework import serializers

from deployments_app import validators as v
from deployments_app.serializers import (
    DeploymentConfigFieldsSerializer,
    DeploymentConfigInputSerializer,
    DeploymentConfigSerializer,
)
from deployments_app.config import config_diff
from k8sdm.api.fields import URL_SAFE, StrictCharField, StrictIntegerField, StrictSerializer, api_v1_prefix, iso
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus, Revision, RevisionKind, RolloutState

RESERVED_IDENTIFIERS = frozenset({"create"})


def _request_id_field():
    return StrictCharField(
        max_length=v.REQUEST_ID_MAX, required=False, validators=[v.validate_request_id],
        help_text="Idempotency key chosen by the client (1-128 of letters, digits and . _ : @ + -); "
        "generated when absent. Unique per user.",
    )


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"not_a_boolean": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("not_a_boolean")
        return data


class RolloutWaitInputSerializer(StrictSerializer):
    """`wait`: follow the rollout after the request is applied (its `rollout` field)."""

    timeout_seconds = StrictIntegerField(
        min_value=1, max_value=settings.K8SDM_ROLLOUT_MAX_TIMEOUT_SECONDS,
        help_text="How long the rollout may take once the change reached the cluster; FAILED after that "
        "(at most K8SDM_ROLLOUT_MAX_TIMEOUT_SECONDS).",
    )
    rollback_on_failure = StrictBooleanField(
        required=False, default=False,
        help_text="If the rollout FAILS, queue a ROLLBACK to the newest earlier revision that completed "
        "(with a wait of the same timeout of its own).",
    )


def _message_field():
    return StrictCharField(max_length=1024, required=False, allow_blank=True,
                           help_text="Change cause, kept on the revision this request makes.")


class WaitAndMessageMixin(serializers.Serializer):
    message = _message_field()
    wait = RolloutWaitInputSerializer(required=False)


class DeploymentRequestCreateInputSerializer(WaitAndMessageMixin, DeploymentConfigInputSerializer):
    request_id = _request_id_field()

    def validate_identifier(self, value):
        if value in RESERVED_IDENTIFIERS:
            # /deployments/requests/create is the CREATE endpoint itself.
            raise serializers.ValidationError(f"{value!r} is reserved")
        return value


class DeploymentRequestUpdateInputSerializer(WaitAndMessageMixin, DeploymentConfigFieldsSerializer):
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


class DeploymentRequestRollbackInputSerializer(WaitAndMessageMixin, StrictSerializer):
    request_id = _request_id_field()
    to_revision = StrictIntegerField(
        min_value=1, required=False,
        help_text="The revision to restore; default: the newest earlier revision whose config differs from the "
        "current one.",
    )


class DeploymentRequestRestartInputSerializer(WaitAndMessageMixin, StrictSerializer):
    request_id = _request_id_field()


class RequestLinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    deployment = serializers.CharField()


class RolloutOutputSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[c for c in RolloutState.values if c],
        help_text="PENDING until the deployment is HEALTHY at the generation this request wrote (COMPLETE) or "
        "the rollout fails: ProgressDeadlineExceeded, DEGRADED, timeout, deleted, superseded (FAILED).")
    reason = serializers.CharField(allow_blank=True)
    timeout_seconds = serializers.IntegerField()
    rollback_on_failure = serializers.BooleanField()
    deadline = serializers.DateTimeField(allow_null=True, help_text="Set when the request is applied.")
    finished_at = serializers.DateTimeField(allow_null=True)


def _rollout(obj: DeploymentRequest) -> dict | None:
    if not obj.rollout:
        return None
    return {
        "state": obj.rollout, "reason": obj.rollout_reason, "timeout_seconds": obj.rollout_timeout_seconds,
        "rollback_on_failure": obj.rollback_on_failure, "deadline": iso(obj.rollout_deadline),
        "finished_at": iso(obj.rollout_finished_at),
    }


def _linked_request_id(obj: DeploymentRequest, field: str) -> str | None:
    if getattr(obj, f"{field}_id") is None:
        return None
    return getattr(obj, field).request_id


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
    message = serializers.CharField(allow_blank=True, help_text="The change cause the client gave.")
    rollback_of = serializers.IntegerField(allow_null=True, help_text="ROLLBACK: the revision it restores.")
    rollout = RolloutOutputSerializer(allow_null=True, help_text="Present when the request asked to wait.")
    rollback_for = serializers.CharField(
        allow_null=True, help_text="An automatic ROLLBACK: the request_id whose rollout failed.")
    rolled_back_by = serializers.CharField(
        allow_null=True, help_text="A failed rollout: the request_id of the automatic ROLLBACK it caused.")
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
            "message": obj.message,
            "rollback_of": obj.rollback_of,
            "rollout": _rollout(obj),
            "rollback_for": _linked_request_id(obj, "rollback_for"),
            "rolled_back_by": _linked_request_id(obj, "rolled_back_by"),
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




class RevisionOutputSerializer(serializers.Serializer):
    """One revision: the complete config applied, who and what made it, and the rollout result.
    The diff to the previous revision is given by the views (`diff` in the context: {number: diff})."""

    number = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=RevisionKind.choices)
    created_at = serializers.DateTimeField()
    user = serializers.CharField(help_text="Who made the request.")
    request_id = serializers.CharField(help_text="The request that made it.")
    message = serializers.CharField(allow_blank=True, help_text="The change cause given with the request.")
    rollback_of = serializers.IntegerField(allow_null=True)
    rollout = serializers.CharField(
        allow_blank=True, help_text="COMPLETE once the deployment was HEALTHY at this revision; else the request's "
        "rollout (PENDING, FAILED) when it waited; '' when not known.")
    rollout_reason = serializers.CharField(allow_blank=True)
    config = DeploymentConfigSerializer()
    diff = serializers.DictField(
        help_text="{field: {from, to}} for each config field that differs from the previous revision (every field "
        "of the first revision; null when the previous revision was pruned).", allow_null=True)

    def to_representation(self, obj: Revision) -> dict:
        previous = self.context.get("previous", {})
        if obj.number == 1:
            diff = config_diff(None, obj.config)
        elif obj.number - 1 in previous:
            diff = config_diff(previous[obj.number - 1], obj.config)
        else:
            diff = None
        rollout = "COMPLETE" if obj.completed_at else obj.request.rollout
        return {
            "number": obj.number,
            "kind": obj.kind,
            "created_at": iso(obj.created_at),
            "user": obj.user.user_external_id,
            "request_id": obj.request.request_id,
            "message": obj.message,
            "rollback_of": obj.rollback_of,
            "rollout": rollout,
            "rollout_reason": obj.request.rollout_reason if not obj.completed_at else "",
            "config": obj.config,
            "diff": diff,
        }
