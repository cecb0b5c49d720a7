"""The aiohttp application: routing, the REST verbs, watch streams, admin endpoints."""
from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import contextvars
import json
import logging
import sys
import time
import traceback
import uuid
from typing import Any, Optional

from aiohttp import web

from . import discovery, errors
from .controller import ControllerConfig, DeploymentController, now_rfc3339
from .errors import ApiError
from .faults import Faults
from .patch import PatchConflict, PatchError, json_patch, merge_patch, strategic_merge_patch
from .resources import DEPLOYMENTS, NAMESPACES, Resource
from .schema import prune_unknown
from .selectors import (NAMESPACE_FIELD_GETTERS, field_selector_name, label_selector_string,
                        parse_field_selector, parse_label_selector)
from .store import Store, Stored, Watcher, dumps, event_line, with_rv

log = logging.getLogger("kube_emulator")

JSON = "application/json"
RESOURCES: dict[str, Resource] = {"deployments": DEPLOYMENTS, "namespaces": NAMESPACES}
CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list.")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DEFAULT_WATCH_TIMEOUT = 1800
_warnings: contextvars.ContextVar = contextvars.ContextVar("kube_emulator_warnings", default=None)
WRITE_BATCH = 64  # watch events per HTTP chunk (clients split chunks into lines)


def _json_response(obj: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    body = obj if isinstance(obj, (bytes, bytearray)) else dumps(obj)
    return web.Response(body=body, status=status, headers=headers, content_type=JSON)


def _truthy(v: Optional[str]) -> bool:
    return v is not None and v.lower() in ("true", "1", "yes")


def _age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        t = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return "<unknown>"
    s = max(0, int(time.time() - t))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


class Route:
    __slots__ = ("kind", "res", "ns", "name", "sub", "verb", "watch_path")

    def __init__(self, kind, res=None, ns=None, name=None, sub=None, verb="", watch_path=False):
        self.kind = kind          # "discovery", "collection", "item", "admin", ...
        self.res = res
        self.ns = ns
        self.name = name
        self.sub = sub
        self.verb = verb
        self.watch_path = watch_path


class Emulator:
    """The emulated API server state plus its HTTP handlers. Not thread-safe: use it
    from the event loop that serves it (EmulatorServer does this for you)."""

    def __init__(self, step_delay: float = 0.05, failure_deadline: float = 1.0,
                 event_log_size: int = 10000, watch_buffer: int = 10000,
                 bookmark_interval: float = 1.0, log_requests: bool = False,
                 seed: Optional[int] = None):
        self.store = Store(event_log_size=event_log_size, watch_buffer=watch_buffer)
        for r in RESOURCES:
            self.store.register(r)
        self.faults = Faults(seed)
        self._controller_defaults = (step_delay, failure_deadline)
        self.controller = DeploymentController(self, ControllerConfig(step_delay, failure_deadline))
        self.bookmark_interval = bookmark_interval
        self.log_requests = log_requests
        self.started = time.time()
        self.requests_total = 0
        self.requests_by_verb: dict[str, int] = {}
        self.responses_by_code: dict[int, int] = {}
        self.watches_total = 0
        self.handler_ms: dict[str, float] = {}  # time in handlers per verb (watches excluded)
        self._seed()

    # ------------------------------------------------------------------ setup
    def _seed(self) -> None:
        for name in DEFAULT_NAMESPACES:
            if self.store.get("namespaces", "", name) is None:
                obj = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}}
                NAMESPACES.default(obj)
                self._finish_create(NAMESPACES, obj, "")
                self.store.put("namespaces", obj, "ADDED")

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app) -> None:
        self.controller.start()

    async def _on_shutdown(self, app) -> None:
        self.drop_watches()
        await self.controller.stop()

    # ------------------------------------------------------------------ admin ops
    def reset(self) -> None:
        self.drop_watches()
        self.store.clear()
        self.controller.reset()
        step, deadline = self._controller_defaults
        self.controller.configure(paused=False, step_delay=step, failure_deadline=deadline)
        self.faults.clear()
        self.faults.injected = 0
        self._seed()

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
            "objects": {r: self.store.count(r) for r in RESOURCES},
            "event_log": {"size": len(self.store.log), "max": self.store.event_log_size,
                          "oldest_replayable_rv": self.store.oldest_replayable_rv(),
                          "events_total": self.store.events_total},
            "watches": {"open": len(self.store.all_watchers()), "total": self.watches_total},
            "requests": {"total": self.requests_total, "by_verb": dict(self.requests_by_verb),
                         "handler_ms_by_verb": {k: round(v, 3) for k, v in self.handler_ms.items()},
                         "by_code": {str(k): v for k, v in self.responses_by_code.items()}},
            "faults": self.faults.describe(),
            "controller": self.controller.info(),
            "bookmark_interval": self.bookmark_interval,
        }

    # ------------------------------------------------------------------ dispatch
    async def handle(self, request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        route = None
        try:
            route = self._route(request)
            if route.kind != "admin":
                self.requests_total += 1
                self.requests_by_verb[route.verb] = self.requests_by_verb.get(route.verb, 0) + 1
                if self.faults.latency_ms:
                    await asyncio.sleep(self.faults.latency_ms / 1000.0)
                if self.faults.rules:
                    err = self.faults.pick(request.method, route.verb, request.path)
                    if err is not None:
                        raise err
            warnings: list = []
            _warnings.set(warnings)
            resp = await self._dispatch(request, route)
            for w in warnings:
                resp.headers.add("Warning", w)
        except ApiError as e:
            resp = _json_response(e.status(), e.code, e.headers)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # pragma: no cover - bug path: answer like the apiserver
            log.error("internal error: %s", traceback.format_exc())
            err = errors.internal_error(f"kube-emulator bug: {e!r}")
            resp = _json_response(err.status(), 500)
        code = resp.status
        ms = (time.perf_counter() - t0) * 1000
        if route is None or route.kind != "admin":
            self.responses_by_code[code] = self.responses_by_code.get(code, 0) + 1
            if route is not None and route.verb != "watch":
                self.handler_ms[route.verb] = self.handler_ms.get(route.verb, 0.0) + ms
        if self.log_requests:
            qs = f"?{request.query_string}" if request.query_string else ""
            print(f"{request.method} {request.path}{qs} {code} {ms:.1f}ms", file=sys.stderr,
                  flush=False)
        return resp

    def _route(self, request: web.Request) -> Route:
        parts = [p for p in request.path.split("/") if p]
        m = request.method
        if parts and parts[0] == "_emulator":
            return Route("admin", name="/".join(parts[1:]), verb="admin")
        q = request.query
        watch = _truthy(q.get("watch"))
        n = len(parts)
        if n >= 2 and parts[0] == "api" and parts[1] == "v1" and n >= 3:
            rest = parts[2:]
            watch_path = False
            if rest[0] == "watch":
                rest, watch_path, watch = rest[1:], True, True
            if rest and rest[0] == "namespaces":
                if len(rest) == 1:
                    return self._coll_route("namespaces", None, m, watch, watch_path)
                if len(rest) == 2:
                    return self._item_route("namespaces", "", rest[1], None, m)
                if len(rest) == 3 and rest[2] in ("status", "finalize"):
                    return self._item_route("namespaces", "", rest[1], "status", m)
            return Route("notfound", verb="get")
        if n >= 3 and parts[0] == "apis" and parts[1] == "apps" and parts[2] == "v1" and n >= 4:
            rest = parts[3:]
            watch_path = False
            if rest[0] == "watch":
                rest, watch_path, watch = rest[1:], True, True
            if rest == ["deployments"]:
                if m != "GET":
                    return Route("notallowed", verb=m.lower())
                return self._coll_route("deployments", None, m, watch, watch_path)
            if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "deployments":
                ns = rest[1]
                if len(rest) == 3:
                    return self._coll_route("deployments", ns, m, watch, watch_path)
                if len(rest) == 4:
                    return self._item_route("deployments", ns, rest[3], None, m)
                if len(rest) == 5 and rest[4] in ("status", "scale"):
                    return self._item_route("deployments", ns, rest[3], rest[4], m)
            return Route("notfound", verb="get")
        return Route("discovery", name="/".join(parts), verb="discovery")

    @staticmethod
    def _coll_route(res, ns, method, watch, watch_path) -> Route:
        if method == "GET":
            return Route("collection", res, ns, verb="watch" if watch else "list",
                         watch_path=watch)
        if method == "POST" and not watch_path:
            return Route("collection", res, ns, verb="create")
        if method == "DELETE" and not watch_path and res == "deployments" and ns is not None:
            return Route("collection", res, ns, verb="deletecollection")
        return Route("notallowed", verb=method.lower())

    @staticmethod
    def _item_route(res, ns, name, sub, method) -> Route:
        verbs = {"GET": "get", "PUT": "update", "PATCH": "patch"}
        if sub is None:
            verbs["DELETE"] = "delete"
        verb = verbs.get(method)
        if verb is None:
            return Route("notallowed", verb=method.lower())
        return Route("item", res, ns, name, sub, verb)

    async def _dispatch(self, request: web.Request, r: Route) -> web.StreamResponse:
        if r.kind == "admin":
            return await self._admin(request, r.name)
        if r.kind == "discovery":
            return self._discovery(request, r.name)
        if r.kind == "notfound":
            raise errors.path_not_found()
        if r.kind == "notallowed":
            raise errors.method_not_allowed()
        res = RESOURCES[r.res]
        q = request.query
        table = "as=Table" in request.headers.get("Accept", "")
        if r.kind == "collection":
            if r.verb == "watch":
                return await self._watch(request, res, r.ns, table)
            if r.verb == "list":
                return _json_response(self._list(res, r.ns, q, table))
            if r.verb == "create":
                body = await self._read_body(request)
                return _json_response(self.create(res, r.ns or "", body, q), 201)
            if r.verb == "deletecollection":
                body = await self._read_body(request, optional=True)
                return _json_response(self.delete_collection(res, r.ns, q, body))
        ns = r.ns or ""
        if r.verb == "get":
            st = self._require(res, ns, r.name)
            if r.sub == "scale":
                return _json_response(self._scale_of(st.obj))
            if table and r.sub is None:
                return _json_response(self._table(res, [st.obj], str(self.store.rv)))
            return _json_response(st.raw)
        if r.verb == "update":
            body = await self._read_body(request)
            status, obj = self.update(res, ns, r.name, body, r.sub, q)
            return _json_response(obj, status)
        if r.verb == "patch":
            ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            raw = await request.read()
            return _json_response(self.patch(res, ns, r.name, ctype, raw, r.sub, q))
        if r.verb == "delete":
            if "protobuf" in request.headers.get("Content-Type", ""):
                await request.read()
                body = None  # protobuf DeleteOptions: not decoded, defaults apply
            else:
                body = await self._read_body(request, optional=True)
            return _json_response(self.delete(res, ns, r.name, body, q))
        raise errors.method_not_allowed()  # pragma: no cover

    async def _read_body(self, request: web.Request, optional: bool = False) -> Optional[dict]:
        raw = await request.read()
        if not raw.strip():
            if optional:
                return None
            raise errors.bad_request("the body of the request was empty")
        ctype = request.headers.get("Content-Type", JSON).split(";")[0].strip().lower()
        return self._decode(raw, ctype)

    @staticmethod
    def _decode(raw: bytes, ctype: str) -> Any:
        if ctype == "application/vnd.kubernetes.protobuf":
            from .protobuf import ProtobufError, decode
            try:
                return decode(raw)
            except (ProtobufError, UnicodeDecodeError, IndexError) as e:
                raise errors.unsupported_media_type(
                    ctype, f"the body of the request was in an unknown format - accepted media "
                           f"types include: application/json, application/yaml (kube-emulator "
                           f"decodes only simple Namespace/Deployment protobuf bodies: {e})")
        if ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
            import yaml
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as e:
                raise errors.bad_request(f"error converting YAML to JSON: {e}")
        if ctype not in ("application/json", "", "*/*", "text/plain") and "json" not in ctype:
            raise errors.unsupported_media_type(
                ctype, f'the body of the request was in an unknown format - accepted media types '
                       f'include: application/json, application/yaml')
        try:
            return json.loads(raw)
        except ValueError as e:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}")

    # ------------------------------------------------------------------ discovery
    def _discovery(self, request: web.Request, path: str) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.method_not_allowed()
        host = request.host or "127.0.0.1"
        docs = {
            "": {"paths": ["/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/healthz",
                           "/livez", "/readyz", "/version", "/openapi/v3", "/_emulator/stats"]},
            "version": discovery.VERSION,
            "api": discovery.api_versions(host),
            "api/v1": discovery.core_v1_resources(),
            "apis": discovery.api_group_list(),
            "apis/apps": discovery.apps_group(),
            "apis/apps/v1": discovery.apps_v1_resources(),
            "openapi/v3": discovery.openapi_v3_root(),
            "openapi/v3/apis/apps/v1": discovery.openapi_v3_apps_v1(),
            "openapi/v3/api/v1": discovery.openapi_v3_core_v1(),
        }
        if path in ("healthz", "livez", "readyz"):
            return web.Response(text="ok", content_type="text/plain")
        doc = docs.get(path)
        if doc is None:
            raise errors.path_not_found()
        return _json_response(doc)

    # ------------------------------------------------------------------ helpers
    def _require(self, res: Resource, ns: str, name: str) -> Stored:
        st = self.store.get(res.name, ns, name)
        if st is None:
            raise errors.not_found(res.name, res.group, name)
        return st

    def _require_namespace(self, ns: str) -> None:
        if self.store.get("namespaces", "", ns) is None:
            raise errors.not_found("namespaces", "", ns)

    def _check_kind(self, res: Resource, body: Any, kind: Optional[str] = None) -> dict:
        kind = kind or res.kind
        if not isinstance(body, dict):
            raise errors.bad_request(f"{kind} in version \"{res.version}\" cannot be handled as a "
                                     f"{kind}: json: cannot unmarshal {type(body).__name__} into "
                                     f"Go value of type {kind}")
        api_version = res.api_version if kind == res.kind else "autoscaling/v1"
        if body.get("kind") not in (None, "", kind):
            raise errors.bad_request(f"the kind in the data ({body.get('kind')}) does not match the "
                                     f"expected kind ({kind})")
        if body.get("apiVersion") not in (None, "", api_version):
            raise errors.bad_request(f"the API version in the data ({body.get('apiVersion')}) does "
                                     f"not match the expected API version ({api_version})")
        meta = body.get("metadata")
        if meta is None:
            body["metadata"] = {}
        elif not isinstance(meta, dict):
            raise errors.bad_request(f"{kind} in version \"{res.version}\" cannot be handled as a "
                                     f"{kind}: json: cannot unmarshal into Go struct field "
                                     f"{kind}.metadata of type v1.ObjectMeta")
        return body

    @staticmethod
    def _field_validation(kind: str, obj: Any, q) -> None:
        """Drop unknown fields; Strict: 400; otherwise a Warning header per field."""
        mode = q.get("fieldValidation") or "Warn"
        if mode not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn" or '
                                     f'"Strict", got "{mode}"')
        unknown = prune_unknown(kind, obj)
        if not unknown:
            return
        if mode == "Strict":
            version = "v1"
            detail = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a '
                                     f'{kind}: strict decoding error: {detail}')
        if mode == "Warn":
            ws = _warnings.get()
            if ws is not None:
                for u in unknown:
                    ws.append('299 - "unknown field \\"' + u + '\\""')

    @staticmethod
    def _dry_run(q) -> bool:
        dr = q.getall("dryRun", []) if hasattr(q, "getall") else [q.get("dryRun")]
        for v in dr:
            if v and v != "All":
                raise errors.bad_request(f'Invalid dry run value: "{v}" (supported: "All")')
        return any(v == "All" for v in dr)

    def _finish_create(self, res: Resource, obj: dict, ns: str) -> None:
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("resourceVersion", None)
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        meta.pop("managedFields", None)
        if res.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if res is DEPLOYMENTS:
            meta["generation"] = 1
            obj["status"] = {}
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version

    @staticmethod
    def _ordered(res: Resource, obj: dict) -> dict:
        """Key order like the apiserver's JSON: kind, apiVersion, metadata, spec, status."""
        out = {"kind": res.kind, "apiVersion": res.api_version}
        for k in ("metadata", "spec", "status"):
            if k in obj:
                out[k] = obj[k]
        for k, v in obj.items():
            if k not in out:
                out[k] = v
        return out

    # ------------------------------------------------------------------ create
    def create(self, res: Resource, ns: str, body: Any, q) -> Any:
        body = self._check_kind(res, body)
        self._field_validation(res.kind, body, q)
        meta = body["metadata"]
        if res.namespaced:
            bns = meta.get("namespace")
            if bns and bns != ns:
                raise errors.bad_request("the namespace of the provided object does not match the "
                                         "namespace sent on the request")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"]) + uuid.uuid4().hex[:5]
        if res is DEPLOYMENTS:
            DEPLOYMENTS.check_types(body)
        res.default(body)
        causes = res.validate(body, None)
        if causes:
            raise res.invalid(meta.get("name") or "", causes)
        name = meta["name"]
        if res.namespaced:
            self._require_namespace(ns)
        if self.store.get(res.name, ns if res.namespaced else "", name) is not None:
            raise errors.already_exists(res.name, res.group, name)
        self._finish_create(res, body, ns)
        obj = self._ordered(res, body)
        if self._dry_run(q):
            return obj
        return self.store.put(res.name, obj, "ADDED").raw

    # ------------------------------------------------------------------ update
    def _check_precondition(self, res: Resource, cur: Stored, rv: Any, name: str) -> None:
        if rv in (None, ""):
            return
        if str(rv) != cur.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(res.name, res.group, name)

    def update(self, res: Resource, ns: str, name: str, body: Any, sub: Optional[str], q):
        cur = self._require(res, ns, name)
        if sub == "scale":
            body = self._check_kind(res, body, "Scale")
            self._field_validation("Scale", body, q)
            self._check_precondition(res, cur, body["metadata"].get("resourceVersion"), name)
            new = self._apply_scale(res, cur, body, name)
            out = self._commit_update(res, cur, new, q, sub)
            return 200, self._scale_of(json.loads(out) if isinstance(out, bytes) else out)
        body = self._check_kind(res, body)
        self._field_validation(res.kind, body, q)
        meta = body["metadata"]
        bname = meta.get("name")
        if bname and bname != name:
            raise errors.bad_request(f"the name of the object ({bname}) does not match the name on "
                                     f"the URL ({name})")
        if res.namespaced and meta.get("namespace") and meta.get("namespace") != ns:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        if meta.get("uid") and meta["uid"] != cur.obj["metadata"]["uid"]:
            raise errors.conflict(res.name, res.group, name,
                                  f"Precondition failed: UID in precondition: {meta['uid']}, UID "
                                  f"in object meta: {cur.obj['metadata']['uid']}")
        self._check_precondition(res, cur, meta.get("resourceVersion"), name)
        if sub == "status":
            new = json.loads(cur.raw)
            new["status"] = body.get("status") if isinstance(body.get("status"), dict) else {}
        else:
            new = body
            if res is DEPLOYMENTS:
                DEPLOYMENTS.check_types(new)
            new["status"] = json.loads(cur.raw).get("status", {})
        out = self._commit_update(res, cur, new, q, sub)
        return 200, out

    def _commit_update(self, res: Resource, cur: Stored, new: dict, q, sub: Optional[str]):
        """Shared tail of PUT and PATCH: keep system metadata, default, validate,
        bump generation, skip no-ops, store. Returns raw bytes or a dict (dry run)."""
        old = cur.obj
        ometa = old["metadata"]
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            meta = new["metadata"] = {}
        for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if k in ometa:
                meta[k] = ometa[k]
            else:
                meta.pop(k, None)
        meta["name"] = ometa["name"]
        if res.namespaced:
            meta["namespace"] = ometa["namespace"]
        meta["resourceVersion"] = ometa["resourceVersion"]
        meta.pop("managedFields", None)
        if res is DEPLOYMENTS and isinstance(new.get("spec"), dict):
            DEPLOYMENTS.check_types(new)
        res.default(new)
        if res is NAMESPACES:
            new.setdefault("spec", old.get("spec", {}))
        causes = res.validate(new, old)
        if causes:
            raise res.invalid(ometa["name"], causes)
        if res is DEPLOYMENTS and sub != "status":
            if new.get("spec") != old.get("spec") or \
                    (meta.get("annotations") or {}) != (ometa.get("annotations") or {}):
                meta["generation"] = ometa.get("generation", 1) + 1
        obj = self._ordered(res, new)
        if obj == old:
            return cur.raw
        if self._dry_run(q):
            return obj
        return self.store.put(res.name, obj, "MODIFIED", prev=cur).raw

    def write_status(self, resname: str, ns: str, name: str, status: dict) -> None:
        """Status write by the simulated controller: bumps RV, never generation."""
        cur = self.store.get(resname, ns, name)
        if cur is None:
            return
        obj = dict(cur.obj)
        obj["metadata"] = dict(cur.obj["metadata"])
        obj["status"] = status
        self.store.put(resname, obj, "MODIFIED", prev=cur, source="controller")

    # ------------------------------------------------------------------ scale
    def _scale_of(self, obj: dict) -> dict:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                         "uid": meta["uid"], "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": meta["creationTimestamp"]},
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": label_selector_string(spec.get("selector") or {})},
        }

    def _apply_scale(self, res: Resource, cur: Stored, scale: dict, name: str) -> dict:
        spec = scale.get("spec") if isinstance(scale.get("spec"), dict) else {}
        replicas = spec.get("replicas", 0)
        if isinstance(replicas, bool) or not isinstance(replicas, int):
            raise errors.bad_request("Scale in version \"v1\" cannot be handled as a Scale: json: "
                                     "cannot unmarshal into Go struct field ScaleSpec.spec.replicas "
                                     "of type int32")
        if replicas < 0:
            raise errors.invalid("Scale", "autoscaling", name, [errors.invalid_value(
                "spec.replicas", replicas, "must be greater than or equal to 0")])
        new = json.loads(cur.raw)
        new["spec"]["replicas"] = replicas
        return new

    # ------------------------------------------------------------------ patch
    def patch(self, res: Resource, ns: str, name: str, ctype: str, raw: bytes,
              sub: Optional[str], q):
        if ctype == "application/apply-patch+yaml":
            raise errors.unsupported_media_type(
                ctype, "server-side apply is not supported by this emulator (kube-emulator): "
                       "use client-side apply (kubectl apply without --server-side), or a "
                       "strategic-merge, merge or JSON patch")
        if ctype not in ("application/strategic-merge-patch+json", "application/merge-patch+json",
                         "application/json-patch+json"):
            raise errors.unsupported_media_type(ctype)
        try:
            doc = json.loads(raw) if raw.strip() else None
        except ValueError as e:
            raise errors.bad_request(f"error decoding patch: {e}")
        if doc is None:
            raise errors.bad_request("the body of the request was empty")
        cur = self._require(res, ns, name)
        target = self._scale_of(cur.obj) if sub == "scale" else json.loads(cur.raw)
        try:
            if ctype == "application/json-patch+json":
                patched = json_patch(target, doc)
            elif ctype == "application/merge-patch+json":
                if not isinstance(doc, dict):
                    raise PatchError("json: cannot unmarshal array into Go value of type "
                                     "map[string]interface {}")
                patched = merge_patch(target, doc)
            else:
                patched = strategic_merge_patch(target, doc)
        except PatchError as e:
            raise errors.bad_request(str(e))
        except PatchConflict as e:
            raise errors.unprocessable(str(e), res.group, res.name, name)
        if not isinstance(patched, dict):
            raise errors.bad_request("patch produced a non-object document")
        self._field_validation("Scale" if sub == "scale" else res.kind, patched, q)
        pmeta = patched.get("metadata") if isinstance(patched.get("metadata"), dict) else {}
        self._check_precondition(res, cur, pmeta.get("resourceVersion"), name)
        if pmeta.get("uid") and pmeta["uid"] != cur.obj["metadata"]["uid"]:
            raise errors.conflict(res.name, res.group, name,
                                  "Precondition failed: UID in precondition: "
                                  f"{pmeta['uid']}, UID in object meta: {cur.obj['metadata']['uid']}")
        if pmeta.get("name") not in (None, name):
            raise errors.invalid(res.kind, res.group, name, [errors.invalid_value(
                "metadata.name", pmeta.get("name"), "field is immutable")])
        if sub == "scale":
            new = self._apply_scale(res, cur, patched, name)
            out = self._commit_update(res, cur, new, q, sub)
            return self._scale_of(json.loads(out) if isinstance(out, bytes) else out)
        if sub == "status":
            new = json.loads(cur.raw)
            new["status"] = patched.get("status") if isinstance(patched.get("status"), dict) else {}
        else:
            new = patched
            new["status"] = json.loads(cur.raw).get("status", {})
            new["kind"], new["apiVersion"] = res.kind, res.api_version
        return self._commit_update(res, cur, new, q, sub)

    # ------------------------------------------------------------------ delete
    def delete(self, res: Resource, ns: str, name: str, body: Optional[dict], q):
        cur = self._require(res, ns, name)
        if body is not None and not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        opts = body or {}
        pre = opts.get("preconditions") or {}
        meta = cur.obj["metadata"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise errors.conflict(res.name, res.group, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, UID "
                                  f"in object meta: {meta['uid']}")
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != meta["resourceVersion"]:
            raise errors.conflict(res.name, res.group, name,
                                  f"Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{meta['resourceVersion']}")
        dry = self._dry_run(q) or opts.get("dryRun") == ["All"]
        if res is NAMESPACES:
            if name in NAMESPACES.protected:
                raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
            term = json.loads(cur.raw)
            term["metadata"]["deletionTimestamp"] = now_rfc3339()
            term["status"] = {"phase": "Terminating"}
            if dry:
                return term
            st = self.store.put("namespaces", term, "MODIFIED", prev=cur)
            for dname in sorted((self.store.by_ns["deployments"].get(name) or {}).keys()):
                self.store.remove("deployments", name, dname)
            self.store.remove("namespaces", "", name)
            return st.raw
        if dry:
            return cur.raw
        self.store.remove(res.name, ns, name)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": res.group, "kind": res.name, "uid": meta["uid"]}}

    def delete_collection(self, res: Resource, ns: Optional[str], q, body) -> dict:
        label = parse_label_selector(q.get("labelSelector"))
        field = parse_field_selector(q.get("fieldSelector"))
        dry = self._dry_run(q)
        victims = [st for st in list(self.store.iter_objects(res.name, ns))
                   if (label is None or label(st.labels)) and (field is None or field(st))]
        items = []
        for st in victims:
            m = st.obj["metadata"]
            if dry:
                items.append(st.obj)
            else:
                final = self.store.remove(res.name, m.get("namespace", ""), m["name"])
                items.append(final.obj)
        return {"kind": res.list_kind, "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)}, "items": items}

    # ------------------------------------------------------------------ list
    def _matchers(self, res: Resource, q):
        label = parse_label_selector(q.get("labelSelector"))
        getters = NAMESPACE_FIELD_GETTERS if res is NAMESPACES else None
        field = parse_field_selector(q.get("fieldSelector"), getters)
        return label, field

    def _list(self, res: Resource, ns: Optional[str], q, table: bool):
        label, field = self._matchers(res, q)
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise errors.bad_request(f"invalid limit: {q.get('limit')}")
        cont = q.get("continue")
        rv_s = q.get("resourceVersion")
        rvm = q.get("resourceVersionMatch")
        if rvm and rvm not in ("Exact", "NotOlderThan"):
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.cause(
                "resourceVersionMatch", "FieldValueNotSupported",
                f'Unsupported value: "{rvm}": supported values: "Exact", "NotOlderThan"')])
        if rvm and not rv_s:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.cause(
                "resourceVersionMatch", "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")])
        start_after = None
        snapshot = None
        list_rv = self.store.rv
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                tok_rv, start_after = int(tok["rv"]), tuple(tok["start"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise errors.bad_request("continue key is not valid: incorrect encoded start "
                                         "resourceVersion (version meta.k8s.io/v1)")
            if tok_rv < self.store.oldest_replayable_rv():
                raise errors.expired(CONTINUE_EXPIRED)
            list_rv = tok_rv
        elif rvm == "Exact":
            try:
                rv = int(rv_s)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {rv_s}")
            if rv > self.store.rv:
                raise errors.ApiError(504, "Timeout", f"Too large resource version: {rv}, "
                                      f"current: {self.store.rv}",
                                      {"causes": [{"reason": "ResourceVersionTooLarge",
                                                   "message": "Too large resource version"}],
                                       "retryAfterSeconds": 1})
            if rv < self.store.oldest_replayable_rv():
                raise errors.expired(f"The resourceVersion for the provided list is too old.")
            list_rv = rv
        if list_rv != self.store.rv:
            state = self.store.state_at(res.name, ns, list_rv)
            snapshot = (state[k] for k in sorted(state))
        name_pin = field_selector_name(q.get("fieldSelector"))
        if snapshot is not None:
            source = snapshot
        elif name_pin is not None and ns is not None:
            st = self.store.get(res.name, ns, name_pin)
            source = [st] if st else []
        elif name_pin is not None and not res.namespaced:
            st = self.store.get(res.name, "", name_pin)
            source = [st] if st else []
        else:
            source = self.store.iter_objects(res.name, ns)
        items: list[Stored] = []
        next_key = None
        remaining = 0
        for st in source:
            key = (st.namespace, st.name)
            if start_after is not None and key <= start_after:
                continue
            if label is not None and not label(st.labels):
                continue
            if field is not None and not field(st):
                continue
            if limit and len(items) >= limit:
                if next_key is None:
                    last = items[-1]
                    next_key = (last.namespace, last.name)
                remaining += 1
                continue
            items.append(st)
        meta: dict = {"resourceVersion": str(list_rv)}
        if next_key is not None:
            meta["continue"] = base64.urlsafe_b64encode(dumps(
                {"rv": list_rv, "start": list(next_key)})).decode()
            if label is None and field is None:
                meta["remainingItemCount"] = remaining
        if table:
            t = self._table(res, [st.obj for st in items], str(list_rv))
            t["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            return t
        head = dumps({"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta})
        return head[:-1] + b',"items":[' + b",".join(st.raw for st in items) + b"]}"

    # ------------------------------------------------------------------ tables
    def _table_row(self, res: Resource, obj: dict) -> dict:
        meta = obj["metadata"]
        return {"cells": res.table_cells(obj, _age(meta.get("creationTimestamp"))),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": meta}}

    def _table(self, res: Resource, objs: list[dict], rv: str) -> dict:
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": rv},
                "columnDefinitions": res.table_columns(),
                "rows": [self._table_row(res, o) for o in objs]}

    # ------------------------------------------------------------------ watch
    async def _watch(self, request: web.Request, res: Resource, ns: Optional[str],
                     table: bool) -> web.StreamResponse:
        q = request.query
        label, field = self._matchers(res, q)
        rv_s = q.get("resourceVersion")
        rvm = q.get("resourceVersionMatch")
        bookmarks = _truthy(q.get("allowWatchBookmarks"))
        send_initial = _truthy(q.get("sendInitialEvents"))
        try:
            timeout = int(q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds: {q.get('timeoutSeconds')}")
        if q.get("sendInitialEvents") is not None and rvm != "NotOlderThan":
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.cause(
                "sendInitialEvents", "FieldValueForbidden",
                "Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch "
                "is set to NotOlderThan")])
        if send_initial and not bookmarks:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.cause(
                "allowWatchBookmarks", "FieldValueRequired",
                "Required value: allowWatchBookmarks must be set to true when "
                "sendInitialEvents is true")])
        if rv_s not in (None, "", "0"):
            try:
                rv = int(rv_s)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {rv_s}")
        else:
            rv = None

        w = Watcher(res.name, ns, label, field, self.store.watch_buffer)
        if table:
            w.render = self._table_event_renderer(res)
        # ---- snapshot + cursor: one synchronous block (no await) = atomic ----
        initial: list[bytes] = []
        expired_status = None
        if send_initial or rv is None:
            if ns is None:
                source = self.store.iter_objects(res.name, None)
            else:
                source = self.store.iter_objects(res.name, ns)
            for st in source:
                if w.matches(st):
                    initial.append(w.format("ADDED", st, None))
        elif rv < self.store.oldest_replayable_rv():
            expired_status = errors.expired(
                f"too old resource version: {rv} ({self.store.oldest_replayable_rv() + 1})").status()
        else:
            for ev in self.store.events_since(rv):
                if ev.res == res.name:
                    line = w.translate(ev)
                    if line is not None:
                        initial.append(line)
        initial_rv = self.store.rv
        if expired_status is None:
            self.store.watchers[res.name].add(w)
        # ---- end of atomic block ----
        self.watches_total += 1
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON,
                                                       "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
            if expired_status is not None:
                await resp.write(b'{"type":"ERROR","object":' + dumps(expired_status) + b"}\n")
                await resp.write_eof()
                return resp
            for i in range(0, len(initial), WRITE_BATCH):
                await resp.write(b"".join(initial[i:i + WRITE_BATCH]))
            if send_initial:
                await resp.write(self._bookmark(res, initial_rv, initial_end=True, table=table))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            next_bookmark = loop.time() + self.bookmark_interval
            while True:
                w.wake.clear()
                if w.buf:
                    buf = w.buf
                    n = min(len(buf), WRITE_BATCH)
                    data = b"".join(buf.popleft() for _ in range(n))
                    await resp.write(data)
                    continue
                if w.closed:
                    break
                now = loop.time()
                if now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    await resp.write(self._bookmark(res, self.store.rv, table=table))
                    next_bookmark = now + self.bookmark_interval
                    continue
                tr = request.transport
                if tr is None or tr.is_closing():
                    break  # the client went away
                wait = min(deadline - now, 1.0)
                if bookmarks:
                    wait = min(wait, next_bookmark - now)
                try:
                    await asyncio.wait_for(w.wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
            if w.abort:
                if request.transport is not None:
                    request.transport.close()
                return resp
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.store.watchers[res.name].discard(w)
        return resp

    def _bookmark(self, res: Resource, rv: int, initial_end: bool = False,
                  table: bool = False) -> bytes:
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

    def _table_event_renderer(self, res: Resource):
        def render(type_: str, st: Stored, rv_override: Optional[int]) -> bytes:
            obj = st.obj
            if rv_override is not None:
                obj = json.loads(with_rv(st, rv_override))
            t = self._table(res, [obj], obj["metadata"]["resourceVersion"])
            return event_line(type_, dumps(t))
        return render

    # ------------------------------------------------------------------ admin HTTP
    async def _admin(self, request: web.Request, path: str) -> web.StreamResponse:
        m = request.method
        body = {}
        if m in ("POST", "PUT", "PATCH"):
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise errors.bad_request(f"invalid JSON: {e}")
            if not isinstance(body, dict):
                raise errors.bad_request("admin request body must be a JSON object")
        if path == "stats" and m == "GET":
            return _json_response(self.stats())
        if path == "faults":
            if m == "GET":
                return _json_response(self.faults.describe())
            if m == "DELETE":
                self.faults.clear()
                return _json_response(self.faults.describe())
            if m == "POST":
                try:
                    if body.get("append"):
                        from .faults import _rule
                        for r in body.get("errors") or []:
                            self.faults.add_rule(_rule(r))
                        if "latency_ms" in body:
                            self.faults.latency_ms = float(body["latency_ms"] or 0)
                    else:
                        self.faults.configure(body)
                except (ValueError, TypeError) as e:
                    raise errors.bad_request(str(e))
                return _json_response(self.faults.describe())
        if path == "reset" and m == "POST":
            self.reset()
            return _json_response({"reset": True, "resourceVersion": str(self.store.rv)})
        if path == "drop-watches" and m == "POST":
            n = self.drop_watches(abort=bool(body.get("abort")))
            return _json_response({"dropped": n})
        if path == "compact" and m == "POST":
            return _json_response({"compactedAt": str(self.compact())})
        if path == "controller":
            if m == "POST":
                self.controller.configure(paused=body.get("paused"),
                                          step_delay=body.get("step_delay"),
                                          failure_deadline=body.get("failure_deadline"))
            elif m != "GET":
                raise errors.method_not_allowed()
            return _json_response(self.controller.info())
        if path == "config":
            if m == "POST" and "bookmark_interval" in body:
                self.bookmark_interval = float(body["bookmark_interval"])
            return _json_response({"bookmark_interval": self.bookmark_interval})
        raise errors.path_not_found()
