"""The JetStream adapter: connecting, the streams' and consumers' configuration, and one publish.

Two streams: the work stream (requests and sync keys, `stream_config`) and the events stream
(`events_stream_config`); `ensure_stream` creates or updates either. Used by `publisher`
(synchronous publishing), `consumer` (the worker's pull subscriptions) and `events_stream`;
nothing outside this package talks to nats-py.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import nats
from django.conf import settings
from nats.errors import Error as NatsError
from nats.js import api as js_api
from nats.js.errors import Error as JetStreamError

from k8sdm.messaging import events, messages

logger = logging.getLogger(__name__)

# What a publish or a JetStream management call can fail with when NATS is away.
NatsErrors = (NatsError, JetStreamError, asyncio.TimeoutError, OSError, ConnectionError)


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    duplicate: bool = False
    error: str = ""


async def connect(*, name: str, url: str | None = None, **options) -> "nats.NATS":
    """A connection that reconnects forever (the daemons outlive NATS restarts)."""

    async def on_disconnect():
        if nc.is_closed:  # our own close(): at shutdown, when a warning would mislead (or find stderr gone)
            logger.debug("closed the NATS connection", extra={"client": name})
            return
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


def _stream_config(name: str, subjects: list[str], max_age: float) -> js_api.StreamConfig:
    # File storage, limited by age, and a duplicate window for Nats-Msg-Id.
    return js_api.StreamConfig(
        name=name, subjects=subjects, storage=js_api.StorageType.FILE, retention=js_api.RetentionPolicy.LIMITS,
        num_replicas=settings.K8SDM_STREAM_REPLICAS, duplicate_window=120.0, max_age=max_age,
    )


def stream_config() -> js_api.StreamConfig:
    """The work stream: requests and sync keys, a week of retention."""
    return _stream_config(messages.stream_name(), messages.stream_subjects(), 7 * 24 * 3600.0)


def consumer_configs() -> dict[str, js_api.ConsumerConfig]:
    """The worker's durable pull consumers, by the name the worker uses for them.

    No server-side BackOff: with one, nats-server honours only the first NAK delay and redelivers
    later ones on its own schedule. Every redelivery delay is the worker's (a NAK with a delay);
    ack_wait only covers a worker that died with the message."""
    common = dict(
        ack_policy=js_api.AckPolicy.EXPLICIT,
        deliver_policy=js_api.DeliverPolicy.ALL,
        ack_wait=settings.K8SDM_ACK_WAIT_SECONDS,
        max_deliver=settings.K8SDM_MAX_DELIVER,
        max_ack_pending=10_000,
    )
    return {
        "requests": js_api.ConsumerConfig(name=messages.REQUESTS_CONSUMER, durable_name=messages.REQUESTS_CONSUMER,
                                          filter_subject=messages.requests_filter(), **common),
        "sync": js_api.ConsumerConfig(name=messages.SYNC_CONSUMER, durable_name=messages.SYNC_CONSUMER,
                                      filter_subject=messages.sync_filter(), **common),
    }


def events_stream_config() -> js_api.StreamConfig:
    """The events stream, limited by age (K8SDM_EVENTS_RETENTION_SECONDS)."""
    return _stream_config(events.stream_name(), events.stream_subjects(), float(settings.K8SDM_EVENTS_RETENTION_SECONDS))


def stream_config_for(subject: str) -> js_api.StreamConfig:
    """The configuration of the stream that holds `subject`."""
    return events_stream_config() if subject.startswith(events.events_root() + ".") else stream_config()


async def ensure_stream(js, config: js_api.StreamConfig | None = None) -> None:
    """Create or update a stream, the work stream by default (several processes may race to create
    it: all end the same)."""
    config = config or stream_config()
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
    """Publish with Nats-Msg-Id, when given (JetStream drops a duplicate inside its window); never raises."""
    try:
        ack = await js.publish(subject, payload, timeout=timeout, headers={"Nats-Msg-Id": msg_id} if msg_id else None)
    except NatsErrors as exc:
        return PublishResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    return PublishResult(ok=True, duplicate=bool(getattr(ack, "duplicate", False)))


async def consumer_state(js, stream: str, name: str, timeout: float = 0.5) -> dict:
    """A durable consumer's queue counters (see Publisher.consumer_states); never raises."""
    try:
        info = await js.consumer_info(stream, name, timeout=timeout)
    except nats.js.errors.NotFoundError:
        return {"error": f"no consumer {name} on stream {stream} yet (no worker has started on it)"}
    except NatsErrors as exc:
        return {"error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}
    return {
        "pending": info.num_pending or 0,
        "in_progress": info.num_ack_pending or 0,
        "waiting_pulls": info.num_waiting or 0,
        "redelivered": info.num_redelivered or 0,
        "last_delivered": info.delivered.last_active if info.delivered else None,
    }
