"""Applying deployment requests to Kubernetes: the worker's services.

Contract:
- The request row in Postgres is the record of truth; a message only says "look at request N".
  A finished request is skipped, so redelivery (at-least-once) is harmless.
- Requests of one deployment are applied one at a time and in acceptance order: the caller holds
  a per-deployment Postgres advisory lock (session level, so no transaction stays open across the
  Kubernetes call, and a killed worker's lock dies with its connection) and drains every older
  pending request of that deployment before the one it was asked for.
- Kubernetes errors (DESIGN 6.4): AlreadyExists on a Deployment this request created is success;
  Conflict re-reads and retries; NotFound on delete is success; 400/403/422 fail at once with the
  server's message; connection errors, timeouts, 429 and 5xx are retried with exponential backoff
  honouring Retry-After, then fail after K8SDM_APPLY_MAX_ATTEMPTS (attempts are counted in the row,
  so the bound holds across crashes).
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from deployments_app import k8s
from deployments_app.config import DeploymentConfig, is_managed, last_request_of
from deployments_app.models import Deployment
from deployments_app.sync import deployment_mark_gone, deployment_sync
from requests_app import metrics
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from users_app.models import User

logger = logging.getLogger(__name__)

# Per-deployment advisory locks use one bigint key: this prefix in the high bits, the id below.
LOCK_BASE = 0x6B38 << 40


class Outcome(enum.Enum):
    ACK = "ack"  # done (or nothing to do)
    NAK = "nak"  # try again later
    TERM = "term"  # can never succeed


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    delay: float = 0.0
    reason: str = ""


class Stopping(Exception):
    """The daemon is shutting down: leave the request pending for the next delivery."""


# --- the per-deployment lock -----------------------------------------------------------------


def _try_lock(deployment_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s + %s)", [LOCK_BASE, deployment_id])
        return bool(cursor.fetchone()[0])


def _unlock(deployment_id: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s + %s)", [LOCK_BASE, deployment_id])
    except DatabaseError:
        connection.close()  # a lost connection has released the lock already


def acquire_deployment_lock(deployment_id: int, *, wait: float, stop: threading.Event | None = None,
                            heartbeat=None) -> bool:
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        if _try_lock(deployment_id):
            return True
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            return False
        if heartbeat:
            heartbeat()
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


# --- applying one request ----------------------------------------------------------------------


# The hot path is plain SQL: the ORM's query compilation was most of the worker's CPU per request.
_TABLE = DeploymentRequest._meta.db_table


def _finish(req: DeploymentRequest, *, status: str, error: str = "", resource_version: str = "") -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET status = %s, error = %s, resource_version = %s, finished_at = %s "
            f"WHERE id = %s AND status = %s",
            [status, error[:4000], resource_version, timezone.now(), req.pk, RequestStatus.CREATED],
        )
        updated = cursor.rowcount
    req.status, req.error, req.resource_version = status, error, resource_version
    return updated == 1


def _backoff(attempt: int, retry_after: float | None) -> float:
    base = settings.K8SDM_RETRY_BASE_SECONDS * (2 ** max(0, attempt - 1))
    delay = min(settings.K8SDM_RETRY_MAX_SECONDS, base) * random.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.K8SDM_RETRY_MAX_SECONDS))
    return delay


def _apply_create(req: DeploymentRequest, owner: str) -> dict:
    body = DeploymentConfig.from_input(req.config).to_manifest(owner=owner, request_pk=req.pk)
    try:
        return k8s.create_deployment(body)
    except k8s.K8sError as exc:
        if not exc.already_exists:
            raise
        live = k8s.get_deployment(req.namespace, req.identifier)
        if live is not None and is_managed(live) and last_request_of(live) == str(req.pk):
            # Our own create from an earlier attempt (the worker died before recording it).
            return live
        raise k8s.K8sError(
            status=409,
            reason="AlreadyExists",
            message=f"a Deployment {req.namespace}/{req.identifier} already exists in the cluster and was not "
            f"created by this request ({exc.message})",
        ) from None


def _apply_update(req: DeploymentRequest, owner: str) -> dict:
    retries = settings.K8SDM_CONFLICT_RETRIES
    config = DeploymentConfig.from_input(req.config)
    for attempt in range(retries):
        live = k8s.get_deployment(req.namespace, req.identifier)
        if live is None:
            raise k8s.K8sError(
                status=404, reason="NotFound",
                message=f"Deployment {req.namespace}/{req.identifier} does not exist in the cluster",
            )
        body = config.apply_to_live(live, owner=owner, request_pk=req.pk)
        try:
            return k8s.replace_deployment(body)
        except k8s.K8sError as exc:
            if not exc.conflict:
                raise
            metrics.RETRIES.labels("conflict").inc()
            logger.info("conflict updating %s/%s: re-reading", req.namespace, req.identifier)
            # The controller writes status while a rollout runs; a short jittered pause de-syncs us.
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    raise k8s.K8sError(status=409, reason="Conflict",
                       message=f"gave up after {retries} conflicting concurrent changes")


def _apply_delete(req: DeploymentRequest) -> None:
    try:
        k8s.delete_deployment(req.namespace, req.identifier)
    except k8s.K8sError as exc:
        if not exc.not_found:  # already gone is what we wanted
            raise


def apply_request(req: DeploymentRequest, *, stop: threading.Event | None = None, heartbeat=None) -> str:
    """Apply one pending request (the caller holds its deployment's lock); returns the final status."""
    owner = getattr(req, "owner_external_id", None) or req.user.user_external_id
    started = time.perf_counter()
    while True:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {_TABLE} SET attempts = attempts + 1, started_at = %s WHERE id = %s",
                           [timezone.now(), req.pk])
        req.attempts += 1
        try:
            if req.action == RequestAction.CREATE:
                live = _apply_create(req, owner)
            elif req.action == RequestAction.UPDATE:
                live = _apply_update(req, owner)
            else:
                _apply_delete(req)
                live = None
        except k8s.K8sError as exc:
            if exc.transient and req.attempts < settings.K8SDM_APPLY_MAX_ATTEMPTS:
                delay = _backoff(req.attempts, exc.retry_after)
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
            _finish(req, status=RequestStatus.FAILURE, error=error)
            if req.action == RequestAction.CREATE:
                deployment_mark_gone(deployment_id=req.deployment_id)
            _log_result(req, started)
            return req.status
        rv = ((live or {}).get("metadata") or {}).get("resourceVersion", "")
        with transaction.atomic():
            _finish(req, status=RequestStatus.SUCCESS, resource_version=rv)
            deployment_sync(namespace=req.namespace, name=req.identifier, live=live)
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


# --- handling a message ---------------------------------------------------------------------------


def handle_apply(request_pk: int, *, stop: threading.Event | None = None, heartbeat=None) -> Decision:
    """Handle an ApplyRequest message: apply that request, and every older pending request of
    its deployment first. Safe to call any number of times for the same request."""
    # One round trip: the request's state and, if it is still pending, its deployment's lock.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status, deployment_id, CASE WHEN status = %s THEN pg_try_advisory_lock(%s + deployment_id) "
            f"ELSE false END FROM {_TABLE} WHERE id = %s",
            [RequestStatus.CREATED, LOCK_BASE, request_pk],
        )
        row = cursor.fetchone()
    if row is None:
        return Decision(Outcome.TERM, reason=f"request {request_pk} does not exist")
    status, deployment_id, locked = row
    if status != RequestStatus.CREATED:
        return Decision(Outcome.ACK, reason="already finished")
    if not locked and not acquire_deployment_lock(deployment_id, wait=5.0, stop=stop, heartbeat=heartbeat):
        # Another worker is applying this deployment's requests (ours included, in order).
        return Decision(Outcome.NAK, delay=0.5, reason="deployment busy in another worker")
    try:
        while True:
            pending = next(iter(DeploymentRequest.objects.raw(
                f"SELECT r.*, u.user_external_id AS owner_external_id FROM {_TABLE} r "
                f"JOIN {User._meta.db_table} u ON u.id = r.user_id "
                f"WHERE r.deployment_id = %s AND r.status = %s AND r.id <= %s ORDER BY r.id LIMIT 1",
                [deployment_id, RequestStatus.CREATED, request_pk],
            )), None)
            if pending is None:
                return Decision(Outcome.ACK)
            try:
                apply_request(pending, stop=stop, heartbeat=heartbeat)
            except Stopping:
                return Decision(Outcome.NAK, delay=0.0, reason="shutting down")
            if pending.pk == request_pk:
                return Decision(Outcome.ACK)
    finally:
        _unlock(deployment_id)


def handle_sync(namespace: str, name: str, *, stop: threading.Event | None = None, heartbeat=None) -> Decision:
    """Handle a SyncDeployment message: read the live object and mirror it (404 = DELETED).

    The read and the write happen under the deployment's lock, so a sync can never write a read
    taken before a concurrent apply over that apply's newer result."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, pg_try_advisory_lock(%s + id) FROM {Deployment._meta.db_table} "
            f"WHERE identifier = %s AND namespace = %s",
            [LOCK_BASE, name, namespace],
        )
        row = cursor.fetchone()
    if row is None:
        # deployment_sync only ever touches rows k8sdm created: anything else is left alone.
        metrics.SYNCS.labels("false").inc()
        return Decision(Outcome.ACK, reason="not managed by k8sdm (no row)")
    deployment_id, locked = row
    if not locked and not acquire_deployment_lock(deployment_id, wait=2.0, stop=stop, heartbeat=heartbeat):
        return Decision(Outcome.NAK, delay=0.5, reason="deployment busy: a request is being applied")
    try:
        try:
            live = k8s.get_deployment(namespace, name)
        except k8s.K8sError as exc:
            if exc.transient:
                return Decision(Outcome.NAK, delay=_backoff(1, exc.retry_after), reason=str(exc))
            return Decision(Outcome.TERM, reason=str(exc))
        result = deployment_sync(namespace=namespace, name=name, live=live)
    finally:
        _unlock(deployment_id)
    metrics.SYNCS.labels(str(result.changed).lower()).inc()
    return Decision(Outcome.ACK, reason=result.reason)
