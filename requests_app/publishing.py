"""The api's half of the transactional outbox: publishing accepted requests to JetStream.

A service writes a request with `published_at = NULL` (its outbox entry) and calls
`publish_after_commit`: once the transaction has committed, the message is handed to the process's
`RequestPublisher` and the response goes out without waiting for JetStream. The ack is stamped on
the row (`published_at`) in batches by the publisher's own thread, so an api response never pays a
second commit. A publish that fails (NATS down) or a stamp that is lost (the process dies first)
only means the relay in `runworker` (requests_app/relay.py) publishes the request again; JetStream
drops that as a duplicate inside its window, and the worker skips a finished request anyway.

`RequestPublisher` is a component with start/stop: one per api process, created and installed by
the process's owner (`docker/gunicorn.conf.py`, `post_worker_init`) and stopped when the process
exits. Where no owner installed one (`manage.py runserver`, a shell, a test), `current()` creates
and starts one on first use. Tests install their own with `installed(...)`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

from django.db import transaction
from django.utils import timezone

from k8sdm.outages import Outage
from k8sdm.outbox import Stamper
from k8sdm.messaging.messages import ApplyRequest
from k8sdm.messaging.publisher import Publisher
from requests_app.models import DeploymentRequest
from requests_app.outbox import mark_published, message_for

logger = logging.getLogger(__name__)

# This process's NATS outage, as its publishes see it (logged once when it starts, once when it ends).
NATS = Outage(
    "NATS", meanwhile="accepting requests into the outbox for the relay to publish",
    refusals="publish(es) left to the outbox relay",
)


def _log_deferred(message: ApplyRequest, error: str) -> None:
    # An outage is logged once when it starts and once when it ends (k8sdm/outages.py), not per request.
    NATS.refused(error)
    logger.debug(
        "publish of request %s deferred to the outbox relay: %s", message.request_pk, error,
        extra={"request_pk": message.request_pk, "correlation_id": message.correlation_id},
    )


class RequestPublisher:
    """Publishes ApplyRequest messages for one process (see the module docstring)."""

    def __init__(self, publisher: Publisher | None = None):
        self.publisher = publisher or Publisher(name="k8sdm-api")
        self._stamper = Stamper(mark_published, what="request")
        self._inflight = 0
        self._idle = threading.Condition()

    def start(self) -> "RequestPublisher":
        self.publisher.start()
        self._stamper.start()
        return self

    def stop(self) -> None:
        self.publisher.stop()  # no more acks come in after this
        self._stamper.stop()

    def publish_in_background(self, message: ApplyRequest, *, preceded_by=None) -> None:
        """Hand the message to the publisher and return at once; the ack is stamped later.
        `preceded_by`: (subject, payload, msg_id, on_done) published and answered first (see
        `Publisher.publish_in_background`)."""

        def done(result):
            try:
                if result.ok:
                    NATS.recovered()
                    self._stamper.add(message.request_pk)
                else:
                    _log_deferred(message, result.error)
            finally:
                with self._idle:
                    self._inflight -= 1
                    self._idle.notify_all()

        with self._idle:
            self._inflight += 1
        self.publisher.publish_in_background(
            subject=message.subject, payload=message.to_bytes(), msg_id=message.msg_id, on_done=done,
            preceded_by=preceded_by,
        )

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every background publish has its answer and every ack is stamped."""
        deadline = time.monotonic() + timeout
        with self._idle:
            if not self._idle.wait_for(lambda: self._inflight == 0, timeout):
                return False
        return self._stamper.wait_empty(max(0.0, deadline - time.monotonic()))

    def publish_after_commit(self, request: DeploymentRequest, *, preceded_by=None) -> None:
        """Call inside the transaction that created `request`: publishes once it has committed.
        `preceded_by`: a message JetStream must have stored first (its `request.accepted` event),
        as (subject, payload, msg_id, on_done(PublishResult))."""
        message = message_for(request)
        transaction.on_commit(lambda: self.publish_in_background(message, preceded_by=preceded_by))

    def publish_now(self, message: ApplyRequest, *, fresh: bool = False) -> bool:
        """Publish and wait for the ack; True (and published_at stamped) when JetStream took it.

        `fresh` gives the message a new Nats-Msg-Id, so JetStream delivers it even inside the
        duplicate window (an operator's deliberate re-publish)."""
        msg_id = f"{message.msg_id}/{timezone.now().timestamp():.6f}" if fresh else message.msg_id
        result = self.publisher.publish(subject=message.subject, payload=message.to_bytes(), msg_id=msg_id)
        if result.ok:
            NATS.recovered()
            mark_published([message.request_pk])
            return True
        _log_deferred(message, result.error)
        return False

    def ping(self) -> str:
        """'' when NATS answers, else the reason (for /readyz)."""
        return self.publisher.ping()


# --- the process's instance --------------------------------------------------------------------

_lock = threading.Lock()
_installed: RequestPublisher | None = None
_installed_pid: int | None = None


def install(publisher: RequestPublisher | None) -> RequestPublisher | None:
    """Make `publisher` (started by the caller) this process's; returns the one it replaces."""
    global _installed, _installed_pid
    with _lock:
        previous = _installed if _installed_pid == os.getpid() else None
        _installed, _installed_pid = publisher, os.getpid()
        return previous


def current() -> RequestPublisher:
    """This process's publisher; created and started here when nobody installed one (a forked
    child never uses its parent's: the thread did not survive the fork)."""
    global _installed, _installed_pid
    with _lock:
        if _installed is None or _installed_pid != os.getpid():
            _installed, _installed_pid = RequestPublisher().start(), os.getpid()
        return _installed


@contextlib.contextmanager
def installed(publisher: RequestPublisher):
    """Start `publisher`, make it the process's for the block, then stop it and put back the previous."""
    previous = install(publisher.start())
    try:
        yield publisher
    finally:
        install(previous)
        publisher.stop()


def publish_after_commit(request: DeploymentRequest, *, preceded_by=None) -> None:
    current().publish_after_commit(request, preceded_by=preceded_by)


def publish_now(message: ApplyRequest, *, fresh: bool = False) -> bool:
    return current().publish_now(message, fresh=fresh)
