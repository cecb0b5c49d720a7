"""Long-poll: answer `GET /api/v1/requests/{request_id}?wait=N` as soon as the request finishes.

Contract: subscribe to the request's events first, then read the row (so a finish between the
read and the wait is never missed); if it is still pending, give the database connection back and
block on the subscription until its `request.succeeded`/`request.failed` event or the wait runs
out; then read the row once more. Without NATS (or with events off) it re-reads the row every
second instead. The wait is bounded by K8SDM_LONG_POLL_MAX_SECONDS.
"""

from __future__ import annotations

import time
from typing import Callable

from django.conf import settings
from django.db import connection

from k8sdm.errors import InvalidInput
from k8sdm.messaging import events

PENDING = "CREATED"


def parse_wait(query_params) -> float:
    raw = query_params.get("wait")
    if raw in (None, ""):
        return 0.0
    limit = settings.K8SDM_LONG_POLL_MAX_SECONDS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= limit:
        raise InvalidInput(f"wait must be a whole number of seconds from 0 to {limit}.",
                           fields={"wait": [f"must be an integer from 0 to {limit}"]})
    return float(value)


def _release_connection() -> None:
    if not connection.in_atomic_block:
        connection.close()


def wait_for_finish(*, read: Callable, user_external_id: str, wait: float):
    """`read()` returns the request row (raising 404 if it is not the caller's)."""
    request = read()
    if wait <= 0 or request.status != PENDING:
        return request
    from k8sdm.messaging.events_stream import event_bus

    request_id, identifier = request.request_id, request.identifier

    def finished(event: events.Event) -> bool:
        return (event.kind in events.FINISHED_REQUEST_KINDS and event.user == user_external_id
                and event.data.get("request_id") == request_id)

    deadline = time.monotonic() + wait
    subject = f"{events.events_root()}.{events.user_token(user_external_id)}.{identifier}.request.*"
    with event_bus().waiter(subject, finished) as waiter:
        request = read()
        if request.status != PENDING:
            return request
        live = waiter.available and settings.K8SDM_EVENTS_ENABLED
        while (remaining := deadline - time.monotonic()) > 0:
            _release_connection()
            if waiter.wait(remaining if live else min(1.0, remaining)):
                break
            if not live:
                request = read()
                if request.status != PENDING:
                    return request
    return read()
