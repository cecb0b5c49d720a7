"""The events' transactional outbox: no accepted transition loses its event to a crash or a NATS outage.

`emit.publish_after_commit` writes an `EventOutbox` row in the transaction of the transition; after
the commit the process's event bus publishes it at once and the `Stamper` stamps `published_at`
on the ack. What that misses (NATS down longer than the bus keeps it, the process killed between
commit and publish) the relay in every `runworker` (requests_app/relay.py, `relay_once`) publishes
later, oldest first, with the same Nats-Msg-Id, so JetStream drops a second copy inside its
duplicate window. The SQL of the claim and the stamping thread are the requests' outbox's
(k8sdm/outbox.py). Published rows are deleted after K8SDM_EVENTS_OUTBOX_KEEP_SECONDS.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from events_app.models import EventOutbox
from k8sdm import outbox as shared_outbox
from k8sdm import rows
from k8sdm.messaging import events

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    pk: int
    subject: str
    payload: bytes
    msg_id: str


def add(event: events.Event) -> EventOutbox:
    """The event's row, in the caller's transaction (plain SQL: one per event, k8sdm/rows.py)."""
    return add_many([event])[0]


def add_many(events_: list[events.Event]) -> list[EventOutbox]:
    """The events' rows, in one statement, in the caller's transaction."""
    return rows.insert_many([EventOutbox(subject=e.subject, payload=e.to_bytes(), msg_id=e.msg_id) for e in events_])


def mark_published(pks: list[int]) -> int:
    if not pks:
        return 0
    return EventOutbox.objects.filter(pk__in=pks, published_at__isnull=True).update(
        published_at=timezone.now(), outbox_lease_until=None)


def claim_pending(*, limit: int = 500, grace_seconds: float | None = None) -> list[Pending]:
    grace = settings.K8SDM_OUTBOX_GRACE_SECONDS if grace_seconds is None else grace_seconds
    rows = shared_outbox.claim_pending(table=EventOutbox._meta.db_table, returning="id, subject, payload, msg_id",
                                       limit=limit, grace_seconds=grace)
    return [Pending(pk, subject, bytes(payload), msg_id) for pk, subject, payload, msg_id in rows]


def purge_published(*, keep_seconds: float | None = None, limit: int = 5000) -> int:
    """Delete up to `limit` rows published longer ago than `keep_seconds`."""
    keep = settings.K8SDM_EVENTS_OUTBOX_KEEP_SECONDS if keep_seconds is None else keep_seconds
    old = EventOutbox.objects.filter(published_at__lt=timezone.now() - timedelta(seconds=keep)).order_by("id")
    pks = list(old.values_list("pk", flat=True)[:limit])
    return EventOutbox.objects.filter(pk__in=pks).delete()[0] if pks else 0


def backlog() -> int:
    return EventOutbox.objects.filter(published_at__isnull=True).count()


def relay(publisher) -> int:
    """One round of the relay with a `k8sdm.messaging.publisher.Publisher`: publish what is
    pending past the grace period, stamp what JetStream acknowledged; returns how many."""
    claimed = claim_pending()
    if not claimed:
        return 0
    results = publisher.publish_many([(p.subject, p.payload, p.msg_id) for p in claimed])
    acked = [p.pk for p, result in zip(claimed, results) if result.ok]
    failed = [(p, result) for p, result in zip(claimed, results) if not result.ok]
    if failed:
        pending, result = failed[0]
        logger.warning("outbox relay could not publish %d event(s), %s first: %s", len(failed), pending.msg_id,
                       result.error)
    mark_published(acked)
    return len(acked)


# The process's stamper for the event bus's acks (one per process, a forked child gets its own).
_stamper: shared_outbox.Stamper | None = None
_stamper_pid = 0
_stamper_lock = threading.Lock()


def stamper() -> shared_outbox.Stamper:
    global _stamper, _stamper_pid
    with _stamper_lock:
        if _stamper is None or _stamper_pid != os.getpid():
            _stamper, _stamper_pid = shared_outbox.Stamper(mark_published, what="event"), os.getpid()
            _stamper.start()
        return _stamper
