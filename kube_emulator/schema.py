"""Unknown-field handling, like the apiserver's decoder: unknown fields are dropped (with a
``Warning`` header) or, with ``fieldValidation=Strict``, rejected with 400.

The known fields live in ``known_fields.json``, generated from the models of the official
``kubernetes`` client 37 (built from the Kubernetes 1.37 OpenAPI) with
``python -m kube_emulator.schema > kube_emulator/known_fields.json``; the emulator itself
does not import the client.
"""
from __future__ import annotations

import json
import os
import sys
import typing
from functools import lru_cache

ROOTS = {"Deployment": "V1Deployment", "Namespace": "V1Namespace", "Scale": "V1Scale",
         "ReplicaSet": "V1ReplicaSet", "Pod": "V1Pod", "Event": "CoreV1Event",
         "ResourceQuota": "V1ResourceQuota"}
_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "known_fields.json")


@lru_cache(maxsize=1)
def _schema() -> dict:
    try:
        with open(_PATH) as f:
            return json.load(f)
    except OSError:  # pragma: no cover - file missing: prune nothing
        return {"models": {}}


def _walk(value, node, models: dict, path: str, unknown: list) -> None:
    if node is None:
        return
    if "m" in node:
        if not isinstance(value, dict):
            return
        fields = models[node["m"]]
        for k in list(value):
            if k not in fields:
                unknown.append(f"{path}{k}")
                del value[k]
            elif value[k] is not None:
                _walk(value[k], fields[k], models, f"{path}{k}.", unknown)
    elif "l" in node:
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, node["l"], models, f"{path[:-1]}[{i}].", unknown)
    elif "d" in node:
        if isinstance(value, dict):
            for k, item in value.items():
                _walk(item, node["d"], models, f"{path}{k}.", unknown)


def prune_unknown(kind: str, obj: dict) -> list[str]:
    """Remove unknown fields from ``obj`` in place; return their paths."""
    models = _schema()["models"]
    root = ROOTS.get(kind)
    if root not in models or not isinstance(obj, dict):
        return []
    unknown: list[str] = []
    _walk(obj, {"m": root}, models, "", unknown)
    return unknown


# ----------------------------------------------------------------------------- generator

def _node(ann, models: dict, client):
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
            continue
        if origin is typing.Union:
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if len(args) == 1:
                ann = args[0]
                continue
            return None
        break
    origin = typing.get_origin(ann)
    if origin in (list, typing.List):
        return {"l": _node(typing.get_args(ann)[0], models, client)}
    if origin in (dict, typing.Dict):
        return {"d": _node(typing.get_args(ann)[1], models, client)}
    if isinstance(ann, type) and hasattr(ann, "model_fields"):
        _model(ann, models, client)
        return {"m": ann.__name__}
    return None


def _model(cls, models: dict, client) -> None:
    if cls.__name__ in models:
        return
    fields: dict = {}
    models[cls.__name__] = fields
    for name, f in cls.model_fields.items():
        fields[f.serialization_alias or f.alias or name] = _node(f.annotation, models, client)


def generate() -> dict:
    from kubernetes import client
    models: dict = {}
    for root in ROOTS.values():
        _model(getattr(client, root), models, client)
    return {"generated_from": f"kubernetes python client {client.__version__ if hasattr(client, '__version__') else ''}".strip(),
            "models": models}


if __name__ == "__main__":
    json.dump(generate(), sys.stdout, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")
