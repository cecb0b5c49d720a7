"""Reads of deployment requests. Ownership scoping lives here: a caller only sees their own."""

from __future__ import annotations

from django.db.models import QuerySet

from deployments_app.models import Deployment
from k8sdm.errors import NotFound
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from users_app.models import User


def request_list(
    *, user: User | None, status: str | None = None, action: str | None = None, identifier: str | None = None
) -> QuerySet[DeploymentRequest]:
    """The caller's requests, newest first; none for a caller without a User row."""
    if user is None:
        return DeploymentRequest.objects.none()
    qs = DeploymentRequest.objects.filter(user=user)
    if status:
        qs = qs.filter(status=status)
    if action:
        qs = qs.filter(action=action)
    if identifier:
        qs = qs.filter(identifier=identifier)
    return qs.order_by("-created_at", "-id")


def request_get(*, user: User | None, request_id: str) -> DeploymentRequest:
    """The caller's request by its request_id; NotFound (the same answer) if missing or someone else's."""
    request = None
    if user is not None:
        request = DeploymentRequest.objects.filter(user=user, request_id=request_id).first()
    if request is None:
        raise NotFound(f"Request {request_id!r} not found.", code="request_not_found")
    return request


def request_find(*, user: User, request_id: str) -> DeploymentRequest | None:
    """The caller's request with this request_id, if any (the idempotency lookup)."""
    return DeploymentRequest.objects.filter(user=user, request_id=request_id).first()


def request_recent_for_deployment(*, deployment: Deployment, limit: int = 10) -> list[DeploymentRequest]:
    """The deployment owner's newest requests for it (a reused identifier's older owners' are not shown)."""
    return list(
        DeploymentRequest.objects.filter(user_id=deployment.owner_id, identifier=deployment.identifier)
        .order_by("-created_at", "-id")[:limit]
    )


def request_has_pending_delete(*, deployment: Deployment) -> bool:
    return DeploymentRequest.objects.filter(
        deployment=deployment, action=RequestAction.DELETE, status=RequestStatus.CREATED
    ).exists()
