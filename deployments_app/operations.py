"""The worker's services for deployments: write a config to the cluster, and reconcile a row with
the live object. The API's writes are in deployments_app/services.py.

Callers hold the deployment's lock (deployments_app/locks.py) around these, except
`deployment_reconcile`, which takes it itself. Kubernetes errors are raised as `K8sError`
(deployments_app/k8s.py), after the rules that make a write idempotent:
- create: AlreadyExists of an object this same request created (a retry after a crash) is success;
  any other existing object is refused (409 AlreadyExists, with the server's message);
- update: Conflict (a stale resourceVersion) re-reads and retries, up to K8SDM_CONFLICT_RETRIES;
  a missing object is 404 NotFound;
- delete: NotFound is success.

Ownership is checked at every write, not assumed: before an update or a delete the live object
must be the one the row's CREATE made (`ownership_problem`: the stored uid, the managed-by label,
the owner annotation), else `NotOwned` and nothing is written. The update PUTs the checked object
(its uid and resourceVersion, so a swap in between is a 409); the delete sends
`preconditions: {uid, resourceVersion}`, so a swapped object can never be deleted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from deployments_app import k8s, locks
from deployments_app.config import (
    OWNER_ANNOTATION,
    DeploymentConfig,
    is_managed,
    last_request_of,
    ownership_problem,
)
from deployments_app.k8s import K8sError
from deployments_app.models import Deployment
from deployments_app.sync import SyncResult, deployment_sync
from k8sdm import backoff

logger = logging.getLogger(__name__)


class NotOwned(Exception):
    """The live object is not the one k8sdm created for the row: nothing was written to it.
    `live` is the object as read (for the sync that then lets go of it)."""

    def __init__(self, message: str, *, live: dict | None = None):
        super().__init__(message)
        self.live = live


def deployment_create_in_cluster(*, config: DeploymentConfig, owner: str, request_pk: int) -> dict:
    """Create the Deployment for `config` as request `request_pk`; returns the live object."""
    try:
        return k8s.create_deployment(config.to_manifest(owner=owner, request_pk=request_pk))
    except K8sError as exc:
        if not exc.already_exists:
            raise
        live = k8s.get_deployment(config.namespace, config.identifier)
        annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
        if (live is not None and is_managed(live) and last_request_of(live) == str(request_pk)
                and annotations.get(OWNER_ANNOTATION) == owner):
            # Our own create from an earlier attempt (the worker died before recording it).
            return live
        raise K8sError(
            status=409,
            reason="AlreadyExists",
            message=f"a Deployment {config.namespace}/{config.identifier} already exists in the cluster and was not "
            f"created by this request ({exc.message})",
        ) from None


def _check_owned(live: dict, *, uid: str, owner: str) -> None:
    problem = ownership_problem(live, uid=uid, owner=owner)
    if problem:
        raise NotOwned(f"not owned by k8sdm: {problem}; nothing was changed", live=live)


def deployment_update_in_cluster(*, config: DeploymentConfig, owner: str, request_pk: int, uid: str,
                                 on_conflict=None) -> dict:
    """Lay `config` over the live object, if it is the one k8sdm created (`uid`), and PUT it with
    the uid and resourceVersion it was read at; returns the live object. `on_conflict()` is called
    before each re-read (for metrics)."""
    retries = settings.K8SDM_CONFLICT_RETRIES
    for attempt in range(retries):
        live = k8s.get_deployment(config.namespace, config.identifier)
        if live is None:
            raise K8sError(
                status=404, reason="NotFound",
                message=f"Deployment {config.namespace}/{config.identifier} does not exist in the cluster",
            )
        _check_owned(live, uid=uid, owner=owner)
        try:
            return k8s.replace_deployment(config.apply_to_live(live, owner=owner, request_pk=request_pk))
        except K8sError as exc:
            if not exc.conflict:
                raise
            if on_conflict:
                on_conflict()
            logger.info("conflict updating %s/%s: re-reading", config.namespace, config.identifier)
            # The controller writes status while a rollout runs; a short jittered pause de-syncs us.
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    raise K8sError(status=409, reason="Conflict", message=f"gave up after {retries} conflicting concurrent changes")


def deployment_delete_in_cluster(*, namespace: str, name: str, uid: str, owner: str) -> None:
    """Delete the object k8sdm created (`uid`), if it is still there, with uid and resourceVersion
    preconditions; gone already is success; a conflicting precondition re-reads and re-checks."""
    retries = settings.K8SDM_CONFLICT_RETRIES
    for attempt in range(retries):
        live = k8s.get_deployment(namespace, name)
        if live is None:
            return  # already gone is what we wanted
        _check_owned(live, uid=uid, owner=owner)
        try:
            k8s.delete_deployment(namespace, name, uid=uid, resource_version=live["metadata"]["resourceVersion"])
            return
        except K8sError as exc:
            if exc.not_found:
                return
            if not exc.conflict:
                raise
            logger.info("precondition failed deleting %s/%s: re-reading", namespace, name)
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    raise K8sError(status=409, reason="Conflict", message=f"gave up after {retries} conflicting concurrent changes")


# --- reconciling a row with the cluster ----------------------------------------------------------


@dataclass(frozen=True)
class Reconciled:
    """How a reconcile ended: `done`, or `retry_in` seconds (transient trouble), or `failed` for good."""

    done: bool = False
    retry_in: float = 0.0
    failed: bool = False
    reason: str = ""
    changed: bool = False
    row: Deployment | None = None  # the row after a sync that read it (deployment_sync's `row`)


def deployment_reconcile(*, namespace: str, name: str, resource_version: str = "",
                         stop: threading.Event | None = None, heartbeat=None, also_select: str = "") -> Reconciled:
    """Read the live Deployment namespace/name and mirror it into its row (404 = DELETED).

    The read and the write happen under the deployment's lock, so a reconcile can never write a
    read taken before a concurrent apply over that apply's newer result. A Deployment without a row
    is not k8sdm's: nothing is read or written. When the event's `resource_version` is the one the
    row already records (the worker wrote that very version, or a resync lists an unchanged
    object), the row already mirrors it: nothing is locked, read or written (one SELECT).
    `also_select`: passed to `deployment_sync` (columns read with the row, under the lock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, resource_version <> '' AND resource_version = %s, "
            f"CASE WHEN resource_version <> '' AND resource_version = %s THEN false "
            f"ELSE pg_try_advisory_lock({locks.lock_key_sql('id')}) END "
            f"FROM {Deployment._meta.db_table} WHERE identifier = %s AND namespace = %s",
            [resource_version, resource_version, name, namespace],
        )
        row = cursor.fetchone()
    if row is None:
        return Reconciled(done=True, reason="not managed by k8sdm (no row)")
    deployment_id, recorded, locked = row
    if recorded:
        return Reconciled(done=True, reason=f"resourceVersion {resource_version} already recorded")
    if not locked and not locks.acquire(deployment_id, wait=2.0, stop=stop, heartbeat=heartbeat):
        return Reconciled(retry_in=0.5, reason="deployment busy: a request is being applied")
    try:
        try:
            live = k8s.get_deployment(namespace, name)
        except K8sError as exc:
            if exc.transient:
                delay = backoff.delay(1, base=settings.K8SDM_RETRY_BASE_SECONDS, cap=settings.K8SDM_RETRY_MAX_SECONDS,
                                      retry_after=exc.retry_after)
                return Reconciled(retry_in=delay, reason=str(exc))
            return Reconciled(failed=True, reason=str(exc))
        result: SyncResult = deployment_sync(namespace=namespace, name=name, live=live, also_select=also_select)
    finally:
        locks.unlock(deployment_id)
    return Reconciled(done=True, reason=result.reason, changed=result.changed, row=result.row)
