"""`Publisher`: publishing to JetStream from synchronous code, as a component with start/stop.

One per process, created by whoever owns the process (gunicorn's worker hook for the api, the
`runworker` / `runwatcher` commands for the daemons) and handed to the code that publishes. It owns
one thread running an asyncio loop and one NATS connection. `start()` begins connecting in the
background (the client then reconnects by itself), so a caller never waits on a connect: while
NATS is unreachable a publish fails at once with the reason, and the caller falls back (the api's
requests stay in the outbox for the relay; the watcher keeps its keys and retries). `stop()`
closes the connection and joins the thread. A publish to a stream that does not exist yet (no
worker or events server has created it) creates it and is tried once more.

Code that runs its own coroutines on the publisher's loop (the events bus in `events_stream`) uses
`submit`, `publish_async` and `subscribe`.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from django.conf import settings

from k8sdm import backoff
from k8sdm.messaging import jetstream, messages
from k8sdm.messaging.jetstream import NatsErrors, PublishResult

logger = logging.getLogger(__name__)

CHUNK = 256  # publishes in flight at once in publish_many


class Publisher:
    def __init__(self, *, name: str = "k8sdm-api", url: str | None = None, first_connect_wait: float = 1.0):
        self.name = name
        self.url = url
        self.first_connect_wait = first_connect_wait
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._nc = None
        self._js = None
        self._last_error = "not connected yet"
        self._connected = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "Publisher":
        """Start the thread and begin connecting; waits up to `first_connect_wait` for a first connect."""
        if self._thread is not None:
            return self
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{self.name}-publisher", daemon=True)
        self._thread.start()
        self._maintainer = asyncio.run_coroutine_threadsafe(self._maintain(), self._loop)
        self._connected.wait(self.first_connect_wait)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Close the connection (bounded by `timeout`) and join the thread."""
        if self._thread is None:
            return
        self._stopping.set()

        async def _close():
            self._maintainer.cancel()
            if self._nc is not None:
                await self._nc.close()

        try:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout)
        except Exception as exc:  # noqa: BLE001 - stopping anyway; the server drops the connection
            logger.info("NATS publisher connection did not close cleanly: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to `timeout` for the first connect; True once connected."""
        return self._connected.wait(timeout)

    async def _maintain(self) -> None:
        retry = backoff.Backoff(base=0.2, cap=5.0)
        while self._nc is None and not self._stopping.is_set():
            try:
                nc = await jetstream.connect(name=self.name, url=self.url)
            except Exception as exc:  # noqa: BLE001 - keep trying; callers fall back meanwhile
                self._last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(retry.next())
                continue
            self._nc, self._js = nc, nc.jetstream()
            self._connected.set()

    # --- publishing -----------------------------------------------------------------------------

    def _js_or_error(self):
        if self._thread is None:
            raise ConnectionError("the publisher is not started")
        if self._nc is None:
            raise ConnectionError(f"NATS unreachable at {self.url or settings.NATS_URL} ({self._last_error})")
        if not self._nc.is_connected:
            raise ConnectionError("NATS is not connected (reconnecting)")
        return self._js

    async def publish_async(self, subject: str, payload: bytes, msg_id: str, timeout: float = 2.0) -> PublishResult:
        """Publish from a coroutine on the publisher's loop; never raises."""
        try:
            js = self._js_or_error()
        except ConnectionError as exc:
            return PublishResult(ok=False, error=str(exc))
        result = await jetstream.publish(js, subject=subject, payload=payload, msg_id=msg_id, timeout=timeout)
        if not result.ok and "no respon" in result.error.lower():
            # No stream for the subject yet: create it and try once more.
            try:
                await jetstream.ensure_stream(js, jetstream.stream_config_for(subject))
            except NatsErrors as exc:
                return PublishResult(ok=False, error=f"cannot create stream: {exc}")
            result = await jetstream.publish(js, subject=subject, payload=payload, msg_id=msg_id, timeout=timeout)
        return result

    async def subscribe(self, subject: str, cb):
        """A core NATS subscription from a coroutine on the publisher's loop, known to the server
        when it returns; raises ConnectionError while NATS is unreachable."""
        self._js_or_error()
        sub = await self._nc.subscribe(subject, cb=cb)
        await self._nc.flush(timeout=1.0)
        return sub

    def submit(self, coro):
        """Run `coro` on the publisher's loop; a concurrent.futures.Future of its result."""
        if self._loop is None:
            coro.close()
            raise ConnectionError("the publisher is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def publish(self, *, subject: str, payload: bytes, msg_id: str, timeout: float = 1.0) -> PublishResult:
        """Publish and wait for JetStream's ack (at most about `timeout`); never raises."""
        try:
            future = self.submit(self.publish_async(subject, payload, msg_id, timeout))
            return future.result(timeout + 0.5)
        except Exception as exc:  # noqa: BLE001 - callers fall back (outbox, retry); never fail them
            return PublishResult(ok=False, error=f"{type(exc).__name__}: {exc}")

    def publish_in_background(self, *, subject: str, payload: bytes, msg_id: str, on_done, timeout: float = 2.0,
                              preceded_by: tuple[str, bytes, str, object] | None = None):
        """Publish without waiting; `on_done(PublishResult)` runs on the publisher's thread.

        `preceded_by` (subject, payload, msg_id, on_done): a message published first, and this one
        only once JetStream answered it (acked or not), so the first is stored before anything
        this one causes (an api's `request.accepted` event before its request reaches a worker)."""

        async def ordered():
            first_subject, first_payload, first_msg_id, first_done = preceded_by
            first = await self.publish_async(first_subject, first_payload, first_msg_id, timeout)
            try:
                first_done(first)
            except Exception as exc:  # noqa: BLE001 - the first message's bookkeeping never stops the second
                logger.warning("callback of %s failed: %s", first_msg_id, exc)
            return await self.publish_async(subject, payload, msg_id, timeout)

        def done(future):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001
                result = PublishResult(ok=False, error=f"{type(exc).__name__}: {exc}")
            on_done(result)

        try:
            coro = ordered() if preceded_by else self.publish_async(subject, payload, msg_id, timeout)
            self.submit(coro).add_done_callback(done)
        except ConnectionError as exc:
            if preceded_by:
                preceded_by[3](PublishResult(ok=False, error=str(exc)))
            on_done(PublishResult(ok=False, error=str(exc)))

    def publish_many(self, items: list[tuple[str, bytes, str]], timeout: float = 2.0) -> list[PublishResult]:
        """Publish (subject, payload, msg_id) items concurrently; results in the same order."""

        async def _many():
            results = []
            for start in range(0, len(items), CHUNK):
                chunk = items[start:start + CHUNK]
                results += await asyncio.gather(*(self.publish_async(s, p, m, timeout) for s, p, m in chunk))
            return results

        try:
            future = self.submit(_many())
            return future.result(timeout * (1 + len(items) // CHUNK) + 1.0)
        except Exception as exc:  # noqa: BLE001
            return [PublishResult(ok=False, error=f"{type(exc).__name__}: {exc}")] * len(items)

    def consumer_states(self, names: list[str], timeout: float = 0.5) -> dict[str, dict]:
        """{consumer name: its queue state} for the ops dashboard; never raises.

        A state is {"pending": not yet delivered, "in_progress": delivered and not yet acked,
        "waiting_pulls": fetch requests open right now (idle worker loops), "redelivered",
        "last_delivered": datetime or None}, or {"error": the reason it could not be read}."""
        stream = messages.stream_name()

        async def _all():
            js = self._js_or_error()
            return await asyncio.gather(*(jetstream.consumer_state(js, stream, name, timeout) for name in names))

        try:
            return dict(zip(names, self.submit(_all()).result(timeout + 0.5)))
        except Exception as exc:  # noqa: BLE001 - the dashboard shows the reason instead
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return {name: {"error": reason} for name in names}

    def ping(self, timeout: float = 1.0) -> str:
        """'' when NATS answers a round trip, else the reason."""

        async def _ping():
            self._js_or_error()
            await self._nc.flush(timeout=timeout)

        try:
            self.submit(_ping()).result(timeout + 0.5)
            return ""
        except Exception as exc:  # noqa: BLE001
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
