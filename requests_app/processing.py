"""Applying deployment requests: what the worker does with an ApplyRequest message.

Contract:
- The request row in Postgres is the record of truth; a message only says "look at request N".
  A finished request is skipped, so redelivery (at-least-once) is harmless.
- Requests of one deployment are applied one at a time and in acceptance order: `handle_apply`
  holds the deployment's lock (deployments_app/locks.py) and drains every older pending request
  of that deployment before the one it was asked for.
- The cluster is written through deployments_app's services (deployments_app/operations.py),
  which make each write idempotent (AlreadyExists of our own create, Conflict re-read, NotFound on
  delete). 400/403/422 fail at once with the server's message; connection errors, timeouts, 429
  and 5xx are retried after `k8sdm.backoff.delay` (honouring Retry-After), then fail after
  K8SDM_APPLY_MAX_ATTEMPTS: attempts are counted in the row, so the bound holds across crashes.
- Ownership: an UPDATE or DELETE is applied only to the object the deployment's CREATE made (its
  uid, stored by the sync of that CREATE's result); one that follows a CREATE which failed ends
  FAILURE ("the CREATE it followed failed"), and one whose object is not ours ends FAILURE
  (`NotOwned`) with the row let go of (DELETED, with the reason). Nothing in the cluster changes.
- The outcome for the message is a `Decision`: ack (done), nak with a delay (try again later) or
  term (can never succeed); the worker carries it out.

The hot path is plain SQL: the ORM's query compilation was most of the worker's CPU per request.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from deployments_app import locks
from deployments_app.config import DeploymentConfig
from deployments_app.k8s import K8sError
from deployments_app.models import Deployment
from deployments_app.operations import (
    NotOwned,
    deployment_create_in_cluster,
    deployment_delete_in_cluster,
    deployment_update_in_cluster,
)
from deployments_app.sync import deployment_mark_gone, deployment_sync
from events_app import emit as events
from k8sdm import backoff, rows
from requests_app import metrics
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from requests_app.revisions import revision_record
from requests_app.rollouts import WAITING_COLUMNS, rollout_begin, rollout_not_applied, rollouts_observe_row
from users_app.models import User

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    ACK = "ack"  # done (or nothing to do)
    NAK = "nak"  # try again later
    TERM = "term"  # can never succeed


@dataclass(frozen=True)
class Decision:
    """What to do with the message. A NAK's `delay` None means "the worker's backoff for this
    delivery" (`nak_delay`); 0 means at once (another worker may take it)."""

    outcome: Outcome
    delay: float | None = None
    reason: str = ""


def nak_delay(delivery: int) -> float:
    """The delay before delivery `delivery + 1` of a message nak'ed for the `delivery`-th time."""
    return backoff.delay(delivery, base=settings.K8SDM_RETRY_BASE_SECONDS, cap=settings.K8SDM_NAK_MAX_SECONDS)


class Stopping(Exception):
    """The daemon is shutting down: leave the request pending for the next delivery."""


_TABLE = DeploymentRequest._meta.db_table


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """How long a request waits after `attempts` failed attempts (the shared backoff rule)."""
    return backoff.delay(attempts, base=settings.K8SDM_RETRY_BASE_SECONDS, cap=settings.K8SDM_RETRY_MAX_SECONDS,
                         retry_after=retry_after)


def _finish(req: DeploymentRequest, *, status: str, error: str = "", resource_version: str = "") -> bool:
    """CREATED -> `status`; True if this call made the transition. Sets `req.more_pending`: whether
    another request of the deployment was still pending then (None: not known), which spares
    `handle_apply` its look for the next one when there is none."""
    finished_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} r SET status = %s, error = %s, resource_version = %s, finished_at = %s "
            f"WHERE r.id = %s AND r.status = %s RETURNING EXISTS (SELECT 1 FROM {_TABLE} n "
            f"WHERE n.deployment_id = r.deployment_id AND n.status = %s AND n.id <> r.id)",
            [status, error[:4000], resource_version, finished_at, req.pk, RequestStatus.CREATED,
             RequestStatus.CREATED],
        )
        updated = cursor.rowcount
        req.more_pending = cursor.fetchone()[0] if updated == 1 else None
    req.status, req.error, req.resource_version, req.finished_at = status, error, resource_version, finished_at
    if updated == 1:  # only the worker that made the transition tells about it (after commit)
        owner = getattr(req, "owner_external_id", None) or req.user.user_external_id
        events.request_finished(req, user_external_id=owner)
    return updated == 1


def _write_to_cluster(req: DeploymentRequest, config: DeploymentConfig, owner: str, uid: str) -> dict | None:
    """One attempt; the live object afterwards (None after a delete)."""
    if req.action == RequestAction.CREATE:
        return deployment_create_in_cluster(config=config, owner=owner, request_pk=req.pk)
    if req.action in (RequestAction.UPDATE, RequestAction.ROLLBACK, RequestAction.RESTART):
        # A rollback or a restart is an update to a config the server computed.
        return deployment_update_in_cluster(config=config, owner=owner, request_pk=req.pk, uid=uid,
                                            on_conflict=metrics.RETRIES.labels("conflict").inc)
    deployment_delete_in_cluster(namespace=req.namespace, name=req.identifier, uid=uid, owner=owner)
    return None


def _refusal(req: DeploymentRequest) -> tuple[str, str]:
    """(why this UPDATE/DELETE must not be applied or '', the uid of the object it may touch).
    It follows the newest CREATE of its deployment accepted before it: if that one failed, the
    object it was queued for never became ours."""
    with connection.cursor() as cursor:
        cursor.execute(_REFUSAL_SQL, [req.deployment_id, req.deployment_id, RequestAction.CREATE, req.pk])
        create_request_id, create_status, uid = cursor.fetchone()
    if create_status == RequestStatus.FAILURE:
        return f"the CREATE it followed failed (request {create_request_id}); nothing was changed", uid or ""
    return "", uid or ""


# The newest earlier CREATE of the deployment (its request_id and status) and the uid its row
# owns, in one round trip.
_REFUSAL_SQL = (
    f"SELECT c.request_id, c.status, (SELECT uid FROM {Deployment._meta.db_table} WHERE id = %s) "
    f"FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT request_id, status FROM {_TABLE} "
    f"WHERE deployment_id = %s AND action = %s AND id < %s ORDER BY id DESC LIMIT 1) c ON true"
)


def apply_request(req: DeploymentRequest, *, stop: threading.Event | None = None, heartbeat=None) -> str:
    """Apply one pending request (the caller holds its deployment's lock); returns the final status."""
    owner = getattr(req, "owner_external_id", None) or req.user.user_external_id
    config = DeploymentConfig.from_input(req.config) if req.config else None
    started = time.perf_counter()
    uid = ""
    if req.action != RequestAction.CREATE:
        refusal, uid = _refusal(req)
        if refusal:
            with transaction.atomic():
                if _finish(req, status=RequestStatus.FAILURE, error=refusal):
                    rollout_not_applied(request=req)
            _log_result(req, started)
            return req.status
    while True:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {_TABLE} SET attempts = attempts + 1, started_at = %s WHERE id = %s",
                           [timezone.now(), req.pk])
        req.attempts += 1
        try:
            live = _write_to_cluster(req, config, owner, uid)
        except NotOwned as exc:
            with transaction.atomic():  # the request fails and the row lets go of the stranger's object
                if _finish(req, status=RequestStatus.FAILURE, error=str(exc)):
                    rollout_not_applied(request=req)
                deployment_sync(namespace=req.namespace, name=req.identifier, live=exc.live)
            _log_result(req, started)
            return req.status
        except K8sError as exc:
            if exc.transient and req.attempts < settings.K8SDM_APPLY_MAX_ATTEMPTS:
                delay = retry_delay(req.attempts, exc.retry_after)
                metrics.RETRIES.labels("transient").inc()
                logger.warning(
                    "request %s (%s %s) attempt %d failed: %s; retrying in %.2fs",
                    req.request_id, req.action, req.identifier, req.attempts, exc, delay,
                    extra={"correlation_id": req.correlation_id},
                )
                _sleep(delay, stop, heartbeat)
                continue
            if exc.transient:
                error = f"gave up after {req.attempts} attempts; last error: {exc}"
            else:
                error = str(exc)
            with transaction.atomic():  # the request and its deployment change together
                if _finish(req, status=RequestStatus.FAILURE, error=error):
                    rollout_not_applied(request=req)
                if req.action == RequestAction.CREATE:
                    deployment_mark_gone(deployment_id=req.deployment_id,
                                         reason=f"the CREATE request {req.request_id} failed")
            _log_result(req, started)
            return req.status
        rv = ((live or {}).get("metadata") or {}).get("resourceVersion", "")
        generation = ((live or {}).get("metadata") or {}).get("generation")
        with transaction.atomic():
            if _finish(req, status=RequestStatus.SUCCESS, resource_version=rv):
                # The revision and the rollout's start commit with the result (requests_app/revisions.py).
                revision_record(request=req, generation=generation)
                rollout_begin(request=req, generation=generation)
            # A CREATE's result is the object this row owns from now on: its uid is bound here only.
            synced = deployment_sync(namespace=req.namespace, name=req.identifier, live=live,
                                     applied=config if live is not None else None,
                                     created=req.action == RequestAction.CREATE, also_select=WAITING_COLUMNS)
        # Its rollout (if it waits for one) and its revision may be complete at once (nothing in the
        # pod template changed): no later sync would write anything to say so. The row was read in
        # this transaction, after the revision and the rollout's start, under the lock we still hold.
        if synced.row is not None:
            rollouts_observe_row(synced.row)
        _log_result(req, started)
        return req.status


def _sleep(delay: float, stop: threading.Event | None, heartbeat) -> None:
    deadline = time.monotonic() + delay
    while (remaining := deadline - time.monotonic()) > 0:
        if stop is not None and stop.is_set():
            raise Stopping()
        if heartbeat:
            heartbeat()
        time.sleep(min(remaining, 1.0))


def _log_result(req: DeploymentRequest, started: float) -> None:
    duration = time.perf_counter() - started
    metrics.APPLIED.labels(req.action, req.status).inc()
    metrics.APPLY_SECONDS.labels(req.action).observe(duration)
    logger.info(
        "applied request %s: %s %s/%s -> %s in %.1f ms%s",
        req.request_id, req.action, req.namespace, req.identifier, req.status, duration * 1000,
        f" ({req.error})" if req.error else "",
        extra={
            "request_id": req.request_id,
            "request_pk": req.pk,
            "identifier": req.identifier,
            "action": req.action,
            "outcome": req.status,
            "duration_ms": round(duration * 1000, 1),
            "attempts": req.attempts,
            "correlation_id": req.correlation_id,
        },
    )


# How many newer requests of its deployment a worker applies after the one it was asked for.
HAND_ON_LIMIT = 50


def handle_apply(request_pk: int, *, stop: threading.Event | None = None, heartbeat=None) -> Decision:
    """Handle an ApplyRequest message: apply that request, and every older pending request of
    its deployment first. Then, still holding the lock, the newer ones that arrived meanwhile (up
    to HAND_ON_LIMIT): their messages found the deployment busy and wait for a redelivery, which
    then finds them finished. Safe to call any number of times for the same request."""
    # One round trip: the request's state and, if it is still pending, its deployment's lock.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status, deployment_id, CASE WHEN status = %s THEN "
            f"pg_try_advisory_lock({locks.lock_key_sql('deployment_id')}) ELSE false END FROM {_TABLE} WHERE id = %s",
            [RequestStatus.CREATED, request_pk],
        )
        row = cursor.fetchone()
    if row is None:
        return Decision(Outcome.TERM, reason=f"request {request_pk} does not exist")
    status, deployment_id, locked = row
    if status != RequestStatus.CREATED:
        return Decision(Outcome.ACK, reason="already finished")
    if not locked and not locks.acquire(deployment_id, wait=5.0, stop=stop, heartbeat=heartbeat):
        # Another worker is applying this deployment's requests (ours included, in order).
        return Decision(Outcome.NAK, reason="deployment busy in another worker")
    handed_on = 0  # requests applied from this one on (itself included)
    try:
        while not handed_on or (handed_on <= HAND_ON_LIMIT and not (stop is not None and stop.is_set())):
            pending = next(iter(DeploymentRequest.objects.raw(
                f"SELECT {rows.columns(DeploymentRequest, 'r')}, u.user_external_id AS owner_external_id "
                f"FROM {_TABLE} r "
                f"JOIN {User._meta.db_table} u ON u.id = r.user_id "
                f"WHERE r.deployment_id = %s AND r.status = %s ORDER BY r.id LIMIT 1",
                [deployment_id, RequestStatus.CREATED],
            )), None)
            if pending is None:
                break
            try:
                apply_request(pending, stop=stop, heartbeat=heartbeat)
            except Stopping:
                if pending.pk <= request_pk:
                    return Decision(Outcome.NAK, delay=0.0, reason="shutting down")
                break
            if pending.pk >= request_pk:
                handed_on += 1
            if getattr(pending, "more_pending", None) is False:
                # None was pending when it finished: one accepted since then has its own message,
                # which takes the lock once we let go (locks.acquire waits for it).
                break
        return Decision(Outcome.ACK)
    finally:
        locks.unlock(deployment_id)
