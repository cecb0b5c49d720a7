"""The outbox relay: every `runworker` publishes what the api's own publish missed.

`OutboxRelay.run()` is a loop on a thread of the worker, until the stop flag is set. Every
K8SDM_OUTBOX_INTERVAL_SECONDS it claims unpublished requests older than the api's grace period
(requests_app/outbox.py: `SKIP LOCKED` plus a lease, so relays in several workers never publish
the same row at once), publishes them with the process's `Publisher`, and stamps `published_at`
on the ack. Every so often it also re-publishes requests still pending long after their message
was published (deliveries exhausted, stream purged), with a fresh Nats-Msg-Id. Each round also
relays the events' outbox (events_app/outbox.py) the same way, and the sweep deletes its old
published rows. While NATS is away nothing is
claimed; while Postgres is away the rounds fail quietly (the outage is logged once when it starts
and once when it ends) and the next round tries again.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection

from events_app import outbox as events_outbox
from k8sdm.messaging.publisher import Publisher
from k8sdm.runtime import POSTGRES, db_hygiene
from requests_app import metrics, outbox

logger = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, *, stop: threading.Event, publisher: Publisher):
        self.stop = stop
        self.publisher = publisher
        self._last_sweep = 0.0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    published = self.relay_once()
                    if published:
                        logger.info("outbox relay published %d pending request(s)", published)
                    metrics.OUTBOX_BACKLOG.set(outbox.backlog())
                except DatabaseError as exc:  # Postgres down: logged once per outage; next round
                    POSTGRES.refused(exc)
                except Exception as exc:  # noqa: BLE001 - a bug: log it, try again next round
                    logger.error("outbox relay round failed: %s", exc, exc_info=True)
                self.stop.wait(settings.K8SDM_OUTBOX_INTERVAL_SECONDS)
        finally:
            connection.close()

    def relay_once(self) -> int:
        """One round; returns how many pending requests were published (none while NATS is away)."""
        if not self.publisher.connected:
            return 0
        db_hygiene()
        # The events' outbox (events_app/outbox.py) first: a request's `request.accepted` event
        # then reaches the events stream before the worker can finish the request and publish
        # its `request.succeeded`, even when both publishes were missed.
        relayed_events = events_outbox.relay(self.publisher)
        if relayed_events:
            logger.info("outbox relay published %d pending event(s)", relayed_events)
        claimed = outbox.claim_pending()
        acked = []
        if claimed:
            results = self.publisher.publish_many([(m.subject, m.to_bytes(), m.msg_id) for m in claimed])
            acked = [message.request_pk for message, result in zip(claimed, results) if result.ok]
            failed = [(message, result) for message, result in zip(claimed, results) if not result.ok]
            if failed:
                message, result = failed[0]
                logger.warning("outbox relay could not publish %d request(s), request %s first: %s",
                               len(failed), message.request_pk, result.error)
        if acked:
            outbox.mark_published(acked)
            metrics.OUTBOX_PUBLISHED.inc(len(acked))
        if time.monotonic() - self._last_sweep >= min(60.0, settings.K8SDM_STALE_REQUEST_SECONDS / 2):
            self._last_sweep = time.monotonic()
            self._republish_stale()
            events_outbox.purge_published()
        return len(acked)

    def _republish_stale(self) -> None:
        stale = outbox.claim_stale()
        if not stale:
            return
        stamp = f"{time.time():.3f}"
        results = self.publisher.publish_many([(m.subject, m.to_bytes(), f"{m.msg_id}/stale-{stamp}") for m in stale])
        for message, result in zip(stale, results):
            logger.warning(
                "request %s was still pending %.0fs after it was published: re-published it (%s)",
                message.request_pk, settings.K8SDM_STALE_REQUEST_SECONDS, "ok" if result.ok else result.error,
                extra={"request_pk": message.request_pk, "correlation_id": message.correlation_id},
            )
            metrics.STALE_REPUBLISHED.inc()
