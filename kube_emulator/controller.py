"""A simulated Deployment controller.

It keeps, per Deployment, a small model of the "new" and "old" ReplicaSets and steps it
every ``step_delay`` seconds, writing ``.status`` the way kube-controller-manager would;
``workloads.Workloads`` makes the ReplicaSets, Pods and Events of the cluster follow the
model. See README.md for the conventions that make pods fail.
"""
from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import math
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from . import quota
from .clock import now_rfc3339
from .events import EventRecorder
from .handlers import write_status
from .kubelet import parse_node_quantity
from .resources import DEPLOYMENTS, PODS, REPLICASETS, RESOURCEQUOTAS
from .workloads import SAFE_ALPHABET, Workloads


def template_hash(template: dict) -> str:
    h = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).digest()
    n = int.from_bytes(h[:8], "big")
    out = []
    for _ in range(10):
        n, r = divmod(n, len(SAFE_ALPHABET))
        out.append(SAFE_ALPHABET[r])
    return "".join(out)


def _int_or_percent(value, total: int, round_up: bool) -> int:
    if value is None:
        value = "25%"
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        try:
            pct = int(s[:-1])
        except ValueError:
            return 0
        x = total * pct / 100
        return math.ceil(x) if round_up else math.floor(x)
    try:
        return int(s)
    except ValueError:
        return 0


@dataclass
class RolloutState:
    uid: str
    hash: Optional[str] = None
    new_total: int = 0
    new_avail: int = 0
    old_avail: int = 0
    observed: int = 0
    failing: bool = False
    progress_start: float = 0.0
    done: bool = False
    timed_out: bool = False


@dataclass
class ControllerConfig:
    step_delay: float = 0.05
    failure_deadline: float = 1.0
    paused: bool = False
    node_cpu: Fraction = Fraction(4)            # the one node's allocatable CPU ...
    node_memory: Fraction = Fraction(16 * 2**30)  # ... and memory (pods above: unschedulable)
    event_ttl: float = 3600.0


class DeploymentController:
    def __init__(self, store, config: ControllerConfig | None = None):
        self.store = store
        self.config = config or ControllerConfig()
        self.states: dict[tuple, RolloutState] = {}
        self.heap: list = []
        self.due: dict[tuple, float] = {}
        self.wake: Optional[asyncio.Event] = None
        self.task: Optional[asyncio.Task] = None
        self.status_writes = 0
        self.events = EventRecorder(store, self.config.event_ttl)
        self.workloads = Workloads(store, self.events, self.config)
        self.blocked: set[tuple] = set()        # Deployments whose pods a quota refuses
        self.quota_dirty: set[str] = set()      # namespaces whose quota status to refresh
        self.store.listeners.append(self._on_event)

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass

    def reset(self) -> None:
        self.states.clear()
        self.heap.clear()
        self.due.clear()
        self.workloads.reset()
        self.events.clear()
        self.blocked.clear()
        self.quota_dirty.clear()

    def configure(self, paused=None, step_delay=None, failure_deadline=None, node_cpu=None,
                  node_memory=None) -> None:
        if node_cpu is not None:
            self.config.node_cpu = parse_node_quantity(node_cpu, "4")
        if node_memory is not None:
            self.config.node_memory = parse_node_quantity(node_memory, "16Gi")
        if step_delay is not None:
            self.config.step_delay = float(step_delay)
        if failure_deadline is not None:
            self.config.failure_deadline = float(failure_deadline)
        if paused is not None:
            self.config.paused = bool(paused)
        if self.wake:
            self.wake.set()

    def info(self) -> dict:
        return {"paused": self.config.paused, "step_delay": self.config.step_delay,
                "failure_deadline": self.config.failure_deadline,
                "node_cpu": str(self.config.node_cpu), "node_memory": str(self.config.node_memory),
                "tracked": len(self.states), "pending": len(self.due),
                "status_writes": self.status_writes,
                "pods_created": self.workloads.pods_created,
                "events_recorded": self.events.recorded}

    def adopt(self) -> None:
        """After a restart from saved objects: rebuild the model of every Deployment from
        its status, ReplicaSets and Pods (as a restarted kube-controller-manager would
        from the API), and look at each once."""
        self.events.rebuild()
        now = time.monotonic()
        for stored in list(self.store.iter_objects(DEPLOYMENTS.name, None)):
            obj = stored.obj
            meta, spec = obj["metadata"], obj.get("spec") or {}
            status = obj.get("status") or {}
            tmpl = spec.get("template") or {}
            h = template_hash(tmpl)
            current = self.workloads.adopt(obj)
            st = RolloutState(uid=meta.get("uid"))
            st.observed = status.get("observedGeneration", 0)
            if h in current:
                st.hash = h
                st.new_total = status.get("updatedReplicas", 0)
                st.new_avail = min(st.new_total, status.get("availableReplicas", 0))
                st.old_avail = max(0, status.get("availableReplicas", 0) - st.new_avail)
            st.failing = self.workloads.plan(tmpl).never_ready
            prog = next((c for c in status.get("conditions") or []
                         if c.get("type") == "Progressing"), {})
            st.timed_out = prog.get("reason") == "ProgressDeadlineExceeded"
            st.done = st.timed_out or prog.get("reason") == "NewReplicaSetAvailable"
            st.progress_start = now - (self.config.failure_deadline if st.timed_out else 0.0)
            key = (meta["namespace"], meta["name"])
            self.states[key] = st
            self._schedule(key, self.config.step_delay)

    # ------------------------------------------------------------- scheduling
    def _on_event(self, ev, source: str) -> None:
        if ev.res != DEPLOYMENTS.name:
            self._on_other_event(ev, source)
            return
        key = (ev.ns, ev.name)
        if ev.type == "DELETED":
            self.states.pop(key, None)
            self.due.pop(key, None)
            self.blocked.discard(key)
            self.workloads.forget(key)
            return
        if source == "controller":
            return
        gen = ev.cur.obj["metadata"].get("generation", 1)
        st = self.states.get(key)
        uid = ev.cur.obj["metadata"].get("uid")
        if st is not None and st.uid != uid:
            st = None
            self.states.pop(key, None)
        if st is None or st.observed < gen or not st.done:
            self._schedule(key, self.config.step_delay)

    def _on_other_event(self, ev, source: str) -> None:
        if ev.res in (PODS.name, RESOURCEQUOTAS.name) and source not in ("controller", "quota") \
                and self.store.by_ns[RESOURCEQUOTAS.name].get(ev.ns):
            self.quota_dirty.add(ev.ns)
            if self.wake:
                self.wake.set()
        if ev.res == RESOURCEQUOTAS.name or (ev.res == PODS.name and ev.type == "DELETED"):
            for key in [k for k in self.blocked if k[0] == ev.ns]:
                self._schedule(key, 0.0)   # a quota changed or freed room: try again
        if ev.type == "DELETED" and source != "controller" and \
                ev.res in (PODS.name, REPLICASETS.name):
            key = self.workloads.lost(ev.res, ev.ns, ev.name)
            if key is not None and key in self.states:
                self._schedule(key, self.config.step_delay)

    def _schedule(self, key, delay: float) -> None:
        when = time.monotonic() + delay
        cur = self.due.get(key)
        if cur is not None and cur <= when:
            return
        self.due[key] = when
        heapq.heappush(self.heap, (when, key))
        if self.wake:
            self.wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._loop_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - keep the controller alive
                import logging
                logging.getLogger("kube_emulator").exception("controller step failed")
                await asyncio.sleep(0.1)

    async def _loop_once(self) -> None:
        self.wake.clear()
        expire_at = self.events.expire()
        while self.quota_dirty:
            quota.refresh_status(self.store, self.quota_dirty.pop())
        delay = None if self.config.paused or not self.heap else \
            self.heap[0][0] - time.monotonic()
        if expire_at is not None:
            delay = max(0.0, min(delay if delay is not None else 3600.0,
                                 expire_at - time.monotonic()) + 0.01)
        if delay is None:
            await self.wake.wait()
            return
        if delay > 0 or self.config.paused:
            try:
                await asyncio.wait_for(self.wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            return
        now = time.monotonic()
        while self.heap and self.heap[0][0] <= now and not self.config.paused:
            when, key = heapq.heappop(self.heap)
            if self.due.get(key) != when:
                continue
            del self.due[key]
            self._step(key)
            await asyncio.sleep(0) if len(self.heap) % 256 == 0 else None

    # ------------------------------------------------------------- the model
    def _step(self, key) -> None:
        stored = self.store.get("deployments", *key)
        if stored is None:
            self.states.pop(key, None)
            return
        obj = stored.obj
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        n = spec.get("replicas", 1)
        gen = meta.get("generation", 1)
        name = meta["name"]
        st = self.states.get(key)
        if st is None or st.uid != meta.get("uid"):
            st = RolloutState(uid=meta.get("uid"))
            self.states[key] = st
        tmpl = spec.get("template") or {}
        h = template_hash(tmpl)
        rs_name = f"{name}-{h}"
        now = time.monotonic()
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        max_unavail = n if recreate else _int_or_percent(ru.get("maxUnavailable"), n, False)
        max_surge = 0 if recreate else _int_or_percent(ru.get("maxSurge"), n, True)
        if max_unavail == 0 and max_surge == 0:
            max_surge = 1
        progressing = None  # (status, reason, message)
        again = True

        if spec.get("paused"):
            st.observed = gen
            progressing = ("Unknown", "DeploymentPaused", "Deployment is paused")
            again = False
        elif st.observed < gen or st.hash != h:
            st.observed = gen
            st.done = st.timed_out = False
            st.progress_start = now
            if st.hash != h:
                st.old_avail = min(st.old_avail + st.new_avail, max(n, 0)) if st.hash else 0
                st.hash = h
                st.failing = self.workloads.plan(tmpl).never_ready
                st.new_total = st.new_avail = 0
                st.new_total = min(n, max(1, max_surge if st.old_avail else math.ceil(n / 2)))
                if st.failing and not st.old_avail:
                    st.new_total = n
                progressing = ("True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
            else:
                progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
                if st.new_total > n:
                    st.new_total = n
                    st.new_avail = min(st.new_avail, n)
        elif st.failing and n > 0:
            if st.old_avail:
                st.new_total = min(n, max(1, max_surge))
                st.old_avail = min(st.old_avail, n)
            else:
                st.new_total = n
            st.new_avail = 0
            if now - st.progress_start >= self.config.failure_deadline:
                progressing = ("False", "ProgressDeadlineExceeded",
                               f'ReplicaSet "{rs_name}" has timed out progressing.')
                st.timed_out = True
                st.done = True
                again = False
            else:
                progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        else:
            step = max(1, math.ceil(n / 2))
            if st.new_avail < st.new_total:
                st.new_avail = st.new_total
            elif st.new_total < n:
                st.new_total = min(n, st.new_total + step)
            elif st.new_total > n:
                st.new_total = st.new_avail = n
            st.old_avail = max(0, min(st.old_avail, n - st.new_avail))
            if st.new_total == st.new_avail == n and st.old_avail == 0:
                progressing = ("True", "NewReplicaSetAvailable",
                               f'ReplicaSet "{rs_name}" has successfully progressed.')
                st.done = True
                again = False
            else:
                progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')

        failure = None
        if st.hash is not None:
            synced = self.workloads.sync(obj, st.hash, st.new_total, st.new_avail, st.old_avail,
                                         max_surge)
            failure = synced.failure
            if failure is not None:      # a quota refuses pods: fewer than the model wanted
                st.new_total = synced.created
                st.new_avail = min(st.new_avail, synced.created)
                self.blocked.add(key)
                st.done = False
                if now - st.progress_start >= self.config.failure_deadline:
                    progressing = ("False", "ProgressDeadlineExceeded",
                                   f'ReplicaSet "{rs_name}" has timed out progressing.')
                    st.timed_out = st.done = True
                    again = False
                else:
                    progressing = ("True", "ReplicaSetUpdated",
                                   f'ReplicaSet "{rs_name}" is progressing.')
                    again = True
            else:
                self.blocked.discard(key)
            pod_next = synced.next_at
        else:
            pod_next = None
        available = st.new_avail + st.old_avail
        total = st.new_total + st.old_avail
        old_status = obj.get("status") or {}
        status: dict = {}
        if st.observed:
            status["observedGeneration"] = st.observed
        if total:
            status["replicas"] = total
        if st.new_total:
            status["updatedReplicas"] = st.new_total
        if available:
            status["readyReplicas"] = available
            status["availableReplicas"] = available
        if total - available > 0:
            status["unavailableReplicas"] = total - available
        min_avail = max(0, n - max_unavail)
        if available >= min_avail:
            avail_cond = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            avail_cond = ("False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.")
        old_conds = {c.get("type"): c for c in old_status.get("conditions") or []
                     if isinstance(c, dict)}
        ts = now_rfc3339()
        conds = [self._cond("Available", avail_cond, old_conds.get("Available"), ts)]
        prog = progressing or (old_conds.get("Progressing") and (
            old_conds["Progressing"]["status"], old_conds["Progressing"].get("reason"),
            old_conds["Progressing"].get("message")))
        if prog:
            conds.append(self._cond("Progressing", prog, old_conds.get("Progressing"), ts))
        if failure is not None:
            conds.append(self._cond("ReplicaFailure", ("True", "FailedCreate", failure),
                                    old_conds.get("ReplicaFailure"), ts))
        status["conditions"] = conds
        if status != old_status:
            write_status(self.store, DEPLOYMENTS, key[0], key[1], status)
            self.status_writes += 1
        if again:
            delay = self.config.step_delay
            if (st.failing or failure is not None) and n > 0:
                remaining = st.progress_start + self.config.failure_deadline - time.monotonic()
                delay = max(0.0, min(max(delay, 0.05), remaining)) if remaining > 0 else 0.0
            self._schedule(key, delay)
        elif pod_next is not None:
            self._schedule(key, max(0.0, pod_next - time.monotonic()))

    @staticmethod
    def _cond(type_: str, val: tuple, old: Optional[dict], ts: str) -> dict:
        status, reason, message = val
        if old and old.get("status") == status and old.get("reason") == reason \
                and old.get("message") == message:
            return old
        transition = ts
        if old and old.get("status") == status:
            transition = old.get("lastTransitionTime", ts)
        return {"type": type_, "status": status, "lastUpdateTime": ts,
                "lastTransitionTime": transition, "reason": reason, "message": message}
