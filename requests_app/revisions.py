"""Revisions: the worker's record of every config it applied successfully.

Contract: `revision_record` runs inside the transaction that marks a CREATE, UPDATE, ROLLBACK or
RESTART request SUCCESS (requests_app/processing.py), while the worker holds the deployment's lock,
so numbers are assigned one at a time (the unique (deployment, number) key backs that up). A CREATE
starts the history again at 1 (a reused identifier is a new deployment); every other kind adds
newest + 1. Only the newest K8SDM_REVISION_HISTORY are kept. `revisions_mark_completed` stamps the
revisions whose generation the deployment is HEALTHY at: the target of an automatic rollback is the
newest revision that completed.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from deployments_app.models import Deployment, DeploymentHealth
from requests_app.models import DeploymentRequest, RequestAction, Revision, RevisionKind

KIND_OF_ACTION = {
    RequestAction.CREATE: RevisionKind.CREATE,
    RequestAction.UPDATE: RevisionKind.UPDATE,
    RequestAction.ROLLBACK: RevisionKind.ROLLBACK,
    RequestAction.RESTART: RevisionKind.RESTART,
}


def revision_record(*, request: DeploymentRequest, generation: int | None) -> Revision | None:
    """The revision made by `request`, which has just succeeded (None for a DELETE)."""
    kind = KIND_OF_ACTION.get(request.action)
    if kind is None:
        return None
    revisions = Revision.objects.filter(deployment_id=request.deployment_id)
    if kind == RevisionKind.CREATE:
        revisions.delete()
        number = 1
    else:
        newest = revisions.order_by("-number").values_list("number", flat=True).first()
        number = (newest or 0) + 1
    revision = Revision.objects.create(
        deployment_id=request.deployment_id, number=number, kind=kind, config=request.config, request=request,
        user_id=request.user_id, message=request.message, rollback_of=request.rollback_of, generation=generation,
    )
    keep = max(1, settings.K8SDM_REVISION_HISTORY)
    if number > keep:
        revisions.filter(number__lte=number - keep).delete()
    return revision


def revisions_mark_completed(*, deployment: Deployment) -> int:
    """Stamp completed_at on the revisions at the generation `deployment` is HEALTHY at; how many."""
    if not (deployment.health == DeploymentHealth.HEALTHY and deployment.generation is not None
            and (deployment.observed_generation or 0) >= deployment.generation):
        return 0
    return Revision.objects.filter(deployment_id=deployment.pk, generation=deployment.generation,
                                   completed_at__isnull=True).update(completed_at=timezone.now())
