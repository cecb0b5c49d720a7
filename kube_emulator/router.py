"""Request routing: an HTTP method and path become a ``Route`` (what kind of endpoint,
which resource, namespace, name, subresource, and the Kubernetes verb).

Paths follow the apiserver's layout for every resource in ``resources.RESOURCES``:
``/api/v1/...`` for the core group, ``/apis/GROUP/VERSION/...`` otherwise, then
``[watch/][namespaces/NS/]PLURAL[/NAME[/SUB]]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .resources import BY_PATH, Resource

ITEM_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
SUB_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class Route:
    kind: str                       # discovery | admin | collection | item | notfound | notallowed
    verb: str                       # the Kubernetes verb (fault rules and stats count by it)
    res: Optional[Resource] = None
    ns: Optional[str] = None        # None: all namespaces (or a cluster-scoped resource)
    name: Optional[str] = None      # item name, or the admin / discovery path
    sub: Optional[str] = None


def truthy(value: Optional[str]) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


def route(method: str, path: str, watch_param: Optional[str]) -> Route:
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "_emulator":
        return Route("admin", "admin", name="/".join(parts[1:]))
    if len(parts) >= 3 and parts[:2] == ["api", "v1"]:
        return _resource_route(method, "", "v1", parts[2:], truthy(watch_param))
    if len(parts) >= 4 and parts[0] == "apis":
        return _resource_route(method, parts[1], parts[2], parts[3:], truthy(watch_param))
    return Route("discovery", "discovery", name="/".join(parts))


def _resource_route(method: str, group: str, version: str, rest: list[str],
                    watch: bool) -> Route:
    watch_path = rest[0] == "watch"
    if watch_path:
        rest, watch = rest[1:], True
    if len(rest) >= 3 and rest[0] == "namespaces":
        res = BY_PATH.get((group, version, rest[2]))
        if res is not None and res.namespaced:
            return _shaped(method, res, rest[1], rest[3:], watch, watch_path)
    if rest:
        res = BY_PATH.get((group, version, rest[0]))
        if res is not None:
            if res.namespaced:
                if len(rest) == 1:    # across all namespaces: list and watch only
                    if method != "GET":
                        return Route("notallowed", method.lower())
                    return _collection(method, res, None, watch, watch_path)
            else:
                return _shaped(method, res, None, rest[1:], watch, watch_path)
    return Route("notfound", "get")


def _shaped(method: str, res: Resource, ns: Optional[str], rest: list[str], watch: bool,
            watch_path: bool) -> Route:
    if not rest:
        return _collection(method, res, ns, watch, watch_path)
    if len(rest) == 1:
        verb = ITEM_VERBS.get(method)
        return Route("item", verb, res, ns, rest[0]) if verb else Route("notallowed", method.lower())
    if len(rest) == 2:
        sub = res.subresource(rest[1])
        if sub is not None:
            verb = SUB_VERBS.get(method) if sub != "log" else {"GET": "get"}.get(method)
            if verb is None:
                return Route("notallowed", method.lower())
            return Route("item", verb, res, ns, rest[0], sub)
    return Route("notfound", "get")


def _collection(method: str, res: Resource, ns: Optional[str], watch: bool,
                watch_path: bool) -> Route:
    if method == "GET":
        return Route("collection", "watch" if watch else "list", res, ns)
    if watch_path:
        return Route("notallowed", method.lower())
    if method == "POST":
        return Route("collection", "create", res, ns)
    if method == "DELETE" and "deletecollection" in res.collection_verbs and ns is not None:
        return Route("collection", "deletecollection", res, ns)
    return Route("notallowed", method.lower())
