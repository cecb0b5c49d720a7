"""A simulated Deployment controller.

It does not create Pods or ReplicaSets; it keeps, per Deployment, a tiny model of the
"new" and "old" ReplicaSets and steps it every ``step_delay`` seconds, writing
``.status`` the way kube-controller-manager would. See README.md for the failing-image
convention.
"""
from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import math
import time
from dataclasses import dataclass, field
from typing import Optional

from .handlers import write_status
from .resources import DEPLOYMENTS
from .store import now_rfc3339

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict) -> str:
    h = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).digest()
    n = int.from_bytes(h[:8], "big")
    out = []
    for _ in range(10):
        n, r = divmod(n, len(SAFE_ALPHABET))
        out.append(SAFE_ALPHABET[r])
    return "".join(out)


def image_fails(image: str) -> bool:
    """The failing-image convention: tag ``fail`` or registry host ``fail.invalid``."""
    if not isinstance(image, str):
        return False
    ref = image.split("@", 1)[0]
    first, sep, rest = ref.partition("/")
    if sep and first.split(":", 1)[0] == "fail.invalid":
        return True
    last = ref.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] == "fail"


def template_fails(template: dict) -> bool:
    spec = (template or {}).get("spec") or {}
    for fld in ("initContainers", "containers"):
        for c in spec.get(fld) or []:
            if isinstance(c, dict) and image_fails(c.get("image", "")):
                return True
    return False


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

    def configure(self, paused=None, step_delay=None, failure_deadline=None) -> None:
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
                "tracked": len(self.states), "pending": len(self.due),
                "status_writes": self.status_writes}

    # ------------------------------------------------------------- scheduling
    def _on_event(self, ev, source: str) -> None:
        if ev.res != "deployments":
            return
        key = (ev.ns, ev.name)
        if ev.type == "DELETED":
            self.states.pop(key, None)
            self.due.pop(key, None)
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
        if self.config.paused or not self.heap:
            await self.wake.wait()
            return
        delay = self.heap[0][0] - time.monotonic()
        if delay > 0:
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
                st.failing = template_fails(tmpl)
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
        status["conditions"] = conds
        if status != old_status:
            write_status(self.store, DEPLOYMENTS, key[0], key[1], status)
            self.status_writes += 1
        if again:
            delay = self.config.step_delay
            if st.failing and n > 0:
                remaining = st.progress_start + self.config.failure_deadline - time.monotonic()
                delay = max(0.0, min(max(delay, 0.05), remaining)) if remaining > 0 else 0.0
            self._schedule(key, delay)

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
