"""Discovery documents (legacy, non-aggregated) and a minimal OpenAPI v3."""
from __future__ import annotations

import base64
import hashlib

from .resources import RESOURCES, Resource

VERSION = {
    "major": "1",
    "minor": "37",
    "emulationMajor": "1",
    "emulationMinor": "37",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "36",
    "gitVersion": "v1.37.0-kube-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

ITEM_VERBS = ("get", "patch", "update", "delete")
CATEGORY_ALL = ("pods", "deployments", "replicasets")  # what `kubectl get all` lists


def api_versions(host: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}


APPS_GROUP = {
    "name": "apps",
    "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
}


def api_group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [APPS_GROUP]}


def apps_group() -> dict:
    return dict({"kind": "APIGroup", "apiVersion": "v1"}, **APPS_GROUP)


def _storage_hash(res: Resource) -> str:
    return base64.b64encode(hashlib.sha1(res.api_version.encode() + res.name.encode())
                            .digest()[:8]).decode()


def _entries(res: Resource) -> list[dict]:
    verbs = sorted(set(res.collection_verbs) | set(ITEM_VERBS))
    main = {"name": res.name, "singularName": res.singular, "namespaced": res.namespaced,
            "kind": res.kind, "verbs": verbs}
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.name in CATEGORY_ALL:
        main["categories"] = ["all"]
    main["storageVersionHash"] = _storage_hash(res)
    out = [main]
    for sub in res.subresources:
        entry = {"name": f"{res.name}/{sub}", "singularName": "", "namespaced": res.namespaced,
                 "kind": res.kind, "verbs": ["get", "patch", "update"]}
        if sub == "scale":
            entry.update(group="autoscaling", version="v1", kind="Scale")
        elif sub == "log":
            entry.update(kind="Pod", verbs=["get"])
        out.append(entry)
    return out


def _resource_list(group: str) -> list[dict]:
    return [e for r in RESOURCES if r.group == group
            for e in _entries(r)]


def core_v1_resources() -> dict:
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": _resource_list("")}


def apps_v1_resources() -> dict:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
            "resources": _resource_list("apps")}


PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


def _query_param(name: str, desc: str) -> dict:
    return {"name": name, "in": "query", "description": desc, "schema": {"type": "string"}}


def _ops(group: str, version: str, kind: str, namespaced: bool, plural: str) -> dict:
    gvk = {"group": group, "version": version, "kind": kind}
    common = [_query_param("dryRun", "dry run"), _query_param("fieldManager", "field manager"),
              _query_param("fieldValidation", "fieldValidation instructs the server on how to "
                           "handle objects in the request containing unknown or duplicate fields")]
    ref = {"$ref": f"#/components/schemas/{kind}"}
    body = {"content": {"*/*": {"schema": ref}}, "required": True}
    resp = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}

    def op(action, params, with_body=True):
        o = {"operationId": f"{action}{kind}", "parameters": params, "responses": resp,
             "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk}
        if with_body:
            o["requestBody"] = body
        return o
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    coll = f"{prefix}/namespaces/{{namespace}}/{plural}" if namespaced else f"{prefix}/{plural}"
    item = coll + "/{name}"
    return {
        coll: {"get": op("list", [], False), "post": op("post", common)},
        item: {"get": op("get", [], False), "put": op("put", common),
               # no requestBody on PATCH: tells kubectl to compute client-side apply
               # patches from its built-in types instead of from this (schema-less) document
               "patch": {"operationId": f"patch{kind}", "parameters": common + [
                   _query_param("force", "force")], "responses": resp,
                   "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
               "delete": op("delete", [_query_param("dryRun", "dry run")], False)},
    }


def openapi_v3_root() -> dict:
    return {"paths": {
        "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=KUBEEMULATORCOREV1"},
        "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=KUBEEMULATORAPPSV1"},
    }}


def _doc(paths: dict, kinds: list[tuple[str, str, str]]) -> dict:
    schemas = {}
    for group, version, kind in kinds:
        schemas[kind] = {"type": "object", "description": f"{kind} (kube-emulator: schema not "
                         f"published)", "x-kubernetes-group-version-kind": [
                             {"group": group, "version": version, "kind": kind}]}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (kube-emulator)", "version": "v1.37.0"},
            "paths": paths, "components": {"schemas": schemas}}


def _group_doc(group: str) -> dict:
    paths: dict = {}
    kinds = []
    for r in RESOURCES:
        if r.group == group:
            paths.update(_ops(r.group, r.version, r.kind, r.namespaced, r.name))
            kinds.append((r.group, r.version, r.kind))
    return _doc(paths, kinds)


def openapi_v3_apps_v1() -> dict:
    return _group_doc("apps")


def openapi_v3_core_v1() -> dict:
    return _group_doc("")


HEALTH_PATHS = ("healthz", "livez", "readyz")


def document(path: str, host: str):
    """The discovery or OpenAPI document served at ``/path``, or None."""
    docs = {
        "": lambda: {"paths": ["/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1",
                               "/healthz", "/livez", "/readyz", "/version", "/openapi/v3",
                               "/_emulator/stats"]},
        "version": lambda: VERSION,
        "api": lambda: api_versions(host),
        "api/v1": core_v1_resources,
        "apis": api_group_list,
        "apis/apps": apps_group,
        "apis/apps/v1": apps_v1_resources,
        "openapi/v3": openapi_v3_root,
        "openapi/v3/apis/apps/v1": openapi_v3_apps_v1,
        "openapi/v3/api/v1": openapi_v3_core_v1,
    }
    make = docs.get(path)
    return make() if make is not None else None
