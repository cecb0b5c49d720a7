"""``meta.k8s.io/v1`` Table output (``Accept: ...;as=Table``), which ``kubectl get`` asks
for. The columns and cells of each resource live on its type in ``resources``."""
from __future__ import annotations

import json
from typing import Optional

from .clock import age
from .resources import Resource
from .store import Stored, dumps, event_line, with_rv


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def row(res: Resource, obj: dict) -> dict:
    meta = obj["metadata"]
    return {"cells": res.table_cells(obj, age(meta.get("creationTimestamp"))),
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": meta}}


def table(res: Resource, objs: list[dict], rv: str) -> dict:
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "columnDefinitions": res.table_columns(),
            "rows": [row(res, o) for o in objs]}


def event_renderer(res: Resource):
    """A watch line renderer that sends each event's object as a one-row Table."""
    def render(type_: str, st: Stored, rv_override: Optional[int]) -> bytes:
        obj = st.obj
        if rv_override is not None:
            obj = json.loads(with_rv(st, rv_override))
        return event_line(type_, dumps(table(res, [obj], obj["metadata"]["resourceVersion"])))
    return render
