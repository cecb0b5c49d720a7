"""The aiohttp application: one ``Emulator`` holds the state (store, simulated controller,
faults, counters) and its ``handle`` is the only HTTP entry point. It routes the request
(``router``), applies injected faults, decodes the body (``codec``) and calls a verb
(``handlers``), the watch stream (``watch``), discovery or the admin API (``admin``).
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
import traceback
from typing import Any, Optional

from aiohttp import web

from . import admin, codec, discovery, errors, handlers, logs, tables, watch
from .controller import ControllerConfig, DeploymentController
from .errors import ApiError
from .faults import Faults
from .kubelet import parse_node_quantity
from .persist import Snapshotter
from .resources import RESOURCES
from .router import Route, route
from .store import Store, dumps

log = logging.getLogger("kube_emulator")


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    body = obj if isinstance(obj, (bytes, bytearray)) else dumps(obj)
    return web.Response(body=body, status=status, headers=headers, content_type=codec.JSON)


class Emulator:
    """The emulated API server state plus its HTTP entry point. Not thread-safe: use it
    from the event loop that serves it (EmulatorServer does this for you)."""

    def __init__(self, step_delay: float = 0.05, failure_deadline: float = 1.0,
                 event_log_size: int = 10000, watch_buffer: int = 10000,
                 bookmark_interval: float = 1.0, log_requests: bool = False,
                 seed: Optional[int] = None, node_cpu: str = "4", node_memory: str = "16Gi",
                 event_ttl: float = 3600.0, data_dir: Optional[str] = None):
        self.store = Store(event_log_size=event_log_size, watch_buffer=watch_buffer)
        for r in RESOURCES:
            self.store.register(r.name, r.selectable_fields if r.extra_fields else None,
                                r.keep_parsed)
        self.faults = Faults(seed)
        self._controller_defaults = dict(step_delay=step_delay, failure_deadline=failure_deadline,
                                         node_cpu=node_cpu, node_memory=node_memory)
        self.controller = DeploymentController(self.store, ControllerConfig(
            step_delay, failure_deadline, node_cpu=parse_node_quantity(node_cpu, "4"),
            node_memory=parse_node_quantity(node_memory, "16Gi"), event_ttl=event_ttl))
        self.bookmark_interval = bookmark_interval
        self.log_requests = log_requests
        self.started = time.time()
        self.requests_total = 0
        self.requests_by_verb: dict[str, int] = {}
        # "<group>/<resource>[/<subresource>] <verb>" -> count, as an RBAC rule names it ("" group: core)
        self.requests_by_rule: dict[str, int] = {}
        self.responses_by_code: dict[int, int] = {}
        self.watches_total = 0
        self.handler_ms: dict[str, float] = {}  # time in handlers per verb (watches excluded)
        self.snapshots = Snapshotter(self.store, data_dir) if data_dir else None
        self.restored = self.snapshots.load() if self.snapshots else 0
        handlers.seed_namespaces(self.store)
        if self.restored:
            self.controller.adopt()

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app) -> None:
        self.controller.start()
        if self.snapshots:
            self.snapshots.start()
            self.snapshots.mark_dirty()

    async def _on_shutdown(self, app) -> None:
        self.drop_watches()
        await self.controller.stop()
        if self.snapshots:
            await self.snapshots.close()

    # ------------------------------------------------------------------ admin operations
    def reset(self) -> None:
        self.drop_watches()
        self.store.clear()
        self.controller.reset()
        self.controller.configure(paused=False, **self._controller_defaults)
        self.faults.clear()
        self.faults.injected = 0
        handlers.seed_namespaces(self.store)

    def drop_watches(self, abort: bool = False) -> int:
        ws = self.store.all_watchers()
        for w in ws:
            w.close("dropped by kube-emulator admin request", abort=abort)
        return len(ws)

    def compact(self) -> int:
        return self.store.compact()

    def stats(self) -> dict:
        return {
            "uptime_seconds": round(time.time() - self.started, 3),
            "resourceVersion": str(self.store.rv),
            "objects": {r.name: self.store.count(r.name) for r in RESOURCES},
            "event_log": {"size": len(self.store.log), "max": self.store.event_log_size,
                          "oldest_replayable_rv": self.store.oldest_replayable_rv(),
                          "events_total": self.store.events_total},
            "watches": {"open": len(self.store.all_watchers()), "total": self.watches_total},
            "requests": {"total": self.requests_total, "by_verb": dict(self.requests_by_verb),
                         "by_rule": dict(self.requests_by_rule),
                         "handler_ms_by_verb": {k: round(v, 3) for k, v in self.handler_ms.items()},
                         "by_code": {str(k): v for k, v in self.responses_by_code.items()}},
            "faults": self.faults.describe(),
            "controller": self.controller.info(),
            "bookmark_interval": self.bookmark_interval,
            "persistence": dict(self.snapshots.info(), restored=self.restored)
            if self.snapshots else None,
        }

    # ------------------------------------------------------------------ HTTP
    async def handle(self, request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        r: Optional[Route] = None
        try:
            r = route(request.method, request.path, request.query.get("watch"))
            if r.kind != "admin":
                self.requests_total += 1
                self.requests_by_verb[r.verb] = self.requests_by_verb.get(r.verb, 0) + 1
                if r.res is not None:
                    rule = f"{r.res.group}/{r.res.name}{'/' + r.sub if r.sub else ''} {r.verb}"
                    self.requests_by_rule[rule] = self.requests_by_rule.get(rule, 0) + 1
                if self.faults.latency_ms:
                    await asyncio.sleep(self.faults.latency_ms / 1000.0)
                if self.faults.rules:
                    err = self.faults.pick(request.method, r.verb, request.path)
                    if err is not None:
                        raise err
            warnings: list = []
            handlers.warnings_var.set(warnings)
            resp = await self._dispatch(request, r)
            for w in warnings:
                resp.headers.add("Warning", w)
        except ApiError as e:
            resp = json_response(e.status(), e.code, e.headers)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # pragma: no cover - bug path: answer like the apiserver
            log.error("internal error: %s", traceback.format_exc())
            err = errors.internal_error(f"kube-emulator bug: {e!r}")
            resp = json_response(err.status(), 500)
        code = resp.status
        ms = (time.perf_counter() - t0) * 1000
        if r is None or r.kind != "admin":
            self.responses_by_code[code] = self.responses_by_code.get(code, 0) + 1
            if r is not None and r.verb != "watch":
                self.handler_ms[r.verb] = self.handler_ms.get(r.verb, 0.0) + ms
        if self.log_requests:
            qs = f"?{request.query_string}" if request.query_string else ""
            print(f"{request.method} {request.path}{qs} {code} {ms:.1f}ms", file=sys.stderr,
                  flush=False)
        return resp

    async def _dispatch(self, request: web.Request, r: Route) -> web.StreamResponse:
        if r.kind == "admin":
            return json_response(await admin.handle(self, request, r.name))
        if r.kind == "discovery":
            return self._discovery(request, r.name)
        if r.kind == "notfound":
            raise errors.path_not_found()
        if r.kind == "notallowed":
            raise errors.method_not_allowed()
        res, q, ns = r.res, request.query, r.ns or ""
        table = tables.wants_table(request.headers.get("Accept", ""))
        store = self.store
        if r.verb == "watch":
            self.watches_total += 1
            return await watch.serve(request, store, res, r.ns, table,
                                     lambda: self.bookmark_interval)
        if r.verb == "list":
            return json_response(handlers.list_objects(store, res, r.ns, q, table))
        if r.sub == "log":
            return await logs.serve(request, store, ns, r.name)
        if r.verb == "get":
            return json_response(handlers.get(store, res, ns, r.name, r.sub, table))
        if r.verb == "create":
            body = await self._object_body(request)
            return json_response(handlers.create(store, res, ns, body, q), 201)
        if r.verb == "update":
            body = await self._object_body(request)
            return json_response(handlers.update(store, res, ns, r.name, body, r.sub, q))
        if r.verb == "patch":
            patch_type = codec.patch_media_type(request.headers.get("Content-Type"))
            doc = codec.decode_patch(await request.read())
            return json_response(handlers.patch(store, res, ns, r.name, patch_type, doc, r.sub, q))
        if r.verb == "delete":
            body = await self._object_body(request, optional=True)
            return json_response(handlers.delete(store, res, ns, r.name, body, q))
        if r.verb == "deletecollection":
            await self._object_body(request, optional=True)
            return json_response(handlers.delete_collection(store, res, r.ns, q))
        raise errors.method_not_allowed()  # pragma: no cover - the router gives no other verb

    @staticmethod
    async def _object_body(request: web.Request, optional: bool = False) -> Any:
        """Decode a create/update/DeleteOptions body; 415 for a media type the apiserver
        refuses. DeleteOptions may be absent, and are not decoded from protobuf (defaults)."""
        raw = await request.read()
        if optional and not raw.strip():
            return None
        mt = codec.object_media_type(request.headers.get("Content-Type"))
        if not raw.strip():
            raise errors.bad_request("the body of the request was empty")
        if optional and mt == codec.PROTOBUF:
            return None
        return codec.decode_object(raw, mt)

    @staticmethod
    def _discovery(request: web.Request, path: str) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.method_not_allowed()
        if path in discovery.HEALTH_PATHS:
            return web.Response(text="ok", content_type="text/plain")
        doc = discovery.document(path, request.host or "127.0.0.1")
        if doc is None:
            raise errors.path_not_found()
        return json_response(doc)
