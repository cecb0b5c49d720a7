"""The ReplicaSets and Pods of each Deployment, kept by the simulated controller.

The Deployment model in ``controller.py`` decides how many pods the new ReplicaSet has and
how many of them are ready, and how many old pods are still available; ``Workloads.sync``
makes the cluster objects say so: apps/v1 ReplicaSets (owner reference to the Deployment,
``pod-template-hash``, revision annotations, status), core/v1 Pods (owner reference to
their ReplicaSet, phase, conditions, container states from ``kubelet``), core/v1 Events of
the Deployment, its ReplicaSets and Pods, and ResourceQuota admission of new pods
(``FailedCreate`` on the ReplicaSet when a quota refuses one).

Old ReplicaSets are modelled together: the available old pods the model reports are kept
on the most recent old ReplicaSets first, and older ones are scaled to zero.
"""
from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional

from . import kubelet, quota
from .clock import now_rfc3339
from .events import EventRecorder, reference
from .kubelet import PodPlan, PodSim
from .resources import PODS, REPLICASETS, default_pod_spec
from .store import Store

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's name suffix alphabet
HASH_LABEL = "pod-template-hash"
RS_CONTROLLER = "replicaset-controller"
DEPLOY_CONTROLLER = "deployment-controller"
SCHEDULER = "default-scheduler"
KUBELET = "kubelet"


@dataclass
class RSSim:
    name: str
    uid: str
    hash: str
    revision: int
    plan: PodPlan
    template_raw: bytes                 # the Deployment's template + pod-template-hash (JSON)
    selector: dict
    replicas: int = 0                   # spec.replicas as last written
    pods: dict = field(default_factory=dict)    # name -> PodSim, in creation order
    failure: Optional[str] = None       # a FailedCreate message while pods are refused
    written: tuple = ()                 # what the stored object last said

    @property
    def template(self) -> dict:
        return json.loads(self.template_raw)


@dataclass
class DeploySim:
    uid: str
    sets: dict = field(default_factory=dict)    # hash -> RSSim
    current: Optional[str] = None
    revision: int = 0


@dataclass
class SyncResult:
    created: int            # pods the new ReplicaSet has
    ready: int              # of which ready
    failure: Optional[str]  # why pods are missing (a quota)
    next_at: Optional[float]  # monotonic time a pod changes state by itself


class Workloads:
    def __init__(self, store: Store, recorder: EventRecorder, config):
        self.store = store
        self.events = recorder
        self.config = config
        self.deps: dict[tuple, DeploySim] = {}
        self.rs_owner: dict[tuple, tuple] = {}     # (ns, rs name) -> deployment key
        self.pod_owner: dict[tuple, tuple] = {}    # (ns, pod name) -> (deployment key, hash)
        self._ips = itertools.count(2)
        self._rng = random.Random()
        self.pods_created = 0

    def reset(self) -> None:
        self.deps.clear()
        self.rs_owner.clear()
        self.pod_owner.clear()

    # ------------------------------------------------------------------ bookkeeping
    def forget(self, key: tuple) -> None:
        """The Deployment is gone (its objects go with it through garbage collection)."""
        d = self.deps.pop(key, None)
        if d is None:
            return
        for rs in d.sets.values():
            self.rs_owner.pop((key[0], rs.name), None)
            for pod in rs.pods:
                self.pod_owner.pop((key[0], pod), None)

    def lost(self, res: str, ns: str, name: str) -> Optional[tuple]:
        """An object of ours was deleted by someone else: forget it; return the
        Deployment key whose controller must make up for it."""
        if res == PODS.name:
            owner = self.pod_owner.pop((ns, name), None)
            if owner is None:
                return None
            d = self.deps.get(owner[0])
            rs = d.sets.get(owner[1]) if d else None
            if rs is not None:
                rs.pods.pop(name, None)
            return owner[0]
        if res == REPLICASETS.name:
            key = self.rs_owner.pop((ns, name), None)
            d = self.deps.get(key) if key else None
            if d is None:
                return None
            for h, rs in list(d.sets.items()):
                if rs.name == name:
                    for pod in rs.pods:
                        self.pod_owner.pop((ns, pod), None)
                    del d.sets[h]
                    if d.current == h:
                        d.current = None
            return key
        return None

    def adopt(self, dep: dict) -> set:
        """Rebuild the model of a Deployment's ReplicaSets and Pods from the stored
        objects (after a restart); return the template hashes it has ReplicaSets for."""
        meta = dep["metadata"]
        ns, key = meta["namespace"], (meta["namespace"], meta["name"])
        d = self.deps[key] = DeploySim(uid=meta["uid"])
        now = time.monotonic()
        for res, rs_ns, rs_name in self.store.dependants_of(meta["uid"]):
            st = self.store.get(res, rs_ns, rs_name) if res == REPLICASETS.name else None
            if st is None:
                continue
            obj = st.obj
            labels = obj["metadata"].get("labels") or {}
            h = labels.get(HASH_LABEL)
            if not h:
                continue
            spec = obj.get("spec") or {}
            try:
                revision = int((obj["metadata"].get("annotations") or {}).get(
                    "deployment.kubernetes.io/revision", "0"))
            except ValueError:
                revision = 0
            template = spec.get("template") or {}
            rs = RSSim(name=rs_name, uid=st.uid, hash=h, revision=revision,
                       plan=self.plan(template), template_raw=json.dumps(template).encode(),
                       selector=spec.get("selector") or {}, replicas=spec.get("replicas", 0))
            d.sets[h] = rs
            d.revision = max(d.revision, revision)
            self.rs_owner[(ns, rs_name)] = key
            for pres, pns, pname in self.store.dependants_of(st.uid):
                pst = self.store.get(pres, pns, pname) if pres == PODS.name else None
                if pst is not None:
                    rs.pods[pname] = self._adopt_pod(pst.obj, rs, now)
                    self.pod_owner[(ns, pname)] = (key, h)
        current = max(d.sets.values(), key=lambda r: r.revision, default=None)
        d.current = current.hash if current else None
        return set(d.sets)

    def _adopt_pod(self, pod: dict, rs: RSSim, now: float) -> PodSim:
        from .clock import parse_rfc3339
        status = pod.get("status") or {}
        statuses = status.get("containerStatuses") or []
        sim = PodSim(name=pod["metadata"]["name"], uid=pod["metadata"].get("uid", ""),
                     created=parse_rfc3339(pod["metadata"].get("creationTimestamp")) or
                     time.time(), ip=status.get("podIP") or "",
                     scheduled=bool((pod.get("spec") or {}).get("nodeName")))
        sim.ready = bool(statuses) and all(cs.get("ready") for cs in statuses)
        waiting = [((cs.get("state") or {}).get("waiting") or {}).get("reason")
                   for cs in statuses]
        restarts = max((cs.get("restartCount", 0) for cs in statuses), default=0)
        if "CrashLoopBackOff" in waiting:
            sim.stage = restarts + 1
        elif "ImagePullBackOff" in waiting or any((cs.get("state") or {}).get("terminated")
                                                  for cs in statuses):
            sim.stage = 1
        sim.written = (sim.ready, sim.stage)
        if rs.plan.never_ready:
            sim.next_at = now + self._first_stage()
        return sim

    def plan(self, template: dict) -> PodPlan:
        return kubelet.plan_for((template or {}).get("spec") or {}, self.config.node_cpu,
                                self.config.node_memory)

    # ------------------------------------------------------------------ the sync
    def sync(self, dep: dict, h: str, new_total: int, new_ready: int, old_ready: int,
             surge: int) -> SyncResult:
        meta = dep["metadata"]
        ns, name = meta["namespace"], meta["name"]
        key = (ns, name)
        d = self.deps.get(key)
        if d is None or d.uid != meta["uid"]:
            if d is not None:
                self.forget(key)
            d = self.deps[key] = DeploySim(uid=meta["uid"])
        rs = d.sets.get(h)
        if rs is None or d.current != h:
            d.revision += 1
        if rs is None:
            rs = self._new_rs(dep, d, h)
        elif d.current != h:
            rs.revision = d.revision
        d.current = h
        spec = dep.get("spec") or {}
        desired = spec.get("replicas", 1)
        now = time.monotonic()
        changed_pods = False
        # old ReplicaSets: keep `old_ready` ready pods, newest ReplicaSets first
        left = old_ready
        olds = sorted((r for k, r in d.sets.items() if k != h), key=lambda r: -r.revision)
        for old in olds:
            keep = min(left, sum(1 for p in old.pods.values() if p.ready))
            if old is olds[0] and keep < left:
                keep = left
            left -= keep
            changed_pods |= self._scale(dep, old, keep, keep, now)
        changed_pods |= self._scale(dep, rs, new_total, new_ready, now)
        next_at = None
        for r in d.sets.values():
            for pod in r.pods.values():
                if pod.next_at is not None and pod.next_at <= now:
                    self._advance(r, pod, ns, now)
                if pod.next_at is not None:
                    next_at = pod.next_at if next_at is None else min(next_at, pod.next_at)
            self._write_pods(r, ns)
            self._write_rs(dep, r, desired, surge)
        if changed_pods and quota.quotas(self.store, ns):
            quota.refresh_status(self.store, ns)
        ready = sum(1 for p in rs.pods.values() if p.ready)
        return SyncResult(len(rs.pods), ready, rs.failure, next_at)

    def _new_rs(self, dep: dict, d: DeploySim, h: str) -> RSSim:
        spec = dep.get("spec") or {}
        template = json.loads(json.dumps(spec.get("template") or {}))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = dict(tmeta.get("labels") or {}, **{HASH_LABEL: h})
        selector = json.loads(json.dumps(spec.get("selector") or {}))
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{HASH_LABEL: h})
        rs = RSSim(name=f"{dep['metadata']['name']}-{h}", uid=str(uuid.uuid4()), hash=h,
                   revision=d.revision, plan=self.plan(template),
                   template_raw=json.dumps(template).encode(), selector=selector)
        d.sets[h] = rs
        self.rs_owner[(dep["metadata"]["namespace"], rs.name)] = (
            dep["metadata"]["namespace"], dep["metadata"]["name"])
        return rs

    def _scale(self, dep: dict, rs: RSSim, total: int, ready: int, now: float) -> bool:
        """Make ``rs`` have ``total`` pods of which ``ready`` are ready; True if pods came
        or went."""
        ns = dep["metadata"]["namespace"]
        changed = False
        if total != rs.replicas:
            verb = "up" if total > rs.replicas else "down"
            self.events.record(reference(dep), "Normal", "ScalingReplicaSet",
                               f"Scaled {verb} replica set {rs.name} from {rs.replicas} to "
                               f"{total}", DEPLOY_CONTROLLER)
            rs.replicas = total
        # scale down: unready pods first, then the newest
        while len(rs.pods) > total:
            victim = next((n for n in reversed(rs.pods) if not rs.pods[n].ready),
                          next(reversed(rs.pods)))
            del rs.pods[victim]
            self.pod_owner.pop((ns, victim), None)
            self.store.remove(PODS.name, ns, victim, source="controller")
            self._record_rs(dep, rs, "Normal", "SuccessfulDelete", f"Deleted pod: {victim}")
            changed = True
        rs.failure = None
        guarded = bool(quota.quotas(self.store, ns))
        while len(rs.pods) < total:
            name = self._pod_name(rs, ns)
            why = quota.refusal(self.store, ns, self._pod_object(dep, rs, name, None)) \
                if guarded else None
            if why is not None:
                rs.failure = f'pods "{name}" is forbidden: {why}'
                self._record_rs(dep, rs, "Warning", "FailedCreate",
                                f"Error creating: {rs.failure}")
                break
            self._create_pod(dep, rs, name, now)
            changed = True
        if not rs.plan.never_ready:
            for i, pod in enumerate(rs.pods.values()):
                pod.ready = i < ready
        return changed

    def _pod_name(self, rs: RSSim, ns: str) -> str:
        while True:
            name = f"{rs.name}-" + "".join(self._rng.choice(SAFE_ALPHABET) for _ in range(5))
            if name not in rs.pods and self.store.get(PODS.name, ns, name) is None:
                return name

    def _create_pod(self, dep: dict, rs: RSSim, name: str, now: float) -> None:
        ns = dep["metadata"]["namespace"]
        n = next(self._ips)
        sim = PodSim(name=name, uid=str(uuid.uuid4()), created=time.time(),
                     ip=f"10.244.{(n >> 8) & 255}.{n & 255}",
                     scheduled=not rs.plan.unschedulable)
        rs.pods[name] = sim
        self.pod_owner[(ns, name)] = ((ns, dep["metadata"]["name"]), rs.hash)
        self.pods_created += 1
        obj = self._pod_object(dep, rs, name, sim)
        self.store.put(PODS.name, obj, "ADDED", source="controller")
        sim.written = (sim.ready, sim.stage)
        self._record_rs(dep, rs, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        self._pod_events(rs, sim, obj, ns)
        if rs.plan.never_ready:
            sim.next_at = now + self._first_stage()

    def _first_stage(self) -> float:
        return max(0.1, min(self.config.failure_deadline / 2, 5.0))

    # ------------------------------------------------------------------ objects
    def _pod_object(self, dep: dict, rs: RSSim, name: str, sim: Optional[PodSim]) -> dict:
        ns = dep["metadata"]["namespace"]
        tmpl = rs.template   # a fresh copy
        spec = tmpl.get("spec") or {}
        default_pod_spec(spec)
        meta = {"name": name, "generateName": f"{rs.name}-", "namespace": ns,
                "uid": sim.uid if sim else "",
                "creationTimestamp": now_rfc3339(sim.created if sim else None),
                "labels": dict((tmpl.get("metadata") or {}).get("labels") or {})}
        annotations = (tmpl.get("metadata") or {}).get("annotations")
        if annotations:
            meta["annotations"] = dict(annotations)
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                    "name": rs.name, "uid": rs.uid, "controller": True,
                                    "blockOwnerDeletion": True}]
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("tolerations", [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 300}])
        if sim is not None and sim.scheduled:
            spec["nodeName"] = kubelet.NODE_NAME
        obj = {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec}
        if sim is not None:
            obj["status"] = kubelet.pod_status(sim, spec, rs.plan, name, ns)
        return obj

    def _write_pods(self, rs: RSSim, ns: str) -> None:
        for sim in rs.pods.values():
            if sim.written == (sim.ready, sim.stage):
                continue
            cur = self.store.get(PODS.name, ns, sim.name)
            if cur is None:
                continue
            obj = json.loads(cur.raw)
            status = kubelet.pod_status(sim, obj.get("spec") or {}, rs.plan, sim.name, ns)
            if status != obj.get("status"):
                obj["status"] = status
                self.store.put(PODS.name, obj, "MODIFIED", prev=cur, source="controller")
            sim.written = (sim.ready, sim.stage)

    def _write_rs(self, dep: dict, rs: RSSim, desired: int, surge: int) -> None:
        ready = sum(1 for p in rs.pods.values() if p.ready)
        sig = (rs.replicas, len(rs.pods), ready, rs.revision, rs.failure, desired, surge)
        if sig == rs.written:
            return
        ns = dep["metadata"]["namespace"]
        cur = self.store.get(REPLICASETS.name, ns, rs.name)
        annotations = {"deployment.kubernetes.io/desired-replicas": str(desired),
                       "deployment.kubernetes.io/max-replicas": str(desired + surge),
                       "deployment.kubernetes.io/revision": str(rs.revision)}
        if cur is None:
            template = rs.template
            meta = {"name": rs.name, "namespace": ns, "uid": rs.uid,
                    "creationTimestamp": now_rfc3339(), "generation": 1,
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": annotations,
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                         "name": dep["metadata"]["name"],
                                         "uid": dep["metadata"]["uid"], "controller": True,
                                         "blockOwnerDeletion": True}]}
            obj = {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": meta,
                   "spec": {"replicas": rs.replicas, "selector": rs.selector,
                            "template": template}}
            REPLICASETS.default(obj)
        else:
            obj = json.loads(cur.raw)
            meta = obj["metadata"]
            meta["annotations"] = dict(meta.get("annotations") or {}, **annotations)
            if obj["spec"].get("replicas") != rs.replicas:
                obj["spec"]["replicas"] = rs.replicas
                meta["generation"] = meta.get("generation", 1) + 1
        status = {"replicas": len(rs.pods), "fullyLabeledReplicas": len(rs.pods),
                  "readyReplicas": ready, "availableReplicas": ready,
                  "observedGeneration": obj["metadata"].get("generation", 1)}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if rs.failure:
            old = next((c for c in ((cur.obj if cur else {}).get("status") or {}).get(
                "conditions") or [] if c.get("type") == "ReplicaFailure"), None)
            status["conditions"] = [{"type": "ReplicaFailure", "status": "True",
                                     "lastTransitionTime": (old or {}).get(
                                         "lastTransitionTime") or now_rfc3339(),
                                     "reason": "FailedCreate", "message": rs.failure}]
        obj["status"] = status
        if cur is None:
            self.store.put(REPLICASETS.name, obj, "ADDED", source="controller")
        else:
            self.store.put(REPLICASETS.name, obj, "MODIFIED", prev=cur, source="controller")
        rs.written = sig

    # ------------------------------------------------------------------ events
    def _record_rs(self, dep: dict, rs: RSSim, type_: str, reason: str, message: str) -> None:
        ref = {"kind": "ReplicaSet", "namespace": dep["metadata"]["namespace"], "name": rs.name,
               "uid": rs.uid, "apiVersion": "apps/v1", "resourceVersion": ""}
        self.events.record(ref, type_, reason, message, RS_CONTROLLER, aggregate=True)

    def _pod_ref(self, sim: PodSim, ns: str) -> dict:
        return {"kind": "Pod", "namespace": ns, "name": sim.name, "uid": sim.uid,
                "apiVersion": "v1", "resourceVersion": ""}

    def _pod_events(self, rs: RSSim, sim: PodSim, obj: dict, ns: str) -> None:
        """What the scheduler and the kubelet report about a pod's current stage."""
        ref = self._pod_ref(sim, ns)
        plan = rs.plan
        rec = self.events.record
        if plan.unschedulable:
            rec(ref, "Warning", "FailedScheduling", plan.unschedulable, SCHEDULER)
            return
        if sim.stage == 0:
            rec(ref, "Normal", "Scheduled", f"Successfully assigned {ns}/{sim.name} to "
                                            f"{kubelet.NODE_NAME}", SCHEDULER)
        for c in (obj.get("spec") or {}).get("containers") or []:
            cname, image = c.get("name", ""), c.get("image", "")
            path = f"spec.containers{{{cname}}}"

            def kl(type_, reason, message):
                rec(ref, type_, reason, message, KUBELET, kubelet.NODE_NAME, path)
            if cname in plan.pull_failures:
                if sim.stage % 2 == 0:
                    kl("Normal", "Pulling", f'Pulling image "{image}"')
                    kl("Warning", "Failed", f'Failed to pull image "{image}": '
                                            f'{kubelet._pull_message(image)}')
                    kl("Warning", "Failed", "Error: ErrImagePull")
                else:
                    kl("Normal", "BackOff", f'Back-off pulling image "{image}"')
                    kl("Warning", "Failed", "Error: ImagePullBackOff")
            elif cname in plan.crashes:
                if sim.stage == 0 or sim.stage >= 2:
                    kl("Normal", "Pulled", f'Container image "{image}" already present on '
                                           f'machine')
                    kl("Normal", "Created", f"Created container: {cname}")
                    kl("Normal", "Started", f"Started container {cname}")
                if sim.stage >= 1:
                    kl("Warning", "BackOff", f"Back-off restarting failed container {cname} in "
                                             f"pod {sim.name}_{ns}({sim.uid})")
            elif sim.stage == 0:
                kl("Normal", "Pulled", f'Container image "{image}" already present on machine')
                kl("Normal", "Created", f"Created container: {cname}")
                kl("Normal", "Started", f"Started container {cname}")

    def _advance(self, rs: RSSim, sim: PodSim, ns: str, now: float) -> None:
        """A failing pod's next stage: pull retries, crash restarts, scheduling retries."""
        plan = rs.plan
        sim.next_stage()
        if plan.unschedulable:
            sim.next_at = now + kubelet.backoff(sim.stage)
        elif plan.pull_failures:   # odd stages: ImagePullBackOff; even: ErrImagePull again
            sim.next_at = now + (kubelet.backoff((sim.stage + 1) // 2) if sim.stage % 2 else
                                 self._first_stage())
        else:                      # crash: 0 runs, 1 exited, then CrashLoopBackOff restarts
            sim.next_at = now + (self._first_stage() if sim.stage < 2 else
                                 kubelet.backoff(sim.stage - 1))
        cur = self.store.get(PODS.name, ns, sim.name)
        if cur is not None:
            self._pod_events(rs, sim, cur.obj, ns)
