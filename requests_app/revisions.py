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
from django.db import connection
from django.utils import timezone

from deployments_app.models import Deployment, DeploymentHealth
from k8sdm import rows
from requests_app.models import DeploymentRequest, RequestAction, Revision, RevisionKind

KIND_OF_ACTION = {
    RequestAction.CREATE: RevisionKind.CREATE,
    RequestAction.UPDATE: RevisionKind.UPDATE,
    RequestAction.ROLLBACK: RevisionKind.ROLLBACK,
    RequestAction.RESTART: RevisionKind.RESTART,
}


_TABLE = Revision._meta.db_table


def revision_record(*, request: DeploymentRequest, generation: int | None) -> Revision | None:
    """The revision made by `request`, which has just succeeded (None for a DELETE). Plain SQL:
    this runs in the transaction of every successful apply (k8sdm/rows.py says why)."""
    kind = KIND_OF_ACTION.get(request.action)
    if kind is None:
        return None
    with connection.cursor() as cursor:
        if kind == RevisionKind.CREATE:
            cursor.execute(f"DELETE FROM {_TABLE} WHERE deployment_id = %s", [request.deployment_id])
            number = 1
        else:
            cursor.execute(f"SELECT max(number) FROM {_TABLE} WHERE deployment_id = %s", [request.deployment_id])
            number = (cursor.fetchone()[0] or 0) + 1
    revision = rows.insert(Revision(
        deployment_id=request.deployment_id, number=number, kind=kind, config=request.config, request=request,
        user_id=request.user_id, message=request.message, rollback_of=request.rollback_of, generation=generation,
    ))
    keep = max(1, settings.K8SDM_REVISION_HISTORY)
    if number > keep:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {_TABLE} WHERE deployment_id = %s AND number <= %s",
                           [request.deployment_id, number - keep])
    return revision


def revisions_mark_completed(*, deployment: Deployment) -> int:
    """Stamp completed_at on the revisions at the generation `deployment` is HEALTHY at; how many."""
    if not (deployment.health == DeploymentHealth.HEALTHY and deployment.generation is not None
            and (deployment.observed_generation or 0) >= deployment.generation):
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_TABLE} SET completed_at = %s WHERE deployment_id = %s AND generation = %s "
                       f"AND completed_at IS NULL", [timezone.now(), deployment.pk, deployment.generation])
        return cursor.rowcount
