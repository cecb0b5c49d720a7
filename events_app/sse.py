"""`GET /api/v1/events`: the caller's events as Server-Sent Events, served by the ASGI server.

A plain ASGI app (k8sdm/asgi.py routes the path here), so that an open stream costs one coroutine
and one small queue: no thread and no database connection. The caller is authenticated once, by
the API's own authentication classes (REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]) run in a
pool thread whose database connection is closed right after; then the stream only touches NATS.

The stream:
- `id: <event id>` (the events stream's sequence), `event: <kind>`, `data: <JSON>` per event;
- `: heartbeat` comments every K8SDM_SSE_HEARTBEAT_SECONDS, so proxies and clients see it alive;
- `Last-Event-ID` (header, or `?last_event_id=` for a first connect) replays the caller's events
  after that id still in the stream (K8SDM_EVENTS_RETENTION_SECONDS), then goes on live, with no
  gap and no repeat (a sequence already sent is never sent again);
- `?identifier=` keeps one deployment's events;
- at most K8SDM_SSE_MAX_STREAMS_PER_USER streams per user per process (429 beyond);
- `X-Accel-Buffering: no` and `Cache-Control: no-cache` so proxies do not hold events back.
Errors before the stream starts are the API's one JSON error shape.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings

from k8sdm.messaging import events
from k8sdm.messaging.events_stream import EventHub, Listener

logger = logging.getLogger(__name__)

PATH = "/api/v1/events"
EVENT_ID = re.compile(r"^[0-9]{1,19}$")


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None, headers=()):
        super().__init__(message)
        self.status, self.code, self.message, self.fields, self.headers = status, code, message, fields or {}, headers


def _authenticate(scope) -> str:
    """The caller's external id, by the API's authentication classes; HttpError(401) otherwise."""
    from django.core.handlers.asgi import ASGIRequest
    from django.db import close_old_connections, connection
    from rest_framework import exceptions
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    close_old_connections()
    try:
        django_request = ASGIRequest(scope, io.BytesIO(b""))
        request = Request(django_request, authenticators=[cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES])
        try:
            user = request.user
        except exceptions.APIException as exc:
            from k8sdm.api.errors import exception_handler

            response = exception_handler(exc, {})
            body = response.data["error"]
            headers = [(k.lower().encode(), str(v).encode()) for k, v in response.items()]
            raise HttpError(response.status_code, body["code"], body["message"], headers=headers) from None
        external_id = getattr(user, "external_id", None)
        if not external_id:
            raise HttpError(401, "not_authenticated", "The caller is not identified.")
        return external_id
    finally:
        connection.close()  # the stream holds no database connection


class EventStreamApp:
    def __init__(self):
        self.hub: EventHub | None = None
        self._per_user: dict[str, int] = {}
        self._open = 0

    async def __call__(self, scope, receive, send):
        try:
            await self._serve(scope, receive, send)
        except HttpError as exc:
            await self._error(send, exc)

    async def _error(self, send, exc: HttpError) -> None:
        body = json.dumps({"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [h for h in exc.headers if h[0] not in (b"content-type", b"content-length")]
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _options(scope) -> tuple[str | None, int | None]:
        query = parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True)
        identifier = query.get("identifier", [None])[-1]
        if identifier is not None and not events.IDENTIFIER.match(identifier):
            raise HttpError(400, "invalid", "The request is invalid: see fields.",
                            {"identifier": ["must be a DNS-1123 label (lowercase letters, digits and -)"]})
        last = None
        for key, value in scope.get("headers") or ():
            if key.lower() == b"last-event-id":
                last = value.decode("latin1").strip()
        if last is None:
            last = query.get("last_event_id", [None])[-1]
        if last is not None and last != "":
            if not EVENT_ID.match(last):
                raise HttpError(400, "invalid", "The request is invalid: see fields.",
                                {"Last-Event-ID": ["must be an event id (a non-negative integer)"]})
            return identifier, int(last)
        return identifier, None

    async def _serve(self, scope, receive, send) -> None:
        if scope["method"] != "GET":
            raise HttpError(405, "method_not_allowed", "Method not allowed on this path.", headers=[(b"allow", b"GET")])
        identifier, last_id = self._options(scope)
        user = await sync_to_async(_authenticate, thread_sensitive=False)(scope)
        if self._per_user.get(user, 0) >= settings.K8SDM_SSE_MAX_STREAMS_PER_USER:
            raise HttpError(429, "too_many_streams",
                            f"At most {settings.K8SDM_SSE_MAX_STREAMS_PER_USER} event streams per user at once; "
                            "close one first.", headers=[(b"retry-after", b"5")])
        if self._open >= settings.K8SDM_SSE_MAX_STREAMS:
            raise HttpError(503, "unavailable", "Too many event streams on this server; retry later.",
                            headers=[(b"retry-after", b"5")])
        if self.hub is None:
            self.hub = EventHub()
        if not await self.hub.wait_ready(timeout=5.0):
            raise HttpError(503, "unavailable", "The event stream is unavailable (NATS unreachable); retry later.",
                            headers=[(b"retry-after", b"2")])
        listener = Listener(token=events.user_token(user), user=user, identifier=identifier)
        self._per_user[user] = self._per_user.get(user, 0) + 1
        self._open += 1
        self.hub.add(listener)
        try:
            await self._stream(listener, last_id, receive, send)
        finally:
            self.hub.remove(listener)
            self._open -= 1
            self._per_user[user] -= 1
            if not self._per_user[user]:
                del self._per_user[user]

    async def _stream(self, listener: Listener, last_id: int | None, receive, send) -> None:
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        })
        closed = asyncio.Event()

        async def watch_disconnect():
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    closed.set()
                    return

        watcher = asyncio.get_running_loop().create_task(watch_disconnect())
        getter = None
        try:
            # The listener is registered already: anything newer than the replay is queued.
            await send({"type": "http.response.body", "body": b"retry: 2000\n: connected\n\n", "more_body": True})
            sent = last_id or 0
            if last_id is not None:
                async for seq, event in self.hub.replay(listener, last_id, settings.K8SDM_SSE_REPLAY_LIMIT):
                    if closed.is_set():
                        return
                    if seq > sent:
                        await send({"type": "http.response.body", "body": frame(seq, event), "more_body": True})
                        sent = seq
            heartbeat = settings.K8SDM_SSE_HEARTBEAT_SECONDS
            while not closed.is_set():
                if getter is None:
                    getter = asyncio.ensure_future(listener.queue.get())
                done, _ = await asyncio.wait({getter, watcher}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    seq, event = getter.result()
                    getter = None
                    if seq > sent:
                        await send({"type": "http.response.body", "body": frame(seq, event), "more_body": True})
                        sent = seq
                    if listener.lagging and listener.queue.empty():
                        logger.info("event stream of %s fell behind: ending it (the client resumes)", listener.user)
                        return
                elif not done:
                    await send({"type": "http.response.body", "body": b": heartbeat\n\n", "more_body": True})
        finally:
            watcher.cancel()
            if getter is not None:
                getter.cancel()
            if not closed.is_set():
                try:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except Exception:  # noqa: BLE001 - the client is gone
                    pass


def frame(seq: int, event: events.Event) -> bytes:
    return f"id: {seq}\nevent: {event.kind}\ndata: {event.to_json()}\n\n".encode()
