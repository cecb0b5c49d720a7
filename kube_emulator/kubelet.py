"""What a node would do with a pod: schedule it, pull its images, run (or crash) its
containers, and write their logs. Nothing runs: the outcome of each container is chosen
by conventions on its image (see README.md), and the pod's ``.status`` and its log lines
are computed from a small per-pod model (``PodSim``).

Conventions, checked in this order for a pod:
* unschedulable: the pod's summed CPU or memory requests exceed the node's allocatable
  (``ControllerConfig.node_cpu`` / ``node_memory``) -> Pending, ``FailedScheduling``;
* image pull failure: a container image with the tag ``fail`` or the registry host
  ``fail.invalid`` -> ``ErrImagePull`` then ``ImagePullBackOff``;
* crash: a container image with the tag ``crash`` (exit code 1) or ``crash-N`` (exit code
  N, 0-255) -> it exits, then ``CrashLoopBackOff`` with growing ``restartCount``.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from . import quantity
from .clock import now_rfc3339
from .resources import pod_requests, qos_class

NODE_NAME = "kube-emulator-node"
HOST_IP = "10.0.0.10"
LOG_TICK = 5.0            # seconds between a running container's synthetic log lines
BACKOFF_BASE = 10.0       # kubelet's back-off: 10 s, doubling, at most 300 s
BACKOFF_CAP = 300.0


def image_fails(image: str) -> bool:
    """The failing-image convention: tag ``fail`` or registry host ``fail.invalid``."""
    if not isinstance(image, str):
        return False
    ref = image.split("@", 1)[0]
    first, sep, _ = ref.partition("/")
    if sep and first.split(":", 1)[0] == "fail.invalid":
        return True
    return _tag(ref) == "fail"


def crash_exit_code(image: str) -> Optional[int]:
    """The crash convention: tag ``crash`` exits 1, ``crash-N`` exits N (0..255)."""
    if not isinstance(image, str):
        return None
    tag = _tag(image.split("@", 1)[0])
    if tag == "crash":
        return 1
    if tag and tag.startswith("crash-") and tag[6:].isdigit() and int(tag[6:]) <= 255:
        return int(tag[6:])
    return None


def _tag(ref: str) -> Optional[str]:
    last = ref.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def backoff(n: int) -> float:
    """The n-th (1-based) back-off delay of the kubelet."""
    return min(BACKOFF_BASE * 2 ** max(0, n - 1), BACKOFF_CAP)


@dataclass
class PodPlan:
    """What will happen to pods of one template (computed once per ReplicaSet)."""
    unschedulable: Optional[str] = None          # FailedScheduling message
    pull_failures: dict = field(default_factory=dict)   # container name -> image
    crashes: dict = field(default_factory=dict)          # container name -> exit code

    @property
    def never_ready(self) -> bool:
        return bool(self.unschedulable or self.pull_failures or self.crashes)


def plan_for(spec: dict, node_cpu: Fraction, node_memory: Fraction) -> PodPlan:
    plan = PodPlan()
    req = pod_requests(spec)
    short = [name for name, cap in (("cpu", node_cpu), ("memory", node_memory))
             if req.get(name, 0) > cap]
    if short:
        plan.unschedulable = (
            "0/1 nodes are available: " + ", ".join(f"1 Insufficient {n}" for n in short)
            + ". preemption: 0/1 nodes are available: 1 No preemption victims found for "
              "incoming pod.")
    for fld in ("initContainers", "containers"):
        for c in spec.get(fld) or []:
            if not isinstance(c, dict):
                continue
            image = c.get("image", "")
            if image_fails(image):
                plan.pull_failures[c.get("name")] = image
            elif crash_exit_code(image) is not None:
                plan.crashes[c.get("name")] = crash_exit_code(image)
    return plan


def template_fails(template: dict, node_cpu: Fraction = Fraction(10**6),
                   node_memory: Fraction = Fraction(2**80)) -> bool:
    """Whether pods of this template never become ready."""
    return plan_for((template or {}).get("spec") or {}, node_cpu, node_memory).never_ready


@dataclass
class PodSim:
    """The model of one pod the simulated ReplicaSet controller created."""
    name: str
    uid: str
    created: float                    # time.time()
    ip: str
    ready: bool = False               # healthy pods: set by the Deployment model
    stage: int = 0                    # failing pods: how far their story has gone
    next_at: Optional[float] = None   # monotonic time of the next stage
    stage_at: float = 0.0             # time.time() the current stage began
    prev_stage_at: float = 0.0        # ... and the one before
    scheduled: bool = True
    written: tuple = ()               # (ready, stage) the stored pod last showed

    def __post_init__(self):
        self.stage_at = self.prev_stage_at = self.created

    def next_stage(self) -> None:
        self.stage += 1
        self.prev_stage_at, self.stage_at = self.stage_at, time.time()


def container_id(pod_uid: str, container: str, instance: int) -> str:
    return "containerd://" + hashlib.sha256(
        f"{pod_uid}/{container}/{instance}".encode()).hexdigest()


def image_id(image: str) -> str:
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: -(len(last) - last.index(":"))]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    return f"{repo}@sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _pull_message(image: str) -> str:
    ref = image if "/" in image.split(":", 1)[0] else f"docker.io/library/{image}"
    return (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
            f'failed to resolve reference "{ref}": {ref}: not found')


def pod_status(sim: PodSim, spec: dict, plan: PodPlan, pod_name: str, ns: str) -> dict:
    """``.status`` of the pod as the kubelet would report it now."""
    created = now_rfc3339(sim.created)
    status: dict = {"phase": "Pending"}
    if plan.unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "status": "False",
                                 "lastProbeTime": None, "lastTransitionTime": created,
                                 "reason": "Unschedulable", "message": plan.unschedulable}]
        status["qosClass"] = qos_class(spec)
        return status
    statuses = []
    all_started, all_ready = True, True
    unready = []
    for c in spec.get("containers") or []:
        name = c.get("name", "")
        image = c.get("image", "")
        cs = {"name": name, "image": image, "imageID": "", "ready": False, "restartCount": 0,
              "started": False, "state": {}, "lastState": {}}
        if name in plan.pull_failures:
            reason = "ErrImagePull" if sim.stage % 2 == 0 else "ImagePullBackOff"
            message = _pull_message(image) if reason == "ErrImagePull" else \
                f'Back-off pulling image "{image}": ErrImagePull: {_pull_message(image)}'
            cs["state"] = {"waiting": {"reason": reason, "message": message}}
            all_started = False
        elif name in plan.crashes:
            code = plan.crashes[name]
            reason = "Completed" if code == 0 else "Error"
            cs["imageID"] = image_id(image)
            if sim.stage == 0:
                cs["state"] = {"running": {"startedAt": now_rfc3339(sim.created)}}
                cs.update(started=True, containerID=container_id(sim.uid, name, 0))
            else:
                # run number `restarts` began with the previous stage and ended with this one
                restarts = sim.stage - 1
                terminated = {"exitCode": code, "reason": reason,
                              "startedAt": now_rfc3339(sim.prev_stage_at),
                              "finishedAt": now_rfc3339(sim.stage_at),
                              "containerID": container_id(sim.uid, name, restarts)}
                cs["restartCount"] = restarts
                cs["containerID"] = terminated["containerID"]
                if sim.stage == 1:
                    cs["state"] = {"terminated": terminated}
                else:
                    cs["state"] = {"waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {int(backoff(restarts))}s restarting failed "
                                   f"container={name} pod={pod_name}_{ns}({sim.uid})"}}
                    cs["lastState"] = {"terminated": terminated}
        elif sim.ready or plan.never_ready:
            cs["imageID"] = image_id(image)
            cs["state"] = {"running": {"startedAt": now_rfc3339(sim.created)}}
            cs.update(ready=True, started=True, containerID=container_id(sim.uid, name, 0))
        else:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
            all_started = False
        if not cs["ready"]:
            all_ready = False
            unready.append(name)
        statuses.append(cs)
    if all_started or plan.crashes:
        status["phase"] = "Running"
    ts = now_rfc3339(sim.stage_at)
    ready_cond = ("True", None, None) if all_ready else \
        ("False", "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
    conds = [{"type": "PodReadyToStartContainers", "status": "True"},
             {"type": "Initialized", "status": "True"}]
    for t in ("Ready", "ContainersReady"):
        cond = {"type": t, "status": ready_cond[0]}
        if ready_cond[1]:
            cond.update(reason=ready_cond[1], message=ready_cond[2])
        conds.append(cond)
    conds.append({"type": "PodScheduled", "status": "True"})
    for cond in conds:
        cond.setdefault("lastProbeTime", None)
        cond["lastTransitionTime"] = created if cond["type"] == "PodScheduled" else ts
    status.update(conditions=conds, hostIP=HOST_IP, hostIPs=[{"ip": HOST_IP}], podIP=sim.ip,
                  podIPs=[{"ip": sim.ip}], startTime=created, containerStatuses=statuses,
                  qosClass=qos_class(spec))
    return status


# ----------------------------------------------------------------------------- logs
def log_lines(pod: dict, container: str, previous: bool, now: float) -> Optional[list]:
    """Synthetic ``(time, text)`` lines of a container instance, from the pod's status, or
    None when that instance never ran. Deterministic: the same pod gives the same lines."""
    from .clock import parse_rfc3339
    st = next((cs for cs in (pod.get("status") or {}).get("containerStatuses") or []
               if cs.get("name") == container), None)
    if st is None:
        return None
    state = st.get("lastState") if previous else st.get("state")
    if not previous and not (state or {}).get("running") and not (state or {}).get("terminated"):
        state = st.get("lastState")  # CrashLoopBackOff: the last run's logs
    state = state or {}
    run = state.get("running") or state.get("terminated")
    if not run:
        return None
    begin = parse_rfc3339(run.get("startedAt")) or now
    image = st.get("image", "")
    spec = next((c for c in (pod.get("spec") or {}).get("containers") or []
                 if c.get("name") == container), {})
    pod_name = pod["metadata"]["name"]
    lines = [(begin, f"kube-emulator: starting container {container} (image {image}) in pod "
                     f"{pod['metadata'].get('namespace', '')}/{pod_name}"),
             (begin, f"{container}: {len(spec.get('env') or [])} environment variables set")]
    ports = [p.get("containerPort") for p in spec.get("ports") or [] if isinstance(p, dict)]
    if "terminated" in state:
        t = state["terminated"]
        end = parse_rfc3339(t.get("finishedAt")) or begin
        code = t.get("exitCode", 0)
        lines.append((end, f"{container}: fatal: simulated crash (image {image})" if code else
                      f"{container}: work done"))
        lines.append((end, f"{container}: exiting with code {code}"))
        return lines
    lines.append((begin, f"{container}: listening on port {ports[0]}" if ports else
                  f"{container}: ready"))
    ticks = int((now - begin) // LOG_TICK)
    for k in range(max(1, ticks - 999), ticks + 1):
        lines.append((begin + k * LOG_TICK, f"{container}: heartbeat {k}: ok"))
    return lines


def next_tick(pod: dict, container: str, after: float) -> Optional[tuple[float, str]]:
    """The running container's next heartbeat line after time ``after``."""
    from .clock import parse_rfc3339
    st = next((cs for cs in (pod.get("status") or {}).get("containerStatuses") or []
               if cs.get("name") == container), None)
    running = ((st or {}).get("state") or {}).get("running")
    if not running:
        return None
    begin = parse_rfc3339(running.get("startedAt")) or after
    k = int((after - begin) // LOG_TICK) + 1
    return begin + k * LOG_TICK, f"{container}: heartbeat {k}: ok"


def parse_node_quantity(value, default: str) -> Fraction:
    q = quantity.parse(value if value is not None else default)
    if q is None:
        raise ValueError(f"not a quantity: {value!r}")
    return q
