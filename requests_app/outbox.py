"""The transactional outbox: a request committed in Postgres is published to JetStream, always.

The API writes a request with `published_at = NULL` in the same transaction as the rest of its
changes and hands it to the publisher right after commit (`publish_after_commit`, the fast path;
the ack is stamped in the background). If that
publish fails (NATS down, process killed between commit and publish) the row stays pending, and
the relay in every `runworker` (`relay_once`) picks it up: it claims a batch with
`FOR UPDATE SKIP LOCKED` plus a short lease (so several relays never publish the same row at once
and no transaction is held open across the network call), publishes each with
`Nats-Msg-Id = request/<pk>` (a re-publish inside JetStream's duplicate window is dropped), and
stamps `published_at` on the ack.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from requests_app.messages import ApplyRequest
from requests_app.models import DeploymentRequest

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30


def message_for(request: DeploymentRequest) -> ApplyRequest:
    return ApplyRequest(request_pk=request.pk, identifier=request.identifier, correlation_id=request.correlation_id)


def _messages(rows: list[tuple]) -> list[ApplyRequest]:
    """(id, identifier, correlation_id) rows from a claim, oldest first, as messages."""
    return [ApplyRequest(request_pk=pk, identifier=ident, correlation_id=cid) for pk, ident, cid in sorted(rows)]


def mark_published(pks: list[int]) -> int:
    if not pks:
        return 0
    return DeploymentRequest.objects.filter(pk__in=pks, published_at__isnull=True).update(
        published_at=timezone.now(), outbox_lease_until=None
    )


def publish_now(message: ApplyRequest, *, fresh: bool = False) -> bool:
    """Publish one request from synchronous code; True when JetStream acknowledged it.

    `fresh` gives the message a new Nats-Msg-Id, so JetStream delivers it even inside the
    duplicate window (an operator's deliberate re-publish)."""
    from k8sdm.jetstream import sync_publisher

    msg_id = f"{message.msg_id}/{timezone.now().timestamp():.6f}" if fresh else message.msg_id
    result = sync_publisher().publish(subject=message.subject, payload=message.to_bytes(), msg_id=msg_id)
    if result.ok:
        mark_published([message.request_pk])
        return True
    _log_deferred(message, result.error)
    return False


def _log_deferred(message: ApplyRequest, error: str) -> None:
    logger.warning(
        "publish of request %s deferred to the outbox relay: %s", message.request_pk, error,
        extra={"request_pk": message.request_pk, "correlation_id": message.correlation_id},
    )


class _PublishedMarker:
    """Stamps published_at for requests JetStream acknowledged, in batches, from a thread of its
    own, so an api response never waits for the ack nor pays a second commit. Losing a stamp
    (the process dies first) only means the relay publishes the request again, which JetStream
    drops as a duplicate within its window and the worker skips once the request is finished."""

    def __init__(self):
        self._pks: list[int] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="outbox-marker", daemon=True)
        self._thread.start()

    def add(self, pk: int) -> None:
        with self._cond:
            self._pks.append(pk)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pks:
                    self._cond.wait()
                batch, self._pks = self._pks, []
            try:
                close_old_connections()
                mark_published(batch)
            except DatabaseError as exc:
                logger.warning("could not stamp %d published request(s) (%s): the relay will re-publish them",
                               len(batch), exc)


_marker: _PublishedMarker | None = None
_marker_pid: int | None = None
_marker_lock = threading.Lock()


def published_marker() -> _PublishedMarker:
    global _marker, _marker_pid
    with _marker_lock:
        if _marker is None or _marker_pid != os.getpid():
            _marker, _marker_pid = _PublishedMarker(), os.getpid()
        return _marker


def publish_in_background(message: ApplyRequest) -> None:
    """The api's fast path: hand the message to the publisher and return at once."""
    from k8sdm.jetstream import sync_publisher

    def done(result):
        if result.ok:
            published_marker().add(message.request_pk)
        else:
            _log_deferred(message, result.error)

    sync_publisher().publish_in_background(
        subject=message.subject, payload=message.to_bytes(), msg_id=message.msg_id, on_done=done
    )


def publish_after_commit(request: DeploymentRequest) -> None:
    """Call inside the transaction that created `request`: publishes once it has committed."""
    message = message_for(request)
    transaction.on_commit(lambda: publish_in_background(message))


def claim_pending(*, limit: int = 200, grace_seconds: float | None = None) -> list[ApplyRequest]:
    """Claim up to `limit` unpublished requests older than the grace period (the API's own
    on_commit publish gets that long first). Commits at once; the lease keeps other relays off."""
    grace = settings.K8SDM_OUTBOX_GRACE_SECONDS if grace_seconds is None else grace_seconds
    now = timezone.now()
    table = DeploymentRequest._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET outbox_lease_until = %s
            WHERE id IN (
                SELECT id FROM {table}
                WHERE published_at IS NULL
                  AND created_at <= %s
                  AND (outbox_lease_until IS NULL OR outbox_lease_until < %s)
                ORDER BY id
                LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id, identifier, correlation_id
            """,
            [now + timedelta(seconds=LEASE_SECONDS), now - timedelta(seconds=grace), now, limit],
        )
        return _messages(cursor.fetchall())


def claim_stale(*, limit: int = 100, stale_seconds: float | None = None) -> list[ApplyRequest]:
    """Requests published long ago and still pending, with no attempt for as long: their message
    is gone (deliveries exhausted while the deployment was busy, or the stream was purged).
    Stamps published_at anew so each is re-published at most once per period; the caller
    publishes them with a fresh Nats-Msg-Id. The worker skips finished requests, so this is safe."""
    stale = settings.K8SDM_STALE_REQUEST_SECONDS if stale_seconds is None else stale_seconds
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale)
    table = DeploymentRequest._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET published_at = %s
            WHERE id IN (
                SELECT id FROM {table}
                WHERE status = 'CREATED' AND published_at < %s AND (started_at IS NULL OR started_at < %s)
                ORDER BY id
                LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id, identifier, correlation_id
            """,
            [now, cutoff, cutoff, limit],
        )
        return _messages(cursor.fetchall())


def backlog() -> int:
    return DeploymentRequest.objects.filter(published_at__isnull=True).count()
