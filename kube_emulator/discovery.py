"""Discovery documents (legacy, non-aggregated) and a minimal OpenAPI v3."""
from __future__ import annotations

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

DEPLOYMENT_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
NAMESPACE_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


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


def core_v1_resources() -> dict:
    return {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": False,
             "kind": "Namespace", "verbs": NAMESPACE_VERBS, "shortNames": ["ns"],
             "storageVersionHash": "Q3oi5N2YM8M="},
            {"name": "namespaces/status", "singularName": "", "namespaced": False,
             "kind": "Namespace", "verbs": ["get", "patch", "update"]},
        ],
    }


def apps_v1_resources() -> dict:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": True,
             "kind": "Deployment", "verbs": DEPLOYMENT_VERBS, "shortNames": ["deploy"],
             "categories": ["all"], "storageVersionHash": "8aSe+NMegvE="},
            {"name": "deployments/scale", "singularName": "", "namespaced": True,
             "group": "autoscaling", "version": "v1", "kind": "Scale",
             "verbs": ["get", "patch", "update"]},
            {"name": "deployments/status", "singularName": "", "namespaced": True,
             "kind": "Deployment", "verbs": ["get", "patch", "update"]},
        ],
    }


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


def openapi_v3_apps_v1() -> dict:
    return _doc(_ops("apps", "v1", "Deployment", True, "deployments"), [("apps", "v1", "Deployment")])


def openapi_v3_core_v1() -> dict:
    return _doc(_ops("", "v1", "Namespace", False, "namespaces"), [("", "v1", "Namespace")])


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
