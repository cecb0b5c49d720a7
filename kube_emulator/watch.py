"""Watch streams: newline-delimited JSON events over a chunked HTTP response.

The snapshot (initial ADDED events, or the replay from the event log) and the registration
of the watcher happen in one synchronous block of the event loop, so a watcher neither
misses nor doubles an event written concurrently. After that the stream drains the
watcher's bounded queue, sends BOOKMARKs when asked to, and ends at ``timeoutSeconds``,
when the watcher is closed (admin drop, slow consumer) or when the client goes away.
"""
from __future__ import annotations

import asyncio
from typing import Optional

from aiohttp import web

from . import errors, tables
from .handlers import matchers
from .resources import Resource
from .router import truthy
from .store import Store, Watcher, dumps, event_line

DEFAULT_TIMEOUT = 1800
WRITE_BATCH = 64  # watch events per HTTP chunk (clients split chunks into lines)
HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-cache, private"}


class WatchRequest:
    """The validated watch parameters of one request."""

    def __init__(self, res: Resource, q):
        self.label, self.field = matchers(res, q)
        rvm = q.get("resourceVersionMatch")
        self.bookmarks = truthy(q.get("allowWatchBookmarks"))
        self.send_initial = truthy(q.get("sendInitialEvents"))
        try:
            self.timeout = int(q.get("timeoutSeconds") or DEFAULT_TIMEOUT)
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds: {q.get('timeoutSeconds')}")
        if q.get("sendInitialEvents") is not None and rvm != "NotOlderThan":
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.cause(
                "sendInitialEvents", "FieldValueForbidden",
                "Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch "
                "is set to NotOlderThan")])
        if self.send_initial and not self.bookmarks:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.cause(
                "allowWatchBookmarks", "FieldValueRequired",
                "Required value: allowWatchBookmarks must be set to true when "
                "sendInitialEvents is true")])
        rv_s = q.get("resourceVersion")
        self.rv: Optional[int] = None
        if rv_s not in (None, "", "0"):
            try:
                self.rv = int(rv_s)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {rv_s}")


def bookmark(res: Resource, rv: int, initial_end: bool = False, table: bool = False) -> bytes:
    meta: dict = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    if table:
        obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
               "columnDefinitions": None, "rows": None}
    else:
        meta["creationTimestamp"] = None
        obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
    return event_line("BOOKMARK", dumps(obj))


async def serve(request: web.Request, store: Store, res: Resource, ns: Optional[str],
                table: bool, bookmark_interval) -> web.StreamResponse:
    """Stream a watch. ``bookmark_interval`` is a callable (the period can change live)."""
    wr = WatchRequest(res, request.query)
    w = Watcher(res.name, ns, wr.label, wr.field, store.watch_buffer)
    if table:
        w.render = tables.event_renderer(res)
    # ---- snapshot + cursor: one synchronous block (no await) = atomic ----
    initial: list[bytes] = []
    expired_status = None
    if wr.send_initial or wr.rv is None:
        for st in store.iter_objects(res.name, ns):
            if w.matches(st):
                initial.append(w.format("ADDED", st, None))
    elif wr.rv < store.oldest_replayable_rv():
        expired_status = errors.expired(
            f"too old resource version: {wr.rv} ({store.oldest_replayable_rv() + 1})").status()
    else:
        for ev in store.events_since(wr.rv):
            if ev.res == res.name:
                line = w.translate(ev)
                if line is not None:
                    initial.append(line)
    initial_rv = store.rv
    if expired_status is None:
        store.watchers[res.name].add(w)
    # ---- end of atomic block ----
    resp = web.StreamResponse(status=200, headers=HEADERS)
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        if expired_status is not None:
            await resp.write(b'{"type":"ERROR","object":' + dumps(expired_status) + b"}\n")
            await resp.write_eof()
            return resp
        for i in range(0, len(initial), WRITE_BATCH):
            await resp.write(b"".join(initial[i:i + WRITE_BATCH]))
        if wr.send_initial:
            await resp.write(bookmark(res, initial_rv, initial_end=True, table=table))
        await _stream(request, resp, store, res, w, wr, table, bookmark_interval)
        if w.abort:
            if request.transport is not None:
                request.transport.close()
            return resp
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        store.watchers[res.name].discard(w)
    return resp


async def _stream(request, resp, store: Store, res: Resource, w: Watcher, wr: WatchRequest,
                  table: bool, bookmark_interval) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wr.timeout
    next_bookmark = loop.time() + bookmark_interval()
    while True:
        w.wake.clear()
        if w.buf:
            buf = w.buf
            n = min(len(buf), WRITE_BATCH)
            await resp.write(b"".join(buf.popleft() for _ in range(n)))
            continue
        if w.closed:
            return
        now = loop.time()
        if now >= deadline:
            return
        if wr.bookmarks and now >= next_bookmark:
            await resp.write(bookmark(res, store.rv, table=table))
            next_bookmark = now + bookmark_interval()
            continue
        tr = request.transport
        if tr is None or tr.is_closing():
            return  # the client went away
        wait = min(deadline - now, 1.0)
        if wr.bookmarks:
            wait = min(wait, next_bookmark - now)
        try:
            await asyncio.wait_for(w.wake.wait(), wait)
        except asyncio.TimeoutError:
            pass
