"""The worker loop: JetStream pull consumers -> apply requests / sync deployments; plus the outbox relay.

One asyncio loop owns the consumers' NATS connection (k8sdm/messaging/consumer.py); the handlers
(ORM and Kubernetes calls, all blocking) run in a thread pool, never on the loop, and never hold a
transaction across a network call. While a handler runs, its message's ack deadline is extended
(`in_progress`) every third of K8SDM_ACK_WAIT_SECONDS. Every message ends with exactly one of ack
(done), nak with a delay (transient trouble) or term (can never succeed), and a log line says
which; a nak's delay is the worker's own (`processing.nak_delay`: the shared backoff over the
message's delivery count, at most K8SDM_NAK_MAX_SECONDS; the consumers have no server BackOff), and
the log says when the next attempt comes. The outbox relay (requests_app/relay.py) runs on a thread
of its own with the process's `Publisher`; the rollout timer (requests_app/rollouts.py) on another. A Postgres or NATS outage is logged once when it starts
and once when it ends (k8sdm/outages.py). Stopping: the stop flag ends fetching, in-flight handlers
finish and ack/nak (up to `shutdown_grace`), the relay and rollout-timer threads are joined, the connection drains,
and `run` returns 0; a handler still stuck in a call is left to the process exit
(`runtime.exit_now`), and its message, never acked, is redelivered.
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

from deployments_app.operations import deployment_reconcile
from k8sdm.messaging import messages
from k8sdm.messaging.consumer import Consumers, Delivery, FetchError
from k8sdm.messaging.publisher import Publisher
from k8sdm.outages import Outage, postgres_unavailable
from k8sdm.runtime import POSTGRES, db_hygiene
from requests_app import metrics
from requests_app.processing import Decision, Outcome, handle_apply, nak_delay
from requests_app.relay import OutboxRelay
from requests_app.rollouts import WAITING_COLUMNS, RolloutTimer, rollouts_observe_row

logger = logging.getLogger(__name__)

# How often a worker thread checks its database connection between messages (k8sdm.runtime.db_hygiene).
HYGIENE_SECONDS = 1.0

NATS = Outage("NATS", meanwhile="fetching again every 0.5 s", refusals="failed fetch(es)")


@dataclass
class RequestWorker:
    stop: threading.Event
    publisher: Publisher | None = None  # for the outbox relay; None runs no relay
    concurrency: int = field(default_factory=lambda: settings.K8SDM_WORKER_CONCURRENCY)
    batch: int = field(default_factory=lambda: settings.K8SDM_WORKER_BATCH)
    name: str = "k8sdm-worker"
    shutdown_grace: float = 5.0  # for in-flight handlers; with the rest, SIGTERM to exit stays under 10 s

    def __post_init__(self):
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency + 2, thread_name_prefix="apply")
        self._inflight: set[asyncio.Task] = set()
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def run(self) -> int:
        return asyncio.run(self.run_async())

    async def run_async(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.concurrency)
        consumers = Consumers(name=self.name, stop=self.stop)
        relay = None
        if self.publisher is not None:
            relay = threading.Thread(target=OutboxRelay(stop=self.stop, publisher=self.publisher).run,
                                     name="outbox-relay", daemon=True)
            relay.start()
        timer = threading.Thread(target=RolloutTimer(stop=self.stop).run, name="rollout-timer", daemon=True)
        timer.start()
        if not await consumers.open():
            await self._join(relay)
            await self._join(timer)
            return 0  # stopped before NATS ever answered
        logger.info("worker ready: concurrency %d, consuming %s and %s", self.concurrency,
                    messages.requests_filter(), messages.sync_filter())
        loops = [
            asyncio.create_task(self._consume(consumers, "requests")),
            asyncio.create_task(self._consume(consumers, "sync")),
        ]
        await self._wait_for_stop()
        logger.info("stopping: %d message(s) in flight", len(self._inflight))
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if self._inflight:
            done, pending = await asyncio.wait(self._inflight, timeout=self.shutdown_grace)
            if pending:
                logger.warning("%d message(s) still running at the deadline: they will be redelivered", len(pending))
        await self._join(relay)
        await self._join(timer)
        await consumers.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        logger.info("worker stopped")
        return 0

    @staticmethod
    async def _join(thread: threading.Thread | None) -> None:
        if thread is not None:
            await asyncio.to_thread(thread.join, 1.0)  # a daemon thread: one stuck in a call dies with us

    async def _wait_for_stop(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(0.1)

    # --- consuming ------------------------------------------------------------------------------

    async def _consume(self, consumers: Consumers, consumer: str) -> None:
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
                msgs = await consumers.fetch(consumer, taken, timeout=1.0)
            except asyncio.CancelledError:
                for _ in range(taken):
                    self._slots.release()
                raise
            except FetchError as exc:  # NATS restarting: back off and fetch again
                NATS.refused(exc)
                msgs = []
                await asyncio.sleep(0.5)
            else:
                NATS.recovered()
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

    async def _handle(self, msg: Delivery, consumer: str) -> None:
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
            decision = Decision(Outcome.NAK, reason=str(exc))
        metrics.MESSAGES.labels(consumer, decision.outcome.value).inc()
        try:
            if decision.outcome is Outcome.ACK:
                await msg.ack()
            elif decision.outcome is Outcome.NAK:
                delay = nak_delay(msg.attempt) if decision.delay is None else decision.delay
                await msg.nak(delay=delay)
                logger.info("nak %s message (%s): delivery %d, next attempt in %.2fs",
                            consumer, decision.reason, msg.attempt, delay)
            else:
                await msg.term()
                logger.error("terminated %s message %r: %s", consumer, msg.data[:200], decision.reason)
        except Exception as exc:  # noqa: BLE001 - the message will be redelivered; processing is idempotent
            logger.warning("could not %s %s message (%s): it will be redelivered", decision.outcome.value, consumer, exc)

    def _decide(self, data: bytes, consumer: str, heartbeat) -> Decision:
        # At most once a second per thread (or after an error): a sync message is a few statements,
        # and the check would add one round trip to each.
        db_hygiene(every=HYGIENE_SECONDS)
        try:
            if consumer == "requests":
                message = messages.ApplyRequest.from_bytes(data)
                return handle_apply(message.request_pk, stop=self.stop, heartbeat=heartbeat)
            message = messages.SyncDeployment.from_bytes(data)
            return self._sync(message, heartbeat)
        except messages.MessageError as exc:
            return Decision(Outcome.TERM, reason=str(exc))
        except DatabaseError as exc:
            if not postgres_unavailable(exc):
                logger.error("database error handling a %s message: %s", consumer, exc, exc_info=True)
            POSTGRES.refused(exc)  # an outage is logged once when it starts and once when it ends
            return Decision(Outcome.NAK, reason=f"database: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
        except Exception as exc:  # noqa: BLE001
            logger.error("unexpected error handling a %s message: %s", consumer, exc, exc_info=True)
            return Decision(Outcome.NAK, reason=str(exc))

    def _sync(self, message: messages.SyncDeployment, heartbeat) -> Decision:
        result = deployment_reconcile(namespace=message.namespace, name=message.name,
                                      resource_version=message.resource_version, stop=self.stop, heartbeat=heartbeat,
                                      also_select=WAITING_COLUMNS)
        if result.done:
            metrics.SYNCS.labels(str(result.changed).lower()).inc()
            # The rollouts waiting on this deployment are judged on what the sync just wrote (the
            # row, read with whether anything waits on it); a sync that wrote nothing cannot change
            # a verdict (deadlines are the RolloutTimer's).
            if result.changed and result.row is not None:
                rollouts_observe_row(result.row)
            return Decision(Outcome.ACK, reason=result.reason)
        if result.failed:
            return Decision(Outcome.TERM, reason=result.reason)
        return Decision(Outcome.NAK, reason=result.reason)
