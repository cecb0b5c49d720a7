"""The webhook notifier loop (`manage.py runnotifier`): events stream -> signed HTTP deliveries.

A durable pull consumer (`k8sdm-notifier`, shared by every notifier process) on the events
stream. Each event message is handed to `services.event_deliver` in a thread pool (database and
HTTP calls block; never on the loop): it records and attempts the event's deliveries, and says
when the next retry is due. The message is then acked (every delivery finished) or nak'ed with
that delay, so retries travel through JetStream and survive restarts; the attempt counts live in
Postgres, so their bound does too. While a message is being handled its ack deadline is extended.
SIGTERM: stop fetching, let the handlers in flight finish (or nak), close, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError

from events_app.services import event_deliver
from k8sdm.messaging import events, events_stream
from k8sdm.messaging.jetstream import connect
from k8sdm.runtime import db_hygiene

logger = logging.getLogger(__name__)


@dataclass
class WebhookNotifier:
    stop: threading.Event
    concurrency: int = field(default_factory=lambda: settings.K8SDM_NOTIFIER_CONCURRENCY)
    shutdown_grace: float = 8.0

    def __post_init__(self):
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="notify")
        self._inflight: set[asyncio.Task] = set()

    def run(self) -> int:
        return asyncio.run(self.run_async())

    async def _retrying(self, what: str, factory):
        delay = 0.2
        while not self.stop.is_set():
            try:
                return await factory()
            except Exception as exc:  # noqa: BLE001 - NATS not there yet
                logger.warning("cannot %s (%s); retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return None

    async def run_async(self) -> int:
        nc = await self._retrying("connect to NATS", lambda: connect(name="k8sdm-notifier"))
        if nc is None:
            return 0
        sub = await self._retrying("set up the notifier consumer", lambda: events_stream.notifier_subscription(nc.jetstream()))
        if sub is not None:
            logger.info("notifier ready: consuming %s", events.stream_name())
            slots = asyncio.Semaphore(self.concurrency)
            while not self.stop.is_set():
                await slots.acquire()
                try:
                    msgs = await sub.fetch(1, timeout=1.0)
                except Exception as exc:  # noqa: BLE001 - timeouts, or NATS restarting
                    slots.release()
                    if not events_stream.is_fetch_timeout(exc):
                        logger.warning("fetch failed (%s); retrying", exc)
                        await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    task = asyncio.create_task(self._handle(msg))
                    self._inflight.add(task)
                    task.add_done_callback(lambda t: (self._inflight.discard(t), slots.release()))
            if self._inflight:
                await asyncio.wait(self._inflight, timeout=self.shutdown_grace)
        try:
            await nc.close()
        except Exception as exc:  # noqa: BLE001 - gone already
            logger.info("NATS connection closed (%s)", exc)
        self._pool.shutdown(wait=False, cancel_futures=True)
        logger.info("notifier stopped")
        return 0

    async def _handle(self, msg) -> None:
        loop = asyncio.get_running_loop()
        try:
            event = events_stream.message_event(msg)
        except events.EventError as exc:
            logger.error("terminated an unreadable event: %s", exc)
            await msg.term()
            return
        future = loop.run_in_executor(self._pool, self._deliver, event)
        while True:
            done, _ = await asyncio.wait({future}, timeout=10.0)
            if done:
                break
            await msg.in_progress()  # slow endpoints: keep the message ours
        try:
            delay = future.result()
        except DatabaseError as exc:
            logger.warning("database unavailable delivering event %s (%s): will retry", event.id, exc)
            delay = 1.0
        except Exception as exc:  # noqa: BLE001
            logger.error("delivering event %s failed: %s", event.id, exc, exc_info=True)
            delay = 5.0
        try:
            if delay is None:
                await msg.ack()
            else:
                await msg.nak(delay=max(delay, 0.05))
        except Exception as exc:  # noqa: BLE001 - redelivered later; delivering is idempotent
            logger.warning("could not ack/nak event %s (%s)", event.id, exc)

    @staticmethod
    def _deliver(event: events.Event) -> float | None:
        db_hygiene()
        return event_deliver(event)
