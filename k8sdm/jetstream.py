"""The NATS JetStream adapter: the only module that imports `nats`.

Two faces:
- async helpers (`connect`, `ensure_stream`, `publish`) for the worker and the watcher, which run
  an asyncio loop;
- `SyncPublisher`, for the WSGI api: one background thread per process owns an asyncio loop and
  one NATS connection; `publish()` hands it a message and waits a short, bounded time for the
  JetStream ack. A publish that fails or times out is not an error for the caller: the request
  is committed and stays in the outbox until the relay publishes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass

import nats
from django.conf import settings
from nats.errors import Error as NatsError
from nats.js import api as js_api
from nats.js.errors import Error as JetStreamError

from requests_app import messages

logger = logging.getLogger(__name__)

PublishErrors = (NatsError, JetStreamError, asyncio.TimeoutError, OSError, ConnectionError)


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    duplicate: bool = False
    error: str = ""


async def connect(*, name: str, url: str | None = None, **options) -> "nats.NATS":
    """A connection that reconnects forever (the daemons outlive NATS restarts)."""

    async def on_disconnect():
        logger.warning("disconnected from NATS", extra={"client": name})

    async def on_reconnect():
        logger.info("reconnected to NATS", extra={"client": name})

    async def on_error(exc):
        logger.debug("NATS client error: %s", exc)

    servers = [server.strip() for server in (url or settings.NATS_URL).split(",") if server.strip()]
    nc = await nats.connect(
        servers,
        name=name,
        connect_timeout=settings.K8SDM_NATS_CONNECT_TIMEOUT,
        # nats-py retries a first connect forever when reconnects are unlimited, deaf to our stop
        # flag: give up the first connect quickly (callers retry with backoff and log), then
        # reconnect without limit once connected.
        max_reconnect_attempts=1,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
        drain_timeout=2,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
        **options,
    )
    nc.options["max_reconnect_attempts"] = -1
    return nc


async def ensure_stream(js) -> None:
    """Create or update the one stream (file storage, duplicate window for Nats-Msg-Id)."""
    config = js_api.StreamConfig(
        name=messages.stream_name(),
        subjects=messages.stream_subjects(),
        storage=js_api.StorageType.FILE,
        retention=js_api.RetentionPolicy.LIMITS,
        num_replicas=settings.K8SDM_STREAM_REPLICAS,
        duplicate_window=120.0,
        max_age=7 * 24 * 3600.0,
    )
    try:
        await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
            logger.info("created JetStream stream %s", config.name)
            return
        except nats.js.errors.BadRequestError:
            pass  # another process created it first
    await js.update_stream(config)


async def publish(js, *, subject: str, payload: bytes, msg_id: str, timeout: float = 2.0) -> PublishResult:
    try:
        ack = await js.publish(subject, payload, timeout=timeout, headers={"Nats-Msg-Id": msg_id})
    except PublishErrors as exc:
        return PublishResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    return PublishResult(ok=True, duplicate=bool(getattr(ack, "duplicate", False)))


class SyncPublisher:
    """A per-process NATS publisher for synchronous code (the api).

    A background task keeps trying to connect (the client then reconnects by itself), so a
    request never waits on a connect: while NATS is unreachable `publish` fails at once and the
    request stays in the outbox for the relay.
    """

    def __init__(self, *, name: str = "k8sdm-api", first_connect_wait: float = 1.0):
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._nc = None
        self._js = None
        self._last_error = "not connected yet"
        self._ready_streams: set[str] = set()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-publisher", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._maintain(), self._loop)
        self._connected.wait(first_connect_wait)

    async def _maintain(self) -> None:
        delay = 0.2
        while self._nc is None:
            try:
                nc = await connect(name=self.name)
            except Exception as exc:  # noqa: BLE001 - keep trying; publishes fall back to the outbox
                self._last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._nc, self._js = nc, nc.jetstream()
            self._connected.set()

    def _js_or_error(self):
        if self._nc is None:
            raise ConnectionError(f"NATS unreachable at {settings.NATS_URL} ({self._last_error})")
        if not self._nc.is_connected:
            raise ConnectionError("NATS is not connected (reconnecting)")
        return self._js

    async def _publish(self, subject: str, payload: bytes, msg_id: str, timeout: float) -> PublishResult:
        try:
            js = self._js_or_error()
        except ConnectionError as exc:
            return PublishResult(ok=False, error=str(exc))
        result = await publish(js, subject=subject, payload=payload, msg_id=msg_id, timeout=timeout)
        stream = messages.stream_name()
        if not result.ok and stream not in self._ready_streams and "no respon" in result.error.lower():
            # No stream yet (no worker has started): create it and try once more.
            try:
                await ensure_stream(js)
                self._ready_streams.add(stream)
            except PublishErrors as exc:
                return PublishResult(ok=False, error=f"cannot create stream: {exc}")
            result = await publish(js, subject=subject, payload=payload, msg_id=msg_id, timeout=timeout)
        return result

    def publish(self, *, subject: str, payload: bytes, msg_id: str, timeout: float = 1.0) -> PublishResult:
        future = asyncio.run_coroutine_threadsafe(self._publish(subject, payload, msg_id, timeout), self._loop)
        try:
            return future.result(timeout + 0.5)
        except Exception as exc:  # noqa: BLE001 - the outbox relay retries; never fail the caller
            future.cancel()
            return PublishResult(ok=False, error=f"{type(exc).__name__}: {exc}")

    def publish_in_background(self, *, subject: str, payload: bytes, msg_id: str, on_done, timeout: float = 2.0):
        """Publish without waiting; `on_done(PublishResult)` runs on the publisher's thread."""

        def done(future):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001
                result = PublishResult(ok=False, error=f"{type(exc).__name__}: {exc}")
            on_done(result)

        future = asyncio.run_coroutine_threadsafe(self._publish(subject, payload, msg_id, timeout), self._loop)
        future.add_done_callback(done)

    def publish_many(self, items: list[tuple[str, bytes, str]], timeout: float = 2.0) -> list[PublishResult]:
        """Publish (subject, payload, msg_id) items concurrently; results in the same order."""

        async def _many():
            results = []
            for start in range(0, len(items), 256):
                chunk = items[start:start + 256]
                results += await asyncio.gather(*(self._publish(s, p, m, timeout) for s, p, m in chunk))
            return results

        future = asyncio.run_coroutine_threadsafe(_many(), self._loop)
        try:
            return future.result(timeout * (1 + len(items) // 256) + 1.0)
        except Exception as exc:  # noqa: BLE001
            future.cancel()
            return [PublishResult(ok=False, error=f"{type(exc).__name__}: {exc}")] * len(items)

    def ping(self, timeout: float = 1.0) -> str:
        """'' when NATS answers a round trip, else the reason."""

        async def _ping():
            self._js_or_error()
            await self._nc.flush(timeout=timeout)

        future = asyncio.run_coroutine_threadsafe(_ping(), self._loop)
        try:
            future.result(timeout + 0.5)
            return ""
        except Exception as exc:  # noqa: BLE001
            future.cancel()
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def close(self) -> None:
        async def _close():
            if self._nc is not None:
                await self._nc.close()

        try:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(2)
        except Exception:  # noqa: BLE001
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)


_publisher: SyncPublisher | None = None
_publisher_pid: int | None = None
_publisher_lock = threading.Lock()


def sync_publisher() -> SyncPublisher:
    """The process's publisher; a forked child (gunicorn worker) gets its own."""
    global _publisher, _publisher_pid
    with _publisher_lock:
        if _publisher is None or _publisher_pid != os.getpid():
            _publisher = SyncPublisher()
            _publisher_pid = os.getpid()
        return _publisher
