"""ResourceQuota admission for pods and the quota's ``.status`` (hard / used), like the
apiserver's quota admission plugin and the resource-quota controller, for the tracked
names in ``resources.QUOTA_RESOURCES``: ``pods``/``count/pods``, ``requests.cpu``/``cpu``,
``requests.memory``/``memory``, ``limits.cpu``, ``limits.memory``.

Only namespaces that hold a ResourceQuota pay for it: usage is summed over the pods of
that namespace when a pod is admitted or the quota's status is refreshed.
"""
from __future__ import annotations

import json
from fractions import Fraction
from typing import Optional

from . import errors, quantity
from .resources import PODS, QUOTA_RESOURCES, RESOURCEQUOTAS, pod_limits, pod_requests
from .store import Store

TERMINAL = ("Succeeded", "Failed")


def _pod_usage(spec: dict) -> dict[str, Fraction]:
    req, lim = pod_requests(spec), pod_limits(spec)
    usage = {"pods": Fraction(1), "count/pods": Fraction(1)}
    for name in ("cpu", "memory"):
        if name in req:
            usage[name] = usage[f"requests.{name}"] = req[name]
        if name in lim:
            usage[f"limits.{name}"] = lim[name]
    return usage


def quotas(store: Store, ns: str) -> list:
    d = store.by_ns[RESOURCEQUOTAS.name].get(ns)
    return [d[n] for n in sorted(d)] if d else []


def namespace_usage(store: Store, ns: str) -> dict[str, Fraction]:
    used: dict[str, Fraction] = {}
    for st in list((store.by_ns[PODS.name].get(ns) or {}).values()):
        if st.phase in TERMINAL:
            continue
        for k, v in _pod_usage(st.obj.get("spec") or {}).items():
            used[k] = used.get(k, 0) + v
    return used


def refusal(store: Store, ns: str, pod: dict) -> Optional[str]:
    """Why the namespace's quotas refuse this pod (the apiserver's wording), or None."""
    qs = quotas(store, ns)
    if not qs:
        return None
    spec = pod.get("spec") or {}
    want = _pod_usage(spec)
    used = None
    for st in qs:
        q = st.obj
        hard = {k: quantity.parse(v) for k, v in ((q.get("spec") or {}).get("hard") or {}).items()
                if k in QUOTA_RESOURCES}
        qname = q["metadata"]["name"]
        missing = sorted(k for k in hard if k not in want)
        if missing:
            containers = ",".join(c.get("name", "") for c in spec.get("containers") or [])
            return "failed quota: " + qname + ": must specify " + "; ".join(
                f"{k.split('.')[-1]} for: {containers}" for k in missing)
        if used is None:
            used = namespace_usage(store, ns)
        over = sorted(k for k, limit in hard.items()
                      if limit is not None and used.get(k, 0) + want[k] > limit)
        if over:
            def fmt(values):
                return ",".join(f"{k}={quantity.format_for(k, values.get(k, 0))}" for k in over)
            return (f"exceeded quota: {qname}, requested: {fmt(want)}, used: {fmt(used)}, "
                    f"limited: {fmt(hard)}")
    return None


def admit_pod(store: Store, ns: str, pod: dict) -> None:
    """Admission of a pod created through the API: 403 Forbidden over quota."""
    why = refusal(store, ns, pod)
    if why is not None:
        name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
        raise errors.forbidden(PODS.name, "", name, why)


def refresh_status(store: Store, ns: str) -> None:
    """Write ``status.hard`` / ``status.used`` of the namespace's quotas if they changed."""
    qs = quotas(store, ns)
    if not qs:
        return
    used = namespace_usage(store, ns)
    for st in qs:
        obj = json.loads(st.raw)
        hard = (obj.get("spec") or {}).get("hard") or {}
        status = {"hard": dict(hard),
                  "used": {k: quantity.format_for(k, used.get(k, Fraction(0))) for k in hard}}
        if obj.get("status") != status:
            obj["status"] = status
            store.put(RESOURCEQUOTAS.name, obj, "MODIFIED", prev=st, source="quota")
