"""Deployment requests: the three write endpoints and the reads.

POST   /api/v1/deployments/requests/create         CREATE  202 (200 replay)
PATCH  /api/v1/deployments/requests/{identifier}   UPDATE  202 (200 replay)
DELETE /api/v1/deployments/requests/{identifier}   DELETE  202 (200 replay)
GET    /api/v1/requests/                           the caller's requests (cursor-paginated)
POST   /api/v1/deployments/requests/{identifier}/rollback  ROLLBACK 202 (200 replay)
POST   /api/v1/deployments/requests/{identifier}/restart   RESTART  202 (200 replay)
GET    /api/v1/requests/                           the caller's requests (cursor-paginated)
GET    /api/v1/requests/{request_id}               one of the caller's requests
GET    /api/v1/deployments/{identifier}/revisions        its revisions, newest first (cursor-paginated)
GET    /api/v1/deployments/{identifier}/revisions/{n}    one revision, with its diff to the previous
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from deployments_app import validators
from events_app.longpoll import parse_wait, wait_for_finish
from k8sdm.api.errors import InvalidInput
from k8sdm.api.fields import api_v1_prefix
from k8sdm.api.pagination import HighestNumberFirstPagination, NewestFirstPagination
from k8sdm.api.schema import CORRELATION_ID, IDEMPOTENCY_KEY, READ_ERRORS, WRITE_ERRORS, error_responses
from k8sdm.api.views import ApiViewMixin
from requests_app.models import RequestAction, RequestStatus
from requests_app.selectors import (
    request_get,
    request_list,
    revision_get,
    revision_list,
    revision_previous_config,
    revision_previous_configs,
)
from requests_app.serializers import (
    DeploymentRequestCreateInputSerializer,
    DeploymentRequestDeleteInputSerializer,
    DeploymentRequestFilterSerializer,
    DeploymentRequestOutputSerializer,
    DeploymentRequestRestartInputSerializer,
    DeploymentRequestRollbackInputSerializer,
    DeploymentRequestUpdateInputSerializer,
    RevisionOutputSerializer,
)
from requests_app.services import (
    Accepted,
    deployment_request_create,
    deployment_request_delete,
    deployment_request_restart,
    deployment_request_rollback,
    deployment_request_update,
)

ACCEPTED_DESCRIPTION = "Accepted: stored and queued; follow it at links.self."
REPLAY_DESCRIPTION = "Replay of an earlier request with the same request_id and body: the original request."

CREATE_EXAMPLE = OpenApiExample(
    "create",
    value={"identifier": "web", "image": "nginx:1.27", "replicas": 2, "labels": {"tier": "frontend"},
           "ports": [{"name": "http", "container_port": 80}], "request_id": "3f1c2a9e-create-web"},
    request_only=True,
)
UPDATE_EXAMPLE = OpenApiExample("scale and roll", value={"image": "nginx:1.28", "replicas": 3}, request_only=True)
UPDATE_WAIT_EXAMPLE = OpenApiExample(
    "roll out, wait, undo on failure",
    value={"image": "nginx:1.28", "message": "bump nginx for CVE-2025-0001",
           "wait": {"timeout_seconds": 300, "rollback_on_failure": True}},
    request_only=True,
)
ROLLBACK_EXAMPLE = OpenApiExample(
    "roll back to revision 2", value={"to_revision": 2, "message": "1.28 leaks memory", "request_id": "undo-7"},
    request_only=True,
)
RESTART_EXAMPLE = OpenApiExample(
    "restart and wait", value={"message": "pick up the rotated secret", "wait": {"timeout_seconds": 120}},
    request_only=True,
)
FAILED_ROLLOUT_EXAMPLE = OpenApiExample(
    "failed rollout, rolled back",
    value={
        "id": 43, "request_id": "bump-web", "action": "UPDATE", "status": "SUCCESS", "pending": False,
        "identifier": "web", "namespace": "default", "message": "try 1.29",
        "rollback_of": None,
        "rollout": {"state": "FAILED", "reason": "ProgressDeadlineExceeded: ReplicaSet \"web-5d9c\" has timed out "
                    "progressing.; rolling back to revision 1 (request auto-rollback-43)", "timeout_seconds": 300,
                    "rollback_on_failure": True, "deadline": "2025-01-01T12:05:00Z",
                    "finished_at": "2025-01-01T12:01:10Z"},
        "rollback_for": None, "rolled_back_by": "auto-rollback-43",
    },
    response_only=True, status_codes=["200"],
)
REVISION_EXAMPLE = OpenApiExample(
    "revision 3",
    value={
        "number": 3, "kind": "rollback", "created_at": "2025-01-01T12:01:12Z", "user": "alice@example.com",
        "request_id": "auto-rollback-43", "message": "automatic rollback: the rollout of request bump-web failed",
        "rollback_of": 1, "rollout": "COMPLETE", "rollout_reason": "",
        "config": {"identifier": "web", "namespace": "default", "image": "nginx:1.27", "replicas": 2, "labels": {},
                   "annotations": {}, "env": [], "ports": [], "resources": {}, "command": [], "args": []},
        "diff": {"image": {"from": "nginx:1.29", "to": "nginx:1.27"}},
    },
    response_only=True,
)
REQUEST_EXAMPLE = OpenApiExample(
    "accepted request",
    value={
        "id": 42, "request_id": "3f1c2a9e-create-web", "action": "CREATE", "status": "CREATED",
        "identifier": "web", "namespace": "default",
        "payload": {"identifier": "web", "image": "nginx:1.27", "replicas": 2},
        "config": {"identifier": "web", "namespace": "default", "image": "nginx:1.27", "replicas": 2,
                   "labels": {}, "annotations": {}, "env": [], "ports": [], "resources": {}, "command": [],
                   "args": []},
        "error": "", "attempts": 0, "resource_version": "", "correlation_id": "9b2e0c7d4f1a4e4f8d1c0b7a6e5d4c3b",
        "created_at": "2025-01-01T12:00:00Z", "published_at": None, "started_at": None, "finished_at": None,
        "links": {"self": "/api/v1/requests/3f1c2a9e-create-web", "deployment": "/api/v1/deployments/web"},
    },
    response_only=True,
    status_codes=["202", "200"],
)


def _request_id(request, body_value: str | None) -> str:
    """The idempotency key: body `request_id` and/or the Idempotency-Key header (equal if both), or new."""
    header = request.headers.get("Idempotency-Key")
    if header is not None:
        try:
            validators.validate_request_id(header)
        except ValidationError:
            raise InvalidInput(
                "The Idempotency-Key header is malformed.",
                fields={"Idempotency-Key": ["must be 1-128 characters of letters, digits and . _ : @ + -"]},
            ) from None
        if body_value is not None and body_value != header:
            raise InvalidInput(
                "request_id in the body and the Idempotency-Key header differ.",
                code="request_id_mismatch",
                fields={"request_id": ["differs from the Idempotency-Key header"]},
            )
        return header
    return body_value or uuid.uuid4().hex


def _answer(accepted: Accepted) -> Response:
    data = DeploymentRequestOutputSerializer(accepted.request).data
    return Response(data, status=status.HTTP_200_OK if accepted.replayed else status.HTTP_202_ACCEPTED)


def _write_responses() -> dict:
    return {
        202: OpenApiResponse(DeploymentRequestOutputSerializer, description=ACCEPTED_DESCRIPTION),
        200: OpenApiResponse(DeploymentRequestOutputSerializer, description=REPLAY_DESCRIPTION),
        **error_responses(*WRITE_ERRORS),
    }


IDENTIFIER_PARAM = OpenApiParameter(
    "identifier", type=str, location=OpenApiParameter.PATH, description="The deployment's identifier.",
    pattern=validators.DNS1123_LABEL.pattern,
)


class DeploymentRequestCommandViewSet(ApiViewMixin, GenericViewSet):
    """CREATE, UPDATE and DELETE requests. Each validates its input, calls one service, and answers
    with the stored request."""

    serializer_class = DeploymentRequestOutputSerializer
    path_params = {"identifier": validators.validate_identifier}
    lookup_field = "identifier"

    def method_hint(self, method: str) -> str:
        prefix = api_v1_prefix()
        if "identifier" not in self.kwargs:  # the create path
            if method == "GET":
                return f"To follow your requests, send GET {prefix}requests/."
            return "Send POST with the deployment's config to ask for it to be created."
        identifier = self.path_value("identifier")
        if method == "GET":
            return (f"To see this deployment, send GET {prefix}deployments/{identifier}; "
                    f"its requests: GET {prefix}requests/?identifier={identifier}.")
        return (f"Send PATCH with the fields to change, or DELETE; to create a deployment, "
                f"send POST {prefix}deployments/requests/create.")

    @extend_schema(
        operation_id="deployment_request_create",
        summary="Ask for a Deployment to be created",
        tags=["deployment requests"],
        request=DeploymentRequestCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY, CORRELATION_ID],
        responses=_write_responses(),
        examples=[CREATE_EXAMPLE, REQUEST_EXAMPLE],
        description="Stores a CREATE request and an INITIATED Deployment in one transaction and queues it. "
        "409 identifier_taken if a deployment with this identifier exists (for any user) and is not DELETED; "
        "a DELETED one is reused. The identifier `create` is reserved.",
    )
    def create(self, request):
        serializer = DeploymentRequestCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payload = dict(serializer.validated_data)
        request_id = _request_id(request, payload.pop("request_id", None))
        message, wait = payload.pop("message", ""), payload.pop("wait", None)
        accepted = deployment_request_create(
            user_external_id=request.user.external_id,
            user=request.user.user,
            config=payload,
            payload=payload,
            request_id=request_id,
            correlation_id=request._request.correlation_id,
            message=message,
            wait=wait,
        )
        return _answer(accepted)

    @extend_schema(
        operation_id="deployment_request_update",
        summary="Ask for a Deployment to be changed",
        tags=["deployment requests"],
        request=DeploymentRequestUpdateInputSerializer,
        parameters=[IDENTIFIER_PARAM, IDEMPOTENCY_KEY, CORRELATION_ID],
        responses=_write_responses(),
        examples=[UPDATE_EXAMPLE, UPDATE_WAIT_EXAMPLE, REQUEST_EXAMPLE],
        description="A partial config merged onto the deployment's current desired config: each field given "
        "replaces that field whole (maps and lists included). 400 nothing_to_change when the body names no field "
        "or changes nothing; 400 namespace_immutable; 409 deployment_deleted or delete_pending. `message` is the "
        "change cause kept on the revision; `wait` follows the rollout in the request's `rollout` field.",
    )
    def partial_update(self, request, identifier: str):
        serializer = DeploymentRequestUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        patch = dict(serializer.validated_data)
        request_id = _request_id(request, patch.pop("request_id", None))
        message, wait = patch.pop("message", ""), patch.pop("wait", None)
        accepted = deployment_request_update(
            user_external_id=request.user.external_id,
            user=request.user.user,
            identifier=identifier,
            patch=patch,
            request_id=request_id,
            correlation_id=request._request.correlation_id,
            message=message,
            wait=wait,
        )
        return _answer(accepted)

    @extend_schema(
        operation_id="deployment_request_delete",
        summary="Ask for a Deployment to be deleted",
        tags=["deployment requests"],
        request=DeploymentRequestDeleteInputSerializer,
        parameters=[IDENTIFIER_PARAM, IDEMPOTENCY_KEY, CORRELATION_ID],
        responses=_write_responses(),
        examples=[REQUEST_EXAMPLE],
        description="The body is optional ({\"request_id\": ...}). 409 already_deleted when the deployment is "
        "DELETED, 409 delete_pending when a DELETE request for it is still pending.",
    )
    def destroy(self, request, identifier: str):
        serializer = DeploymentRequestDeleteInputSerializer(data=request.data)  # no body: {}
        serializer.is_valid(raise_exception=True)
        request_id = _request_id(request, serializer.validated_data.get("request_id"))
        accepted = deployment_request_delete(
            user_external_id=request.user.external_id,
            user=request.user.user,
            identifier=identifier,
            request_id=request_id,
            correlation_id=request._request.correlation_id,
        )
        return _answer(accepted)


    @extend_schema(
        operation_id="deployment_request_rollback",
        summary="Ask for a Deployment to be rolled back to an earlier revision",
        tags=["deployment requests"],
        request=DeploymentRequestRollbackInputSerializer,
        parameters=[IDENTIFIER_PARAM, IDEMPOTENCY_KEY, CORRELATION_ID],
        responses=_write_responses(),
        examples=[ROLLBACK_EXAMPLE, REQUEST_EXAMPLE],
        description="A ROLLBACK request: an ordinary request in the deployment's queue whose config is the complete "
        "config of revision `to_revision` (default: the newest earlier revision whose config differs from the "
        "current one). It rewrites the desired config, records rollback_of, and makes a new revision of kind "
        "rollback when applied. 400 (field to_revision) revision_not_found, revision_pruned, rollback_to_current, "
        "no_revision, no_earlier_revision; 404 and 409 as for an update.",
    )
    def rollback(self, request, identifier: str):
        serializer = DeploymentRequestRollbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        accepted = deployment_request_rollback(
            user_external_id=request.user.external_id,
            user=request.user.user,
            identifier=identifier,
            to_revision=data.get("to_revision"),
            request_id=_request_id(request, data.get("request_id")),
            correlation_id=request._request.correlation_id,
            message=data.get("message", ""),
            wait=data.get("wait"),
        )
        return _answer(accepted)

    @extend_schema(
        operation_id="deployment_request_restart",
        summary="Ask for a rolling restart of a Deployment's pods",
        tags=["deployment requests"],
        request=DeploymentRequestRestartInputSerializer,
        parameters=[IDENTIFIER_PARAM, IDEMPOTENCY_KEY, CORRELATION_ID],
        responses=_write_responses(),
        examples=[RESTART_EXAMPLE, REQUEST_EXAMPLE],
        description="A RESTART request: like `kubectl rollout restart`, sets the pod template's annotation "
        "kubectl.kubernetes.io/restartedAt to now (config field restarted_at), so every pod is replaced; a "
        "revision of kind restart; never drift. The body is optional. 404 and 409 as for an update.",
    )
    def restart(self, request, identifier: str):
        serializer = DeploymentRequestRestartInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        accepted = deployment_request_restart(
            user_external_id=request.user.external_id,
            user=request.user.user,
            identifier=identifier,
            request_id=_request_id(request, data.get("request_id")),
            correlation_id=request._request.correlation_id,
            message=data.get("message", ""),
            wait=data.get("wait"),
        )
        return _answer(accepted)


REVISION_NUMBER_PARAM = OpenApiParameter("number", type=int, location=OpenApiParameter.PATH,
                                         description="The revision number (1 is the deployment's CREATE).")


def _validate_number(value: str) -> None:
    if not (value.isascii() and value.isdigit() and len(value) <= 9 and int(value) >= 1):
        raise ValidationError("must be a positive integer")


class RevisionViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """A deployment's revisions, newest first, each with its diff to the one before."""

    serializer_class = RevisionOutputSerializer
    pagination_class = HighestNumberFirstPagination
    path_params = {"identifier": validators.validate_identifier, "number": _validate_number}

    def method_hint(self, method: str) -> str:
        identifier = self.path_value("identifier")
        return (f"Revisions are read-only; to roll back, send POST "
                f"{api_v1_prefix()}deployments/requests/{identifier}/rollback with {{\"to_revision\": n}}.")

    def get_queryset(self):
        return revision_list(user=self.request.user.user, identifier=self.kwargs["identifier"])

    @extend_schema(
        operation_id="revision_list",
        summary="A deployment's revisions, newest first",
        description="Every successful CREATE, UPDATE, ROLLBACK and RESTART makes the next revision; the last "
        "K8SDM_REVISION_HISTORY (50 by default) are kept. 404 when the deployment is not the caller's.",
        tags=["deployments"],
        parameters=[IDENTIFIER_PARAM],
        responses={200: RevisionOutputSerializer(many=True), **error_responses(*READ_ERRORS)},
        examples=[REVISION_EXAMPLE],
    )
    def list(self, request, identifier: str):
        page = self.paginate_queryset(self.get_queryset())
        previous = revision_previous_configs(revisions=page)
        return self.get_paginated_response(RevisionOutputSerializer(page, many=True,
                                                                    context={"previous": previous}).data)

    @extend_schema(
        operation_id="revision_retrieve",
        summary="One revision of a deployment, with its diff to the previous one",
        tags=["deployments"],
        parameters=[IDENTIFIER_PARAM, REVISION_NUMBER_PARAM],
        responses={200: RevisionOutputSerializer, **error_responses(*READ_ERRORS)},
        examples=[REVISION_EXAMPLE],
    )
    def retrieve(self, request, identifier: str, number: str):
        revision = revision_get(user=request.user.user, identifier=identifier, number=int(number))
        previous = revision_previous_config(revision=revision)
        context = {"previous": {revision.number - 1: previous} if previous is not None else {}}
        return Response(RevisionOutputSerializer(revision, context=context).data)


class DeploymentRequestViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """The caller's requests, newest first, and one by request_id."""

    serializer_class = DeploymentRequestOutputSerializer
    pagination_class = NewestFirstPagination
    filter_serializer_class = DeploymentRequestFilterSerializer
    path_params = {"request_id": validators.validate_request_id}
    lookup_field = "request_id"
    lookup_value_regex = "[^/]+"

    def method_hint(self, method: str) -> str:
        prefix = api_v1_prefix()
        return (f"Requests are read-only here; make one with POST {prefix}deployments/requests/create, "
                f"or PATCH or DELETE {prefix}deployments/requests/{{identifier}}.")

    def get_queryset(self):
        filters = DeploymentRequestFilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return request_list(user=self.request.user.user, **filters.validated_data)

    def allowed_query_params(self) -> set[str]:
        if getattr(self, "action", None) == "retrieve":
            return {"wait"}  # the long-poll
        return super().allowed_query_params()

    def get_object(self):
        return request_get(user=self.request.user.user, request_id=self.kwargs["request_id"])

    @extend_schema(
        operation_id="request_list",
        summary="The caller's requests",
        tags=["requests"],
        parameters=[
            OpenApiParameter("status", str, enum=RequestStatus.values, description="Only requests in this status."),
            OpenApiParameter("action", str, enum=RequestAction.values, description="Only requests of this action."),
            OpenApiParameter("identifier", str, description="Only requests for this deployment.",
                             pattern=validators.DNS1123_LABEL.pattern),
        ],
        responses={200: DeploymentRequestOutputSerializer(many=True), **error_responses(*READ_ERRORS)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="request_retrieve",
        summary="One of the caller's requests",
        tags=["requests"],
        parameters=[
            OpenApiParameter("request_id", type=str, location=OpenApiParameter.PATH, pattern=validators.REQUEST_ID.pattern),
            OpenApiParameter("wait", int, description="Long-poll: wait up to this many seconds (at most "
                             "K8SDM_LONG_POLL_MAX_SECONDS, 60 by default) for the request to finish; the answer "
                             "comes as soon as it is SUCCESS or FAILURE, or with the pending request when the wait "
                             "runs out."),
        ],
        responses={200: DeploymentRequestOutputSerializer, **error_responses(*READ_ERRORS)},
        examples=[FAILED_ROLLOUT_EXAMPLE],
    )
    def retrieve(self, request, *args, **kwargs):
        wait = parse_wait(request.query_params)
        found = wait_for_finish(read=self.get_object, user_external_id=request.user.external_id, wait=wait)
        return Response(self.get_serializer(found).data)
