"""The worker loop: JetStream pull consumers -> apply requests / sync deployments; plus the outbox relay.

One asyncio loop owns the NATS connection; the handlers (ORM and Kubernetes calls, all blocking)
run in a thread pool, never on the loop, and never hold a transaction across a network call.
While a handler runs, its message's ack deadline is extended (`in_progress`). Every message ends
with exactly one of ack (done), nak with a delay (transient trouble) or term (can never succeed),
and a log line says which. Stopping: the stop flag ends fetching, in-flight handlers finish and
ack/nak, the connection drains, and `run` returns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError

from k8sdm import jetstream
from k8sdm.runtime import db_hygiene
from requests_app import messages, metrics, outbox
from requests_app.processing import Decision, Outcome, handle_apply, handle_sync

logger = logging.getLogger(__name__)


def consumer_configs() -> list:
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    ack_wait = settings.K8SDM_ACK_WAIT_SECONDS
    backoff = [ack_wait * factor for factor in (1, 2, 4, 8)]
    common = dict(
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_deliver=settings.K8SDM_MAX_DELIVER,
        backoff=backoff[: settings.K8SDM_MAX_DELIVER],
        max_ack_pending=10_000,
    )
    return [
        ConsumerConfig(name=messages.REQUESTS_CONSUMER, durable_name=messages.REQUESTS_CONSUMER,
                       filter_subject=messages.requests_filter(), **common),
        ConsumerConfig(name=messages.SYNC_CONSUMER, durable_name=messages.SYNC_CONSUMER,
                       filter_subject=messages.sync_filter(), **common),
    ]


@dataclass
class RequestWorker:
    stop: threading.Event
    concurrency: int = field(default_factory=lambda: settings.K8SDM_WORKER_CONCURRENCY)
    batch: int = field(default_factory=lambda: settings.K8SDM_WORKER_BATCH)
    relay: bool = True
    name: str = "k8sdm-worker"
    shutdown_grace: float = 8.0

    def __post_init__(self):
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency + 2, thread_name_prefix="apply")
        self._inflight: set[asyncio.Task] = set()
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_sweep = 0.0

    # --- lifecycle ------------------------------------------------------------------------------

    def run(self) -> int:
        return asyncio.run(self.run_async())

    async def run_async(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.concurrency)
        nc = await self._connect()
        if nc is None:
            return 0  # stopped before NATS ever answered
        js = nc.jetstream()
        subs = await self._setup(js)
        if subs is None:
            await self._close(nc)
            return 0
        requests_sub, sync_sub = subs
        logger.info("worker ready: concurrency %d, consuming %s and %s", self.concurrency,
                    messages.requests_filter(), messages.sync_filter())
        loops = [
            asyncio.create_task(self._consume(requests_sub, "requests")),
            asyncio.create_task(self._consume(sync_sub, "sync")),
        ]
        if self.relay:
            loops.append(asyncio.create_task(self._relay(js)))
        await self._wait_for_stop()
        logger.info("stopping: %d message(s) in flight", len(self._inflight))
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if self._inflight:
            done, pending = await asyncio.wait(self._inflight, timeout=self.shutdown_grace)
            if pending:
                logger.warning("%d message(s) still running at the deadline: they will be redelivered", len(pending))
        await self._close(nc)
        self._pool.shutdown(wait=False, cancel_futures=True)
        logger.info("worker stopped")
        return 0

    @staticmethod
    async def _close(nc) -> None:
        """Drain (ack what is pending, stop fetching) when NATS is there; just close when it is not."""
        if nc.is_connected:
            try:
                await nc.drain()  # bounded by drain_timeout
                return
            except Exception as exc:  # noqa: BLE001 - closing anyway
                logger.warning("NATS drain did not finish cleanly (%s): closing", exc)
        try:
            await nc.close()
        except Exception as exc:  # noqa: BLE001 - the connection is gone already
            logger.info("NATS connection closed (%s)", exc)

    async def _wait_for_stop(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(0.1)

    async def _connect(self):
        delay = 0.2
        while not self.stop.is_set():
            try:
                return await jetstream.connect(name=self.name)
            except Exception as exc:  # noqa: BLE001 - NATS not up yet: keep trying
                logger.warning("cannot connect to NATS at %s (%s); retrying in %.1fs", settings.NATS_URL, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return None

    async def _setup(self, js):
        delay = 0.2
        while not self.stop.is_set():
            try:
                await jetstream.ensure_stream(js)
                for config in consumer_configs():
                    await js.add_consumer(messages.stream_name(), config)
                stream = messages.stream_name()
                return (
                    await js.pull_subscribe(messages.requests_filter(), durable=messages.REQUESTS_CONSUMER, stream=stream),
                    await js.pull_subscribe(messages.sync_filter(), durable=messages.SYNC_CONSUMER, stream=stream),
                )
            except Exception as exc:  # noqa: BLE001
                logger.warning("cannot set up the JetStream stream/consumers (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return None

    # --- consuming ------------------------------------------------------------------------------

    async def _consume(self, sub, consumer: str) -> None:
        import nats.errors

        busy = False
        while not self.stop.is_set():
            # Fetch only as many messages as there are free handler slots (at least one). When the
            # last fetch came back short, ask for one: nats-py's fetch(n) waits for n messages (or
            # its timeout) once it has to linger, which would hold a trickle of messages back.
            await self._slots.acquire()
            taken = 1
            while busy and taken < self.batch and not self._slots.locked():
                await self._slots.acquire()
                taken += 1
            try:
                msgs = await sub.fetch(taken, timeout=1.0)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                msgs = []
            except asyncio.CancelledError:
                for _ in range(taken):
                    self._slots.release()
                raise
            except Exception as exc:  # noqa: BLE001 - NATS restarting: back off and fetch again
                logger.warning("fetch from %s failed (%s); retrying", consumer, exc)
                msgs = []
                await asyncio.sleep(0.5)
            busy = len(msgs) == taken
            for _ in range(taken - len(msgs)):
                self._slots.release()
            for msg in msgs:
                task = asyncio.create_task(self._handle(msg, consumer))
                self._inflight.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def _handle(self, msg, consumer: str) -> None:
        last_beat = [time.monotonic()]
        loop = self._loop

        def heartbeat():
            # Called from the handler's thread while it waits (lock, backoff): keep the message ours.
            now = time.monotonic()
            if now - last_beat[0] > settings.K8SDM_ACK_WAIT_SECONDS / 3:
                last_beat[0] = now
                asyncio.run_coroutine_threadsafe(msg.in_progress(), loop)

        try:
            decision = await loop.run_in_executor(self._pool, self._decide, msg.data, consumer, heartbeat)
        except Exception as exc:  # noqa: BLE001
            logger.error("handler crashed on %s message: %s", consumer, exc, exc_info=True)
            decision = Decision(Outcome.NAK, delay=2.0, reason=str(exc))
        metrics.MESSAGES.labels(consumer, decision.outcome.value).inc()
        try:
            if decision.outcome is Outcome.ACK:
                await msg.ack()
            elif decision.outcome is Outcome.NAK:
                await msg.nak(delay=decision.delay or None)
                logger.info("nak %s message (%s), redelivery in %.1fs", consumer, decision.reason, decision.delay)
            else:
                await msg.term()
                logger.error("terminated %s message %r: %s", consumer, msg.data[:200], decision.reason)
        except Exception as exc:  # noqa: BLE001 - the message will be redelivered; processing is idempotent
            logger.warning("could not %s %s message (%s): it will be redelivered", decision.outcome.value, consumer, exc)

    def _decide(self, data: bytes, consumer: str, heartbeat) -> Decision:
        db_hygiene()
        try:
            if consumer == "requests":
                message = messages.ApplyRequest.from_bytes(data)
                return handle_apply(message.request_pk, stop=self.stop, heartbeat=heartbeat)
            message = messages.SyncDeployment.from_bytes(data)
            return handle_sync(message.namespace, message.name, stop=self.stop, heartbeat=heartbeat)
        except messages.MessageError as exc:
            return Decision(Outcome.TERM, reason=str(exc))
        except DatabaseError as exc:
            logger.warning("database unavailable while handling a %s message (%s): will retry", consumer, exc)
            return Decision(Outcome.NAK, delay=1.0, reason=f"database: {exc}")
        except Exception as exc:  # noqa: BLE001
            logger.error("unexpected error handling a %s message: %s", consumer, exc, exc_info=True)
            return Decision(Outcome.NAK, delay=2.0, reason=str(exc))

    # --- outbox relay -----------------------------------------------------------------------------

    async def _relay(self, js) -> None:
        while not self.stop.is_set():
            try:
                published = await self.relay_once(js)
                if published:
                    logger.info("outbox relay published %d pending request(s)", published)
                metrics.OUTBOX_BACKLOG.set(await self._db(outbox.backlog))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Postgres or NATS down: try again next round
                logger.warning("outbox relay round failed: %s", exc)
            await asyncio.sleep(settings.K8SDM_OUTBOX_INTERVAL_SECONDS)

    async def _db(self, fn, *args):
        """Run blocking database work in the pool, never on the loop, on a healthy connection."""

        def call():
            db_hygiene()
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def relay_once(self, js) -> int:
        claimed = await self._db(outbox.claim_pending)
        acked = []
        for message in claimed:
            result = await jetstream.publish(
                js, subject=message.subject, payload=message.to_bytes(), msg_id=message.msg_id
            )
            if not result.ok:
                logger.warning("outbox relay could not publish request %s: %s", message.request_pk, result.error)
                break
            acked.append(message.request_pk)
        if acked:
            await self._db(outbox.mark_published, acked)
            metrics.OUTBOX_PUBLISHED.inc(len(acked))
        if time.monotonic() - self._last_sweep >= min(60.0, settings.K8SDM_STALE_REQUEST_SECONDS / 2):
            self._last_sweep = time.monotonic()
            await self._republish_stale(js)
        return len(acked)

    async def _republish_stale(self, js) -> None:
        stale = await self._db(outbox.claim_stale)
        for message in stale:
            result = await jetstream.publish(js, subject=message.subject, payload=message.to_bytes(),
                                             msg_id=f"{message.msg_id}/stale-{time.time():.3f}")
            logger.warning(
                "request %s was still pending %.0fs after it was published: re-published it (%s)",
                message.request_pk, settings.K8SDM_STALE_REQUEST_SECONDS, "ok" if result.ok else result.error,
                extra={"request_pk": message.request_pk, "correlation_id": message.correlation_id},
            )
            metrics.STALE_REPUBLISHED.inc()
