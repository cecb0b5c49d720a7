"""Why a deployment is (un)healthy, read live from Kubernetes: its pods, their containers, the
Warning events, a one-line summary; and its pods' logs, bounded.

Read by the api with a short timeout (K8SDM_DIAGNOSIS_TIMEOUT_SECONDS) and kept a few seconds per
process (K8SDM_DIAGNOSIS_CACHE_SECONDS), so a page refresh does not hammer the API server; never
stored. Any failure to read the cluster is `Unavailable` (503 with Retry-After).

The api reads only pods, events and pod logs (its RBAC grants nothing else): the Deployment itself
(uid, replicas, conditions) is the row the sync keeps. A pod is the deployment's only when it
carries all three of k8sdm's labels for it (name, managed-by, owner hash: reserved keys no user of
k8sdm can set) and its controller is a ReplicaSet named `<identifier>-<pod-template-hash>` with
the pod's own `pod-template-hash` label, the name the Deployment controller gives its
ReplicaSets; another deployment's ReplicaSet can never have that name, since a name adds at least
one more dash. ReplicaSet Warning events (FailedCreate from a quota, when no pod exists at all)
are matched by the same name rule, Deployment events by name and uid.
"""

from __future__ import annotations

import re
import threading
import time

from django.conf import settings

from deployments_app import k8s
from deployments_app.config import MANAGED_BY_LABEL, MANAGED_BY_VALUE, NAME_LABEL, OWNER_LABEL, owner_label_value
from deployments_app.models import Deployment, DeploymentStatus
from k8sdm.errors import Conflict, InvalidInput, NotFound, Unavailable

MAX_PODS = 50
MAX_EVENTS = 50
RETRY_AFTER_SECONDS = 5
DEFAULT_TAIL = 100
PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
CRASH_REASONS = {"CrashLoopBackOff", "Error", "RunContainerError"}

_cache: dict[int, tuple[float, dict]] = {}
_cache_lock = threading.Lock()
MAX_CACHED = 1000


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _unavailable(exc: k8s.K8sError) -> Unavailable:
    return Unavailable(
        f"The Kubernetes API server did not answer ({exc.reason or exc.status}); retry in {RETRY_AFTER_SECONDS} s.",
        retry_after=RETRY_AFTER_SECONDS,
    )


def _owned_by(obj: dict, uids: set[str]) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") in uids and ref.get("controller") for ref in refs)


# The apiserver's alphabet for generated name suffixes (pod-template-hash included).
_HASH = "[bcdfghjklmnpqrstvwxz2456789]{1,10}"


def _replicaset_name(identifier: str) -> re.Pattern:
    return re.compile(rf"{re.escape(identifier)}-({_HASH})")


def _controller(obj: dict) -> dict:
    return next((ref for ref in (obj.get("metadata") or {}).get("ownerReferences") or [] if ref.get("controller")),
                {})


def _pod_selector(deployment: Deployment) -> str:
    return (f"{NAME_LABEL}={deployment.identifier},{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},"
            f"{OWNER_LABEL}={owner_label_value(deployment.owner.user_external_id)}")


def _exists(deployment: Deployment) -> bool:
    return bool(deployment.uid) and deployment.status != DeploymentStatus.DELETED


def _live_tree(deployment: Deployment) -> tuple[list[dict], list[dict]]:
    """(its ReplicaSets, newest first, as seen through their pods; its Pods): see the module docstring."""
    if not _exists(deployment):
        return [], []
    rs_name = _replicaset_name(deployment.identifier)
    pods, sets = [], {}
    for pod in k8s.list_pods(deployment.namespace, _pod_selector(deployment)):
        owner = _controller(pod)
        match = rs_name.fullmatch(owner.get("name") or "")
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if owner.get("kind") != "ReplicaSet" or not match or labels.get("pod-template-hash") != match.group(1):
            continue
        pods.append(pod)
        created = (pod.get("metadata") or {}).get("creationTimestamp") or ""
        rs = sets.setdefault(owner["name"], {"metadata": {"name": owner["name"], "uid": owner.get("uid", "")},
                                             "pods": [], "newest": ""})
        rs["pods"].append(pod)
        rs["newest"] = max(rs["newest"], created)
    replicasets = sorted(sets.values(), key=lambda rs: (rs["newest"], rs["metadata"]["name"]), reverse=True)
    pods.sort(key=lambda pod: pod["metadata"]["name"])
    return replicasets, pods[:MAX_PODS]


def _container(status: dict) -> dict:
    state = status.get("state") or {}
    kind = next(iter(state), "unknown")
    detail = state.get(kind) or {}
    last = (status.get("lastState") or {}).get("terminated")
    return {
        "name": status.get("name", ""),
        "image": status.get("image", ""),
        "state": kind,
        "reason": detail.get("reason", ""),
        "message": detail.get("message", ""),
        "exit_code": detail.get("exitCode"),
        "ready": bool(status.get("ready")),
        "restarts": int(status.get("restartCount") or 0),
        "last_termination": None if not last else {
            "reason": last.get("reason", ""), "exit_code": last.get("exitCode"),
            "finished_at": last.get("finishedAt"),
        },
    }


def _pod(pod: dict) -> dict:
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    containers = [_container(c) for c in (status.get("initContainerStatuses") or [])
                  + (status.get("containerStatuses") or [])]
    return {
        "name": pod["metadata"]["name"],
        "phase": status.get("phase", ""),
        "ready": (conditions.get("Ready") or {}).get("status") == "True",
        "node": (pod.get("spec") or {}).get("nodeName") or "",
        "unschedulable": scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable",
        "scheduling_message": scheduled.get("message", "") if scheduled.get("status") == "False" else "",
        "containers": containers,
    }


def _warnings(deployment: Deployment, pod_names: set[str]) -> list[dict]:
    """The Warning events about the Deployment (its name and uid), its ReplicaSets (the name rule)
    and these pods; three reads, one per kind."""
    ns, identifier = deployment.namespace, deployment.identifier
    rs_name = _replicaset_name(identifier)
    found = [e for e in k8s.list_events(ns, involved_name=identifier, kind="Deployment", event_type="Warning")
             if (e.get("involvedObject") or {}).get("uid") in ("", None, deployment.uid)]
    found += [e for e in k8s.list_events(ns, kind="ReplicaSet", event_type="Warning")
              if rs_name.fullmatch((e.get("involvedObject") or {}).get("name") or "")]
    if pod_names:
        found += [e for e in k8s.list_events(ns, kind="Pod", event_type="Warning")
                  if (e.get("involvedObject") or {}).get("name") in pod_names]
    return found


def _events(found: list[dict]) -> list[dict]:
    """Events newest first, one per (object, reason, message)."""
    seen: dict[tuple, dict] = {}
    for event in found:
        involved = event.get("involvedObject") or {}
        key = (involved.get("kind"), involved.get("name"), event.get("reason"), event.get("message"))
        last = event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get(
            "creationTimestamp") or ""
        row = {
            "object": f"{involved.get('kind', '')}/{involved.get('name', '')}",
            "reason": event.get("reason", ""),
            "message": event.get("message", ""),
            "count": int(event.get("count") or 1),
            "last_seen": last,
        }
        if key in seen:
            seen[key]["count"] += row["count"]
            seen[key]["last_seen"] = max(seen[key]["last_seen"], last)
        else:
            seen[key] = row
    return sorted(seen.values(), key=lambda row: row["last_seen"], reverse=True)[:MAX_EVENTS]


def summarize(*, exists: bool, wanted: int, replicasets: list[dict], pods: list[dict], events: list[dict]) -> str:
    """The one line a person reads first."""
    if not exists:
        return "The deployment does not exist in the cluster."
    current = [p for p in pods if p["_rs"] == (replicasets[0]["metadata"]["name"] if replicasets else None)]
    total = max(wanted, len(current))

    def count(pred) -> list[dict]:
        return [p for p in current if pred(p)]

    pulls = count(lambda p: any(c["reason"] in PULL_REASONS for c in p["containers"]))
    if pulls:
        failing = next(c for c in pulls[0]["containers"] if c["reason"] in PULL_REASONS)
        return f"{len(pulls)} of {total} pods cannot pull image {failing['image']}: {failing['reason']}"
    crashes = count(lambda p: any(c["reason"] in CRASH_REASONS or (c["last_termination"] and not c["ready"])
                                  for c in p["containers"]))
    if crashes:
        failing = next(c for c in crashes[0]["containers"] if c["reason"] in CRASH_REASONS or c["last_termination"])
        code = failing["exit_code"] if failing["exit_code"] is not None else (
            (failing["last_termination"] or {}).get("exit_code"))
        return (f"{len(crashes)} of {total} pods crash (container {failing['name']} exits with code {code}): "
                f"{failing['reason'] or 'Error'}")
    unscheduled = count(lambda p: p["unschedulable"])
    if unscheduled:
        return (f"{len(unscheduled)} of {total} pods cannot be scheduled: "
                f"{unscheduled[0]['scheduling_message'] or 'Unschedulable'}")
    failed_create = next((e for e in events if e["reason"] == "FailedCreate"), None)
    if failed_create and len(current) < wanted:
        return f"{wanted - len(current)} of {wanted} pods cannot be created: FailedCreate: {failed_create['message']}"
    ready = len(count(lambda p: p["ready"]))
    if wanted == 0:
        return "Scaled to 0 replicas."
    return f"{ready} of {wanted} pods ready"


def diagnose(deployment: Deployment) -> dict:
    """The diagnosis (cached a few seconds per deployment in this process)."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(deployment.pk)
        if hit is not None and hit[0] > now:
            return hit[1]
    try:
        result = _build(deployment)
    except k8s.K8sError as exc:
        raise _unavailable(exc) from None
    with _cache_lock:
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        _cache[deployment.pk] = (time.monotonic() + settings.K8SDM_DIAGNOSIS_CACHE_SECONDS, result)
    return result


def _with_failing_replicasets(replicasets: list[dict], warnings: list[dict]) -> list[dict]:
    """Add the ReplicaSets known only from their Warning events (no pod could be created: a quota)
    and order all by their latest sign of life (newest pod or event), so the current one is first."""
    by_name = {rs["metadata"]["name"]: rs for rs in replicasets}
    for event in warnings:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") != "ReplicaSet":
            continue
        seen = event.get("lastTimestamp") or event.get("eventTime") or ""
        rs = by_name.setdefault(involved.get("name"), {"metadata": {"name": involved.get("name"),
                                                                    "uid": involved.get("uid", "")},
                                                       "pods": [], "newest": ""})
        rs["newest"] = max(rs["newest"], seen)
    return sorted(by_name.values(), key=lambda rs: (rs["newest"], rs["metadata"]["name"]), reverse=True)


def _build(deployment: Deployment) -> dict:
    replicasets, raw_pods = _live_tree(deployment)
    exists = _exists(deployment)
    pods = [{**_pod(p), "_rs": _controller(p).get("name")} for p in raw_pods]
    warnings = _warnings(deployment, {p["name"] for p in pods}) if exists else []
    replicasets = _with_failing_replicasets(replicasets, warnings)
    events = _events(warnings)
    wanted = int(deployment.replicas if deployment.replicas is not None else 1)
    summary = summarize(exists=exists, wanted=wanted, replicasets=replicasets, pods=pods, events=events)
    current = replicasets[0] if replicasets else None
    current_pods = [p for p in pods if current and p["_rs"] == current["metadata"]["name"]]
    return {
        "identifier": deployment.identifier,
        "namespace": deployment.namespace,
        "exists": exists,
        "summary": summary,
        "conditions": [
            {key: c.get(key, "") for key in ("type", "status", "reason", "message")}
            for c in (deployment.conditions or []) if isinstance(c, dict)
        ] if exists else [],
        "replicaset": None if current is None else {
            "name": current["metadata"]["name"],
            "pod_template_hash": current["metadata"]["name"][len(deployment.identifier) + 1:],
            "replicas": len(current_pods),
            "ready_replicas": sum(p["ready"] for p in current_pods),
        },
        "pods": [{**{k: v for k, v in p.items() if k != "_rs"}, "replicaset": p["_rs"] or ""} for p in pods],
        "events": events,
    }


def pod_logs(deployment: Deployment, *, pod: str | None = None, container: str | None = None,
             tail: int | None = None, since: int | None = None, previous: bool = False) -> dict:
    """The last lines of one of the deployment's pods (the first of its current ReplicaSet when
    `pod` is not given), at most K8SDM_LOGS_MAX_LINES lines and K8SDM_LOGS_MAX_BYTES bytes."""
    max_lines, max_bytes = settings.K8SDM_LOGS_MAX_LINES, settings.K8SDM_LOGS_MAX_BYTES
    lines_wanted = min(tail or DEFAULT_TAIL, max_lines)
    try:
        replicasets, pods = _live_tree(deployment)
        if pod is None:
            current = replicasets[0]["metadata"]["uid"] if replicasets else None
            ordered = sorted(pods, key=lambda p: not _owned_by(p, {current}))
            if not ordered:
                raise NotFound(f"Deployment {deployment.identifier!r} has no pods.", code="pod_not_found")
            chosen = ordered[0]
        else:
            chosen = next((p for p in pods if p["metadata"]["name"] == pod), None)
            if chosen is None:
                raise NotFound(f"Pod {pod!r} not found in deployment {deployment.identifier!r}.",
                               code="pod_not_found")
        names = [c["name"] for c in (chosen.get("spec") or {}).get("containers") or []]
        if container is not None and container not in names:
            raise InvalidInput(f"Container {container!r} is not in pod {chosen['metadata']['name']!r}.",
                               fields={"container": [f"not one of: {', '.join(names)}"]})
        container = container or (names[0] if names else None)
        text = k8s.read_pod_log(deployment.namespace, chosen["metadata"]["name"], container=container,
                                tail_lines=lines_wanted, since_seconds=since, previous=previous,
                                limit_bytes=max_bytes)
    except k8s.K8sError as exc:
        if exc.status == 400:
            raise Conflict(f"No logs: {exc.message}", code="logs_unavailable") from None
        raise _unavailable(exc) from None
    lines = text.splitlines()
    truncated = len(lines) > lines_wanted
    lines = lines[-lines_wanted:]
    kept, size = [], 0
    for line in reversed(lines):
        size += len(line.encode()) + 1
        if size > max_bytes:
            truncated = True
            break
        kept.append(line)
    kept.reverse()
    return {"pod": chosen["metadata"]["name"], "container": container or "", "lines": kept, "truncated": truncated}
