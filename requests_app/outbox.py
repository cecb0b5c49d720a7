"""The transactional outbox's rows: a request committed in Postgres is published to JetStream, always.

The outbox lives on the request row (`published_at IS NULL`: not yet acknowledged by JetStream).
The api publishes right after commit (requests_app/publishing.py); what that misses (NATS down,
the process killed between commit and publish) the relay in every `runworker`
(requests_app/relay.py) publishes later. This module is the SQL both use: `claim_pending` claims a
batch with `FOR UPDATE SKIP LOCKED` plus a short lease (k8sdm/outbox.py, shared with the events'
outbox: several relays never publish the same row at once and no transaction is held open across
the network call), `claim_stale` finds
requests whose message is gone, `mark_published` stamps the ack. Every message carries
`Nats-Msg-Id = request/<pk>`, so a re-publish inside JetStream's duplicate window is dropped.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from k8sdm import outbox as shared_outbox
from k8sdm.messaging.messages import ApplyRequest
from requests_app.models import DeploymentRequest

logger = logging.getLogger(__name__)

LEASE_SECONDS = shared_outbox.LEASE_SECONDS


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


def claim_pending(*, limit: int = 200, grace_seconds: float | None = None) -> list[ApplyRequest]:
    """Claim up to `limit` unpublished requests older than the grace period (the API's own
    on_commit publish gets that long first). Commits at once; the lease keeps other relays off."""
    grace = settings.K8SDM_OUTBOX_GRACE_SECONDS if grace_seconds is None else grace_seconds
    return _messages(shared_outbox.claim_pending(
        table=DeploymentRequest._meta.db_table, returning="id, identifier, correlation_id", limit=limit,
        grace_seconds=grace))


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
