"""Mirror the live Deployment into its row: the worker's half of "Kubernetes is the source of truth".

`deployment_sync` is level-triggered and idempotent: it is given the live object as read from the
API server a moment ago (None when it is gone), derives status, health, counts and drift from it,
and writes the row only when something changed. It never creates rows: a Deployment k8sdm was not
asked for (no row) is not ours to record. Drift is the managed fields where the live object differs
from `applied_config`, the config k8sdm last wrote (deployments_app/config.py), so a change made
with kubectl shows up, and a request still waiting to be applied does not.

Status: INITIATED until the cluster has it; CREATED when it exists and its last
spec change has rolled out (or it is on its first rollout); UPDATING while a later spec change
rolls out (generation > observedGeneration, or updated/available replicas below the desired
count); DELETED when it is gone. Health follows the Deployment's own conditions.

It never adopts: only the successful CREATE's own result binds a uid to the row (`created=True`).
From then on a live object of that name that is not the one created (another uid, or without the
managed-by label and owner annotation) is never mirrored: the row becomes DELETED (the object it
tracked is gone) with `status_reason` saying why. Before its CREATE succeeded, a row mirrors nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from deployments_app.config import DeploymentConfig, ownership_problem
from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from events_app import emit as events
from k8sdm import rows
from users_app.models import User

logger = logging.getLogger(__name__)



def _condition(conditions: list[dict], ctype: str) -> dict:
    for cond in conditions:
        if cond.get("type") == ctype:
            return cond
    return {}


def health_of(live: dict) -> str:
    spec, status = live.get("spec") or {}, live.get("status") or {}
    conditions = status.get("conditions") or []
    progressing = _condition(conditions, "Progressing")
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        return DeploymentHealth.DEGRADED
    if _condition(conditions, "ReplicaFailure").get("status") == "True":
        return DeploymentHealth.DEGRADED
    desired = spec.get("replicas", 1)
    generation = (live.get("metadata") or {}).get("generation")
    if (
        status.get("observedGeneration") == generation
        and status.get("updatedReplicas", 0) == desired
        and status.get("availableReplicas", 0) == desired
        and status.get("replicas", 0) == desired
    ):
        return DeploymentHealth.HEALTHY
    return DeploymentHealth.PROGRESSING


HEALTH_REASON_MAX = 512


def health_reason_of(live: dict, health: str) -> str:
    """Why the deployment is DEGRADED or PROGRESSING, in one line from its conditions ('' when HEALTHY),
    e.g. "ProgressDeadlineExceeded: ReplicaSet "web-abc" has timed out progressing."."""
    if health == DeploymentHealth.HEALTHY:
        return ""
    spec, status = live.get("spec") or {}, live.get("status") or {}
    conditions = status.get("conditions") or []
    failure = _condition(conditions, "ReplicaFailure")
    progressing = _condition(conditions, "Progressing")
    if failure.get("status") == "True":
        reason = f"{failure.get('reason', 'ReplicaFailure')}: {failure.get('message', '')}"
    elif progressing.get("reason") == "ProgressDeadlineExceeded":
        reason = f"ProgressDeadlineExceeded: {progressing.get('message', '')}"
    else:
        desired = spec.get("replicas", 1)
        reason = (f"{status.get('availableReplicas', 0)} of {desired} replicas available, "
                  f"{status.get('updatedReplicas', 0)} updated")
        if progressing.get("reason"):
            reason += f" ({progressing['reason']})"
    return reason.rstrip(": ")[:HEALTH_REASON_MAX]


def status_of(live: dict) -> str:
    spec, status = live.get("spec") or {}, live.get("status") or {}
    generation = (live.get("metadata") or {}).get("generation") or 1
    observed = status.get("observedGeneration") or 0
    desired = spec.get("replicas", 1)
    rolling = observed < generation or min(status.get("updatedReplicas", 0), status.get("availableReplicas", 0)) < desired
    # generation 1 is the first rollout: the Deployment is CREATED, just not healthy yet.
    if generation > 1 and rolling:
        return DeploymentStatus.UPDATING
    return DeploymentStatus.CREATED


def observed_spec_of(live: dict, live_config: DeploymentConfig) -> dict:
    """What the row keeps of the live spec: the config it carries, and any extra containers."""
    observed = live_config.to_dict()
    containers = (((live.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    if len(containers) > 1:
        observed["extra_containers"] = [c.get("name") for c in containers[1:]]
    return observed


def drift_of(desired: dict | None, live_config: DeploymentConfig) -> dict:
    """{field: {"desired": ..., "live": ...}} where the live object differs from a stored config."""
    if not desired:
        return {}  # nothing written yet
    return DeploymentConfig.from_input(desired).drift(live_config)


REDACTED = "<redacted>"


def redacted(drift: dict) -> dict:
    """Drift as it may be logged: env values (secrets, often) replaced, names kept."""
    if "env" not in drift:
        return drift
    hide = lambda env: [{**e, "value": REDACTED} for e in env or []]  # noqa: E731
    return {**drift, "env": {side: hide(values) for side, values in drift["env"].items()}}


def _rv_newer_or_equal(new: str, old: str) -> bool:
    """resourceVersions are opaque, but etcd's (and the emulator's) are integers: use that to
    refuse writing an older read over a newer one; compare nothing if they are not integers."""
    try:
        return int(new) >= int(old)
    except (TypeError, ValueError):
        return True


@dataclass(frozen=True)
class SyncResult:
    changed: bool
    status: str | None = None
    reason: str = ""
    # The row as it stands after the sync (None when there is none), with any `also_select` columns.
    row: Deployment | None = None


def _let_go(row: Deployment, *, reason: str, now) -> SyncResult:
    """The object the row tracked is gone (deleted, or replaced by one that is not ours)."""
    before = events.deployment_state(row)
    row.status = DeploymentStatus.DELETED
    row.status_reason = reason[:512]
    row.health = DeploymentHealth.UNKNOWN
    row.health_reason = ""
    row.ready_replicas = row.updated_replicas = row.available_replicas = 0
    row.drift = {}
    row.last_synced_at = now
    with transaction.atomic(savepoint=False):  # the change and its events' outbox rows commit together
        rows.update(row, _LET_GO_FIELDS)
        events.deployment_changed(before=before, row=row, owner_external_id=row.owner_external_id, reason=reason)
    logger.info("deployment %s: DELETED (%s)", row.key, reason)
    return SyncResult(changed=True, status=row.status, reason=reason, row=row)


_LET_GO_FIELDS = ("status", "status_reason", "health", "health_reason", "ready_replicas", "updated_replicas",
                  "available_replicas", "drift", "last_synced_at")


def deployment_sync(*, namespace: str, name: str, live: dict | None,
                    applied: DeploymentConfig | None = None, created: bool = False,
                    also_select: str = "") -> SyncResult:
    """Write what the cluster says about namespace/name into its row, if it has one.

    `applied` is the config k8sdm has just written (after a successful create or update): it
    becomes the row's `applied_config`, which drift is measured against. Callers hold the
    deployment's lock (deployments_app/locks.py), which serialises every writer of the observed
    fields; the row write touches only the fields that changed, so it can never clobber the desired
    config the API writes. `created`: `live` is what this row's CREATE has just made (its uid
    becomes the row's); otherwise `live` is mirrored only if it is that object.

    `also_select`: more columns (SQL over the row `d`, e.g. "EXISTS (...) AS waiting") read in the
    same statement as the row, under the caller's lock; they are attributes of the returned row,
    so a caller that acts on the row afterwards needs no query of its own."""
    row = next(iter(Deployment.objects.raw(
        f"SELECT {rows.columns(Deployment, 'd')}, u.user_external_id AS owner_external_id"
        f"{', ' + also_select if also_select else ''} FROM {Deployment._meta.db_table} d "
        f"JOIN {User._meta.db_table} u ON u.id = d.owner_id WHERE d.identifier = %s AND d.namespace = %s",
        [name, namespace],
    )), None)
    if row is None:
        return SyncResult(changed=False, reason="not managed by k8sdm (no row)")
    now = timezone.now()
    if live is None:
        if row.status in (DeploymentStatus.DELETED, DeploymentStatus.INITIATED):
            # INITIATED: accepted but not applied yet, so absence is expected.
            return SyncResult(changed=False, status=row.status, reason="absent, as expected", row=row)
        return _let_go(row, reason="the Deployment is gone from the cluster", now=now)

    meta, status = live.get("metadata") or {}, live.get("status") or {}
    if not created:
        if not row.uid and row.status in (DeploymentStatus.INITIATED, DeploymentStatus.DELETED):
            # Its CREATE has not succeeded: whatever has the name is not (yet) ours.
            return SyncResult(changed=False, status=row.status, reason="not created by k8sdm yet", row=row)
        problem = ownership_problem(live, uid=row.uid, owner=row.owner_external_id)
        if problem:
            if row.status == DeploymentStatus.DELETED:
                return SyncResult(changed=False, status=row.status, reason=problem, row=row)
            return _let_go(row, reason=f"not owned by k8sdm: {problem}", now=now)
    rv = meta.get("resourceVersion", "")
    if row.resource_version and row.uid == meta.get("uid") and not _rv_newer_or_equal(rv, row.resource_version):
        return SyncResult(changed=False, status=row.status, reason="older than what is stored", row=row)
    live_config = DeploymentConfig.from_live(live)
    observed = observed_spec_of(live, live_config)
    health = health_of(live)
    fields = {
        "status": status_of(live),
        "health": health,
        "health_reason": health_reason_of(live, health),
        "observed_spec": observed,
        "image": observed["image"][:512],
        "replicas": observed["replicas"],
        "ready_replicas": status.get("readyReplicas", 0),
        "updated_replicas": status.get("updatedReplicas", 0),
        "available_replicas": status.get("availableReplicas", 0),
        "generation": meta.get("generation"),
        "observed_generation": status.get("observedGeneration"),
        "conditions": status.get("conditions") or [],
        "resource_version": rv,
        "uid": meta.get("uid", ""),
        "status_reason": "",
        # Measured against what k8sdm last wrote: a request still pending is not drift.
        "drift": drift_of(applied.to_dict() if applied else row.applied_config, live_config),
    }
    if applied is not None:
        fields["applied_config"] = applied.to_dict()
    changed = [key for key, value in fields.items() if getattr(row, key) != value]
    if not changed:
        return SyncResult(changed=False, status=row.status, reason="unchanged", row=row)
    if "drift" in changed and fields["drift"]:
        logger.warning("drift on %s/%s: %s", namespace, name, sorted(fields["drift"]),
                       extra={"drift": redacted(fields["drift"])})
    before = events.deployment_state(row)
    for key in changed:
        setattr(row, key, fields[key])
    row.last_synced_at = now
    # The change and its events' outbox rows commit together (a reconcile runs outside any other
    # transaction; inside an apply's, this adds no savepoint): a process killed between the two
    # must not leave a transition whose event is never published.
    with transaction.atomic(savepoint=False):
        rows.update(row, [*changed, "last_synced_at"])
        events.deployment_changed(before=before, row=row, owner_external_id=row.owner_external_id)
    return SyncResult(changed=True, status=row.status, row=row)


def deployment_mark_gone(*, deployment_id: int, reason: str = "the CREATE request failed") -> None:
    """After a failed CREATE, the Deployment never existed: free the identifier."""
    updated = Deployment.objects.filter(pk=deployment_id, status=DeploymentStatus.INITIATED).update(
        status=DeploymentStatus.DELETED, status_reason=reason[:512], health=DeploymentHealth.UNKNOWN,
        last_synced_at=timezone.now()
    )
    row = Deployment.objects.select_related("owner").filter(pk=deployment_id).first() if updated == 1 else None
    if row is not None:
        before = {**events.deployment_state(row), "status": DeploymentStatus.INITIATED}
        events.deployment_changed(before=before, row=row, owner_external_id=row.owner.user_external_id,
                                  reason=reason)
