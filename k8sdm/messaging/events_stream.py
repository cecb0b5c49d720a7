"""Events over NATS JetStream: the events stream, publishing events, following them.

- `ensure_events_stream`: the events stream (jetstream.events_stream_config) next to the work stream.
- `EventBus`: per process, for synchronous code (the api, the worker), on a `Publisher` (the
  one publishing component: thread, loop, connection). Publishes events after commit without
  making the caller wait (in order, retried for a bounded time while NATS is away),
  and lets a long-poll wait for one request's events without holding anything but a subscription.
- `EventHub`: per ASGI process, for the SSE streams. One push consumer on the whole events stream
  fans events out to the open streams in memory (a stream costs a queue, not a consumer), and
  replays a stream's missed events (`Last-Event-ID`) from JetStream with a short-lived consumer.
- `notifier_subscription`: the durable pull consumer of the webhook notifier.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field

import nats
from django.conf import settings
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from k8sdm.messaging import events
from k8sdm.messaging.jetstream import NatsErrors, connect, ensure_stream, events_stream_config
from k8sdm.messaging.publisher import Publisher

logger = logging.getLogger(__name__)

NOTIFIER_CONSUMER = "k8sdm-notifier"


async def ensure_events_stream(js) -> None:
    await ensure_stream(js, events_stream_config())


async def stream_last_seq(js) -> int:
    info = await js.stream_info(events.stream_name())
    return info.state.last_seq


# --- publishing and waiting from synchronous code ---------------------------------------------------


class EventBus:
    """Events published in order from synchronous code, on a `Publisher` (its thread, loop and connection).

    `publish` queues an event and returns at once; one task on the publisher's loop publishes the
    queue in order (a batch at a time, concurrently within a batch), each with its Nats-Msg-Id so a
    retry is never a duplicate. While NATS is unreachable events wait in memory, up to
    K8SDM_EVENTS_PUBLISH_RETRY_SECONDS, then are left to the events outbox's relay (every event
    also has a row there, written with its transition: events_app/outbox.py).
    """

    def __init__(self, *, name: str = "k8sdm-events", publisher: Publisher | None = None):
        self.publisher = publisher or Publisher(name=name, first_connect_wait=0.0)
        self._own_publisher = publisher is None
        self.publisher.start()
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False
        self.publisher.submit(self._start()).result(5)

    async def _start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._publish_queue())

    async def _publish_one(self, event: events.Event) -> bool:
        result = await self.publisher.publish_async(event.subject, event.to_bytes(), event.msg_id, timeout=2.0)
        if not result.ok:
            logger.debug("event publish failed (retrying): %s", result.error)
        return result.ok

    async def _publish_queue(self) -> None:
        backlog: list[tuple[float, events.Event, object]] = []
        delay = 0.05
        while True:
            if not backlog:
                backlog.append(await self._queue.get())
            while not self._queue.empty() and len(backlog) < 256:
                backlog.append(self._queue.get_nowait())
            results = await asyncio.gather(*(self._publish_one(event) for _, event, _ in backlog))
            now = time.monotonic()
            kept = []
            for (queued_at, event, on_published), ok in zip(backlog, results):
                if ok:
                    if on_published is not None:
                        try:
                            on_published()
                        except Exception as exc:  # noqa: BLE001 - a lost stamp is one more publish, no more
                            logger.warning("event %s published, but its callback failed: %s", event.msg_id, exc)
                    continue
                if now - queued_at > settings.K8SDM_EVENTS_PUBLISH_RETRY_SECONDS:
                    logger.warning("event %s of %s left to the outbox relay: NATS unreachable for %.0fs", event.kind,
                                   event.identifier, now - queued_at)
                else:
                    kept.append((queued_at, event, on_published))
            self._done(len(backlog) - len(kept))
            backlog = kept
            if backlog:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                delay = 0.05

    def _done(self, count: int) -> None:
        with self._lock:
            self._pending -= count
            if self._pending <= 0:
                self._idle.set()

    def publish(self, event: events.Event, on_published=None) -> None:
        """Queue `event`; `on_published()` runs on the publisher's thread once JetStream acknowledged it."""
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self.publisher.submit(self._enqueue(event, on_published))

    async def _enqueue(self, event: events.Event, on_published=None) -> None:
        self._queue.put_nowait((time.monotonic(), event, on_published))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is published (or dropped); True if it got there in time."""
        return self._idle.wait(timeout)

    def waiter(self, subject: str, match) -> "Waiter":
        return Waiter(self, subject, match)

    def close(self) -> None:
        """Stop publishing (what is still queued is dropped) and stop the publisher if the bus made it."""
        if self._closed:
            return
        self._closed = True

        async def _cancel():
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)

        try:
            self.publisher.submit(_cancel()).result(3)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        if self._own_publisher:
            self.publisher.stop(timeout=3.0)


class Waiter:
    """A context manager: subscribed on entry (so nothing published after it is missed), `wait()`
    blocks the calling thread until an event on `subject` satisfies `match(event)`, or the timeout.
    `available` is False when NATS is unreachable (the caller then falls back to re-reading)."""

    def __init__(self, bus: EventBus, subject: str, match):
        self._bus, self._subject, self._match = bus, subject, match
        self._hit = threading.Event()
        self._sub = None
        self.available = False

    def __enter__(self) -> "Waiter":
        publisher = self._bus.publisher
        publisher.wait_connected(2.0)  # a process's first long-poll may have to connect first

        async def on_msg(msg):
            try:
                event = events.Event.from_bytes(msg.data)
            except events.EventError:
                return
            if self._match(event):
                self._hit.set()

        try:
            self._sub = publisher.submit(publisher.subscribe(self._subject, on_msg)).result(2)
        except Exception as exc:  # noqa: BLE001 - long-poll falls back to re-reading
            logger.info("long-poll without NATS (%s): re-reading instead", exc)
            self._sub = None
        self.available = self._sub is not None
        return self

    def wait(self, timeout: float) -> bool:
        return self._hit.wait(timeout)

    def __exit__(self, *exc) -> None:
        if self._sub is not None:
            sub = self._sub

            async def unsubscribe():
                try:
                    await sub.unsubscribe()
                except NatsErrors:
                    pass

            try:
                self._bus.publisher.submit(unsubscribe())
            except ConnectionError:
                pass  # the publisher stopped: the subscription went with its connection


_bus: EventBus | None = None
_bus_pid: int | None = None
_bus_lock = threading.Lock()


def event_bus() -> EventBus:
    """The process's bus; a forked child (gunicorn worker) gets its own."""
    global _bus, _bus_pid
    with _bus_lock:
        if _bus is None or _bus_pid != os.getpid():
            _bus, _bus_pid = EventBus(), os.getpid()
            atexit.register(_bus.close)  # queued events get their chance; no pending task at exit
        return _bus


def reset_event_bus() -> None:
    """Tests: drop the bus so the next one uses the current settings."""
    global _bus
    with _bus_lock:
        if _bus is not None:
            _bus.close()
        _bus = None


# --- the SSE fan-out (asyncio, inside the ASGI server) ----------------------------------------------


@dataclass(eq=False)
class Listener:
    """One open SSE stream: its user token, optional identifier, and a bounded queue of
    (seq, Event). A stream that falls too far behind is ended (`lagging`); its client resumes
    with Last-Event-ID and gets the rest from the replay."""

    token: str
    user: str
    identifier: str | None
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=settings.K8SDM_SSE_QUEUE_SIZE))
    lagging: bool = False

    def offer(self, seq: int, event: events.Event) -> None:
        if event.user != self.user or (self.identifier and event.identifier != self.identifier):
            return
        try:
            self.queue.put_nowait((seq, event))
        except asyncio.QueueFull:
            self.lagging = True  # the stream notices once it has drained its queue


class EventHub:
    """One push consumer on the events stream for the whole process, fanned out to Listeners.

    The consumer starts at the stream's end and remembers the last sequence it saw; a checker
    looks at the consumer every K8SDM_SSE_CONSUMER_CHECK_SECONDS and, if NATS lost it (a restart)
    or a sequence was skipped, subscribes again from the next sequence, so a NATS restart costs the
    streams a pause, never an event."""

    def __init__(self):
        self._listeners: dict[str, set[Listener]] = {}
        self._nc = None
        self._js = None
        self._sub = None
        self._next_seq = 0
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._resubscribe = asyncio.Event()

    # lifecycle
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_ready(self, timeout: float) -> bool:
        self.start()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._nc is not None:
            try:
                await self._nc.close()
            except NatsErrors:
                pass

    async def _run(self) -> None:
        delay = 0.2
        while self._nc is None:
            try:
                self._nc = await connect(name="k8sdm-events-hub")
                self._js = self._nc.jetstream()
                await ensure_events_stream(self._js)
                self._next_seq = await stream_last_seq(self._js) + 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS not there yet
                logger.warning("events hub cannot reach NATS (%s); retrying in %.1fs", exc, delay)
                if self._nc is not None:
                    await self._nc.close()
                    self._nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        while True:
            try:
                if self._sub is None:
                    await self._subscribe()
                    self._ready.set()
                    logger.info("events hub following %s from sequence %d", events.stream_name(), self._next_seq)
                try:
                    await asyncio.wait_for(self._resubscribe.wait(), settings.K8SDM_SSE_CONSUMER_CHECK_SECONDS)
                    self._resubscribe.clear()
                    await self._drop_sub()
                    continue
                except asyncio.TimeoutError:
                    pass
                await self._sub.consumer_info()
            except asyncio.CancelledError:
                raise
            except NotFoundError:
                logger.warning("events hub consumer is gone (NATS restarted?): following again from %d",
                               self._next_seq)
                await self._drop_sub()
            except Exception as exc:  # noqa: BLE001 - NATS away: check again soon
                logger.info("events hub cannot check its consumer (%s)", exc)
                if self._sub is not None and not self._nc.is_connected:
                    continue
                await self._drop_sub()
                await asyncio.sleep(0.5)

    async def _drop_sub(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - it is gone either way
                pass

    async def _subscribe(self) -> None:
        config = js_api.ConsumerConfig(
            deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, self._next_seq),
            ack_policy=js_api.AckPolicy.NONE,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=60.0,
        )
        self._sub = await self._js.subscribe(
            f"{events.events_root()}.>", stream=events.stream_name(), config=config, cb=self._on_msg,
            pending_msgs_limit=1_000_000, pending_bytes_limit=512 * 1024 * 1024,
        )

    async def _on_msg(self, msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq < self._next_seq:
            return  # already seen (a re-subscription overlapping)
        if seq > self._next_seq and self._next_seq > 0 and msg.metadata.num_delivered == 1:
            first = None
            try:
                first = (await self._js.stream_info(events.stream_name())).state.first_seq
            except NatsErrors:
                pass
            if first is not None and first <= self._next_seq:
                logger.warning("events hub skipped from %d to %d: following again", self._next_seq, seq)
                self._resubscribe.set()
                return
        self._next_seq = seq + 1
        parts = events.subject_parts(msg.subject)
        if parts is None or parts[0] not in self._listeners:
            return
        try:
            event = events.Event.from_bytes(msg.data, id=seq)
        except events.EventError as exc:
            logger.warning("unreadable event %d: %s", seq, exc)
            return
        for listener in list(self._listeners.get(parts[0], ())):
            listener.offer(seq, event)

    # listeners
    def add(self, listener: Listener) -> None:
        self._listeners.setdefault(listener.token, set()).add(listener)

    def remove(self, listener: Listener) -> None:
        group = self._listeners.get(listener.token)
        if group is not None:
            group.discard(listener)
            if not group:
                del self._listeners[listener.token]

    def count(self) -> int:
        return sum(len(group) for group in self._listeners.values())

    async def replay(self, listener: Listener, after: int, limit: int):
        """Yield (seq, Event) of the listener's events with seq > after still in the stream, oldest
        first, at most `limit`; what is newer reaches the listener's queue."""
        if self._js is None:
            return
        subject = events.user_filter(listener.user, listener.identifier)
        config = js_api.ConsumerConfig(
            deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after + 1,
            ack_policy=js_api.AckPolicy.NONE,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=30.0,
        )
        sub = await self._js.subscribe(subject, stream=events.stream_name(), config=config)
        try:
            # A push consumer starts delivering at once: what it holds is what it has delivered
            # so far plus what is still pending.
            info = await sub.consumer_info()
            remaining = info.num_pending + info.delivered.consumer_seq
            sent = 0
            while remaining > 0 and sent < limit:
                msg = await sub.next_msg(timeout=5.0)
                remaining = msg.metadata.num_pending
                try:
                    event = events.Event.from_bytes(msg.data, id=msg.metadata.sequence.stream)
                except events.EventError:
                    continue
                if event.user != listener.user:
                    continue
                sent += 1
                yield msg.metadata.sequence.stream, event
        finally:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - the server drops it after inactive_threshold anyway
                pass


# --- the webhook notifier's consumer ---------------------------------------------------------------


def notifier_consumer_config():
    return js_api.ConsumerConfig(
        name=NOTIFIER_CONSUMER,
        durable_name=NOTIFIER_CONSUMER,
        filter_subject=f"{events.events_root()}.>",
        ack_policy=js_api.AckPolicy.EXPLICIT,
        deliver_policy=js_api.DeliverPolicy.NEW,
        ack_wait=max(30.0, settings.K8SDM_WEBHOOK_TIMEOUT_SECONDS * 4),
        # The bound on attempts is counted per delivery in Postgres; this only stops a poison message.
        max_deliver=settings.K8SDM_WEBHOOK_MAX_ATTEMPTS * 3 + 10,
        max_ack_pending=1000,
    )


async def notifier_subscription(js):
    await ensure_events_stream(js)
    try:
        await js.add_consumer(events.stream_name(), notifier_consumer_config())
    except nats.js.errors.BadRequestError:
        # deliver_policy cannot change on an existing consumer: keep it as it is.
        pass
    return await js.pull_subscribe(f"{events.events_root()}.>", durable=NOTIFIER_CONSUMER,
                                   stream=events.stream_name())


def message_event(msg) -> events.Event:
    return events.Event.from_bytes(msg.data, id=msg.metadata.sequence.stream)


def is_fetch_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (nats.errors.TimeoutError, asyncio.TimeoutError))


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))
