"""Rollout wait: judging a request's rollout after the worker applied it, and the timer.

A request that carried `wait` starts with rollout PENDING. When the worker applies it
(requests_app/processing.py) it stores the Deployment's new metadata.generation and a deadline
(now + timeout_seconds: the budget starts when the change reaches the cluster, not while it waits
in the queue). From then on nothing waits: `rollouts_observe` judges the pending rollouts of a
deployment against its row, which the sync keeps current. It runs after every apply and every
sync that wrote the row, on the row that sync read with `WAITING_COLUMNS` (`rollouts_observe_row`:
no query when nothing waits; requests_app/processing.py, worker.py), and on the worker's timer
(`RolloutTimer`, every K8SDM_ROLLOUT_SCAN_SECONDS, over all pending rollouts), so a rollout whose
worker died is finished by any other worker, or by the next one to start.

The verdict, first match wins:
- the deployment is DELETED: FAILED;
- it moved on to a newer generation (another request was applied meanwhile): FAILED, "superseded",
  and never rolled back automatically (the newer change is what was asked for last);
- at the request's generation, observed: HEALTHY -> COMPLETE; DEGRADED (ProgressDeadlineExceeded,
  ReplicaFailure) -> FAILED with the deployment's health_reason;
- past the deadline: FAILED, "timed out".
Every verdict is a conditional update (rollout = PENDING), so two workers judging at once make one.
On FAILED with rollback_on_failure, the same transaction queues a ROLLBACK (through the ordinary
service, so it is ordered with every other request) to the newest earlier revision that completed,
with a wait of its own (the same timeout, started afresh, and no rollback of its own), and links
the two requests both ways. No rollback when a newer request of that deployment was accepted after
the failed one, or when no earlier revision completed; the reason says so.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from deployments_app.config import DeploymentConfig
from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from k8sdm import rows
from k8sdm.errors import DomainError
from k8sdm.runtime import POSTGRES, db_hygiene
from requests_app.models import DeploymentRequest, RequestStatus, Revision, RolloutState
from requests_app.revisions import revisions_mark_completed
from requests_app.services import deployment_request_rollback

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str
    may_roll_back: bool = True


def rollout_begin(*, request: DeploymentRequest, generation: int | None) -> None:
    """The request was applied: its rollout is judged at `generation`, until now + its timeout."""
    if request.rollout != RolloutState.PENDING:
        return
    deadline = timezone.now() + timedelta(seconds=request.rollout_timeout_seconds or 0)
    DeploymentRequest.objects.filter(pk=request.pk, rollout=RolloutState.PENDING).update(
        rollout_generation=generation, rollout_deadline=deadline)
    request.rollout_generation, request.rollout_deadline = generation, deadline


def rollout_not_applied(*, request: DeploymentRequest) -> None:
    """The request failed: its change never reached the cluster, so its rollout failed too."""
    if request.rollout != RolloutState.PENDING:
        return
    DeploymentRequest.objects.filter(pk=request.pk, rollout=RolloutState.PENDING).update(
        rollout=RolloutState.FAILED, rollout_reason=f"the request failed, nothing was rolled out: {request.error}"[:4000],
        rollout_finished_at=timezone.now())


def judge(request: DeploymentRequest, deployment: Deployment, now) -> Verdict | None:
    """The verdict on one applied, pending rollout (None: still rolling out)."""
    generation = request.rollout_generation
    if deployment.status == DeploymentStatus.DELETED:
        return Verdict(RolloutState.FAILED, "the deployment was deleted", may_roll_back=False)
    if generation is not None and deployment.generation is not None and deployment.generation > generation:
        return Verdict(RolloutState.FAILED, f"superseded: the deployment moved on to generation "
                       f"{deployment.generation} before generation {generation} completed", may_roll_back=False)
    observed = generation is None or (deployment.generation == generation
                                      and (deployment.observed_generation or 0) >= generation)
    if observed and deployment.health == DeploymentHealth.HEALTHY:
        return Verdict(RolloutState.COMPLETE, f"HEALTHY at generation {generation}")
    if observed and deployment.health == DeploymentHealth.DEGRADED:
        return Verdict(RolloutState.FAILED, deployment.health_reason or "DEGRADED")
    if request.rollout_deadline is not None and now >= request.rollout_deadline:
        last = f"{deployment.health}: {deployment.health_reason}" if deployment.health_reason else deployment.health
        return Verdict(RolloutState.FAILED, f"timed out after {request.rollout_timeout_seconds}s waiting for "
                       f"HEALTHY at generation {generation} (last seen {last})")
    return None


# Whether anything waits on a deployment `d`: an applied rollout still PENDING, a revision not yet
# stamped completed. Read with the row in one statement, here and in the sync (`WAITING_COLUMNS` is
# its `also_select`). Plain SQL: this runs after every apply and every sync that wrote something,
# and building the same query with annotate(Exists(...)) cost more CPU than the round trip itself
# (a py-spy profile of the workers).
WAITING_COLUMNS = (
    f"EXISTS (SELECT 1 FROM {DeploymentRequest._meta.db_table} r WHERE r.deployment_id = d.id "
    f"AND r.rollout = '{RolloutState.PENDING}' AND r.status = '{RequestStatus.SUCCESS}') AS has_pending, "
    f"EXISTS (SELECT 1 FROM {Revision._meta.db_table} v WHERE v.deployment_id = d.id "
    f"AND v.completed_at IS NULL) AS has_uncompleted"
)
_OBSERVE_SQL = f"SELECT {rows.columns(Deployment, 'd')}, {WAITING_COLUMNS} FROM {Deployment._meta.db_table} d WHERE "


def _observe(where: str, params: list) -> int:
    """Judge the applied, pending rollouts of the one deployment matching `where` (SQL on `d`)
    and stamp its revisions that completed; returns how many rollouts ended. One query when there
    is nothing to do (the common case: no pending rollout, every revision completed)."""
    deployment = next(iter(Deployment.objects.raw(_OBSERVE_SQL + where, params)), None)
    return 0 if deployment is None else rollouts_observe_row(deployment)


def rollouts_observe_row(deployment: Deployment) -> int:
    """`rollouts_observe` on a row read with `WAITING_COLUMNS` (by `_observe`, or by the sync that
    has just written it, under the deployment's lock): no query at all when nothing waits on it."""
    if deployment.has_uncompleted:
        revisions_mark_completed(deployment=deployment)
    if not deployment.has_pending:
        return 0
    pending = list(DeploymentRequest.objects.filter(
        deployment_id=deployment.pk, rollout=RolloutState.PENDING, status=RequestStatus.SUCCESS).order_by("id"))
    now = timezone.now()
    ended = 0
    for request in pending:
        verdict = judge(request, deployment, now)
        if verdict is not None and _conclude(request, deployment, verdict):
            ended += 1
    return ended


def rollouts_observe(*, deployment_id: int) -> int:
    """Judge every applied, pending rollout of one deployment; returns how many ended."""
    return _observe("d.id = %s", [deployment_id])


def rollouts_scan() -> int:
    """The timer's round: judge the deployments that have an applied, pending rollout."""
    ids = (DeploymentRequest.objects.filter(rollout=RolloutState.PENDING, status=RequestStatus.SUCCESS)
           .values_list("deployment_id", flat=True).distinct())
    return sum(rollouts_observe(deployment_id=deployment_id) for deployment_id in list(ids))


@transaction.atomic
def _conclude(request: DeploymentRequest, deployment: Deployment, verdict: Verdict) -> bool:
    now = timezone.now()
    reason = verdict.reason
    won = DeploymentRequest.objects.filter(pk=request.pk, rollout=RolloutState.PENDING).update(
        rollout=verdict.state, rollout_reason=reason[:4000], rollout_finished_at=now)
    if won != 1:
        return False  # another worker judged it first
    if verdict.state == RolloutState.COMPLETE:
        Revision.objects.filter(request=request, completed_at__isnull=True).update(completed_at=now)
    elif request.rollback_on_failure and verdict.may_roll_back:
        note = _roll_back(request, deployment, reason)
        DeploymentRequest.objects.filter(pk=request.pk).update(rollout_reason=f"{reason}; {note}"[:4000])
        reason = f"{reason}; {note}"
    logger.log(logging.INFO if verdict.state == RolloutState.COMPLETE else logging.WARNING,
               "rollout of request %s (%s %s): %s: %s", request.request_id, request.action, request.identifier,
               verdict.state, reason,
               extra={"request_id": request.request_id, "request_pk": request.pk, "identifier": request.identifier,
                      "rollout": verdict.state, "correlation_id": request.correlation_id})
    return True


def _roll_back(failed: DeploymentRequest, deployment: Deployment, reason: str) -> str:
    """Queue the automatic rollback of `failed`; what happened, as a note for its rollout_reason."""
    newer = DeploymentRequest.objects.filter(deployment_id=failed.deployment_id, pk__gt=failed.pk).exclude(
        rollback_for=failed).order_by("pk").first()
    if newer is not None:
        return f"not rolled back: request {newer.request_id} ({newer.action}) came after it"
    own = Revision.objects.filter(request=failed).values_list("number", flat=True).first()
    current = replace(DeploymentConfig.from_input({**deployment.desired_config, "identifier": deployment.identifier,
                                                   "namespace": deployment.namespace}), restarted_at="")
    candidates = Revision.objects.filter(deployment_id=failed.deployment_id, completed_at__isnull=False,
                                         created_at__gte=deployment.created_at)
    if own is not None:
        candidates = candidates.filter(number__lt=own)
    target = None
    for revision in candidates.order_by("-number")[:settings.K8SDM_REVISION_HISTORY]:
        if replace(DeploymentConfig.from_input(revision.config), restarted_at="") != current:
            target = revision
            break
    if target is None:
        return "not rolled back: no earlier revision completed"
    try:
        accepted = deployment_request_rollback(
            user_external_id=failed.user.user_external_id, user=failed.user, identifier=failed.identifier,
            to_revision=target.number, request_id=f"auto-rollback-{failed.pk}",
            message=f"automatic rollback: the rollout of request {failed.request_id} failed"[:1024],
            wait={"timeout_seconds": failed.rollout_timeout_seconds, "rollback_on_failure": False},
            correlation_id=failed.correlation_id, rollback_for=failed,
        )
    except DomainError as exc:
        return f"automatic rollback refused: {exc}"
    DeploymentRequest.objects.filter(pk=failed.pk).update(rolled_back_by=accepted.request)
    return f"rolling back to revision {target.number} (request {accepted.request.request_id})"


class RolloutTimer:
    """The worker's timer thread: `rollouts_scan` every K8SDM_ROLLOUT_SCAN_SECONDS until stopped."""

    def __init__(self, *, stop: threading.Event):
        self.stop = stop

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    db_hygiene()
                    rollouts_scan()
                except DatabaseError as exc:  # Postgres down: logged once per outage; next round
                    POSTGRES.refused(exc)
                except Exception as exc:  # noqa: BLE001 - a bug: log it, try again next round
                    logger.error("rollout timer round failed: %s", exc, exc_info=True)
                self.stop.wait(settings.K8SDM_ROLLOUT_SCAN_SECONDS)
        finally:
            connection.close()
