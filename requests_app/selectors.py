"""Reads of deployment requests. Ownership scoping lives here: a caller only sees their own."""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.db.models import QuerySet

from deployments_app.config import DeploymentConfig
from deployments_app.models import Deployment
from deployments_app.selectors import deployment_get
from k8sdm.errors import InvalidInput, NotFound
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus, Revision
from users_app.models import User


def request_list(
    *, user: User | None, status: str | None = None, action: str | None = None, identifier: str | None = None
) -> QuerySet[DeploymentRequest]:
    """The caller's requests, newest first; none for a caller without a User row."""
    if user is None:
        return DeploymentRequest.objects.none()
    qs = DeploymentRequest.objects.filter(user=user).select_related("rollback_for", "rolled_back_by")
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
        request = (DeploymentRequest.objects.select_related("rollback_for", "rolled_back_by")
                   .filter(user=user, request_id=request_id).first())
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


# --- revisions -------------------------------------------------------------------------------------

_REVISION_FIELDS = ("id", "deployment_id", "number", "kind", "config", "message", "rollback_of", "generation",
                    "completed_at", "created_at", "request__request_id", "request__rollout",
                    "request__rollout_reason", "user__user_external_id")


def revision_list(*, user: User | None, identifier: str) -> QuerySet[Revision]:
    """The revisions of the caller's deployment, newest first (NotFound if it is not theirs)."""
    deployment = deployment_get(user=user, identifier=identifier)
    # created_at: a reused identifier (deleted, then created again) starts a new history.
    return (Revision.objects.filter(deployment=deployment, created_at__gte=deployment.created_at).select_related("request", "user")
            .only(*_REVISION_FIELDS).order_by("-number"))


def revision_get(*, user: User | None, identifier: str, number: int) -> Revision:
    """One revision of the caller's deployment; NotFound if the deployment is not theirs or the
    revision does not exist (or was pruned)."""
    revision = revision_list(user=user, identifier=identifier).filter(number=number).first()
    if revision is None:
        raise NotFound(f"Deployment {identifier!r} has no revision {number}.", code="revision_not_found")
    return revision


def revision_previous_config(*, revision: Revision) -> dict | None:
    """The config of the revision before `revision` (None for the first one, or if it was pruned)."""
    return (Revision.objects.filter(deployment_id=revision.deployment_id, number=revision.number - 1)
            .values_list("config", flat=True).first())


def revision_previous_configs(*, revisions: list[Revision]) -> dict[int, dict]:
    """{number: config} of the revisions just before each of `revisions` (one query, for a page)."""
    if not revisions:
        return {}
    wanted = {r.number - 1 for r in revisions}
    return dict(Revision.objects.filter(deployment_id=revisions[0].deployment_id, number__in=wanted)
                .values_list("number", "config"))


def _ignoring_restart(config: DeploymentConfig) -> DeploymentConfig:
    return replace(config, restarted_at="")


def rollback_target(*, deployment: Deployment, to_revision: int | None, current: DeploymentConfig) -> Revision:
    """The revision a rollback of `deployment` restores. `to_revision` None: the newest revision,
    older than the newest one, whose config differs from `current` (a restart is not a difference).
    Refused (InvalidInput on to_revision) when there is none, it does not exist, it was pruned, or
    its config is the current one."""
    revisions = Revision.objects.filter(deployment=deployment, created_at__gte=deployment.created_at)
    newest = revisions.order_by("-number").values_list("number", flat=True).first()
    if newest is None:
        raise InvalidInput(f"Deployment {deployment.identifier!r} has no revision yet (nothing was applied).",
                           code="no_revision", fields={"to_revision": ["the deployment has no revision yet"]})
    if to_revision is None:
        for candidate in revisions.filter(number__lt=newest).order_by("-number")[:settings.K8SDM_REVISION_HISTORY]:
            if _ignoring_restart(DeploymentConfig.from_input(candidate.config)) != _ignoring_restart(current):
                return candidate
        raise InvalidInput("No earlier revision differs from the current config: nothing to roll back to.",
                           code="no_earlier_revision",
                           fields={"to_revision": ["no earlier revision with a different config"]})
    if to_revision > newest or to_revision < 1:
        raise InvalidInput(f"Revision {to_revision} does not exist (the newest is {newest}).",
                           code="revision_not_found", fields={"to_revision": [f"no revision {to_revision}"]})
    target = revisions.filter(number=to_revision).first()
    if target is None:
        raise InvalidInput(
            f"Revision {to_revision} was pruned: only the last {settings.K8SDM_REVISION_HISTORY} revisions are kept.",
            code="revision_pruned", fields={"to_revision": [f"revision {to_revision} was pruned"]},
        )
    if _ignoring_restart(DeploymentConfig.from_input(target.config)) == _ignoring_restart(current):
        raise InvalidInput(f"Revision {to_revision} has the current config: rolling back to it changes nothing.",
                           code="rollback_to_current", fields={"to_revision": ["equals the current config"]})
    return target
