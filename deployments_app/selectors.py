"""Reads of deployments. Ownership scoping lives here: a caller only ever sees their own rows."""

from __future__ import annotations

from django.db.models import QuerySet

from deployments_app.models import Deployment
from k8sdm.errors import NotFound
from users_app.models import User


def deployment_list(
    *, user: User | None, status: str | None = None, health: str | None = None, namespace: str | None = None
) -> QuerySet[Deployment]:
    """The caller's deployments, newest first; none for a caller without a User row."""
    if user is None:
        return Deployment.objects.none()
    qs = Deployment.objects.filter(owner=user)
    if status:
        qs = qs.filter(status=status)
    if health:
        qs = qs.filter(health=health)
    if namespace:
        qs = qs.filter(namespace=namespace)
    return qs.order_by("-created_at", "-id")


def deployment_get(*, user: User | None, identifier: str) -> Deployment:
    """The caller's deployment; NotFound (the same answer) if it is missing or someone else's."""
    deployment = None
    if user is not None:
        deployment = Deployment.objects.filter(owner=user, identifier=identifier).first()
    if deployment is None:
        raise NotFound(f"Deployment {identifier!r} not found.", code="deployment_not_found")
    return deployment
