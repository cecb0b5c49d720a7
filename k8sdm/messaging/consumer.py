"""`Consumers`: the worker's durable pull subscriptions, and `Delivery`, one message handed out.

`open()` connects, creates or updates the stream and the consumers (`jetstream.consumer_configs`)
and subscribes, retrying with backoff until it succeeds or the stop flag is set. `fetch()` returns
at most n deliveries (none when nothing came within the timeout) and raises `FetchError` when NATS
is away. Each `Delivery` is finished with exactly one of `ack()`, `nak(delay)` or `term()`;
`in_progress()` extends its ack deadline while a handler is still busy with it.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from django.conf import settings

from k8sdm import backoff
from k8sdm.messaging import jetstream, messages

logger = logging.getLogger(__name__)


class FetchError(Exception):
    """A fetch failed for another reason than an empty queue (NATS restarting, connection lost)."""


class Delivery:
    """One message from a consumer; `data` is its payload."""

    __slots__ = ("_msg", "data")

    def __init__(self, msg):
        self._msg = msg
        self.data: bytes = msg.data

    @property
    def attempt(self) -> int:
        """Which delivery of this message this is (1 for the first)."""
        try:
            return int(self._msg.metadata.num_delivered)
        except Exception:  # noqa: BLE001 - not a JetStream message (no metadata): treat as the first
            return 1

    async def ack(self) -> None:
        await self._msg.ack()

    async def nak(self, delay: float | None = None) -> None:
        await self._msg.nak(delay=delay or None)

    async def term(self) -> None:
        await self._msg.term()

    async def in_progress(self) -> None:
        await self._msg.in_progress()


class Consumers:
    """The worker's connection and its subscriptions, by name ("requests", "sync")."""

    def __init__(self, *, name: str, stop: threading.Event):
        self.name = name
        self.stop = stop
        self._nc = None
        self._subs: dict = {}

    async def open(self) -> bool:
        """Connect and subscribe; False if the stop flag was set first."""
        retry = backoff.Backoff(base=0.2, cap=5.0)
        while self._nc is None:
            if self.stop.is_set():
                return False
            try:
                self._nc = await jetstream.connect(name=self.name)
            except Exception as exc:  # noqa: BLE001 - NATS not up yet: keep trying
                delay = retry.next()
                logger.warning("cannot connect to NATS at %s (%s); retrying in %.1fs", settings.NATS_URL, exc, delay)
                await asyncio.sleep(delay)
        js = self._nc.jetstream()
        retry.reset()
        while not self.stop.is_set():
            try:
                await jetstream.ensure_stream(js)
                stream = messages.stream_name()
                for key, config in jetstream.consumer_configs().items():
                    await js.add_consumer(stream, config)
                    self._subs[key] = await js.pull_subscribe(
                        config.filter_subject, durable=config.durable_name, stream=stream
                    )
                return True
            except Exception as exc:  # noqa: BLE001
                delay = retry.next()
                logger.warning("cannot set up the JetStream stream/consumers (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
        await self.close()
        return False

    async def fetch(self, key: str, n: int, timeout: float) -> list[Delivery]:
        import nats.errors

        try:
            msgs = await self._subs[key].fetch(n, timeout=timeout)
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            return []
        except Exception as exc:  # noqa: BLE001 - whatever nats-py raised, the worker backs off and fetches again
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc
        return [Delivery(msg) for msg in msgs]

    async def close(self) -> None:
        """Drain (ack what is pending, stop fetching) when NATS is there; just close when it is not."""
        nc, self._nc = self._nc, None
        if nc is None:
            return
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
