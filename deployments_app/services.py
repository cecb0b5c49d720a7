"""Writes of deployments made by the API (the worker's are in deployments_app/operations.py and sync.py).

The API only ever sets what the manager was asked for (`desired_config`, owner, namespace) and, on
a CREATE, the status INITIATED; everything observed from the cluster is the worker's.
"""

from __future__ import annotations

from django.db import IntegrityError
from django.utils import timezone

from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from k8sdm import rows
from k8sdm.errors import Conflict, NotFound
from users_app.models import User
from users_app.policy import container_ask


def _identifier_taken(identifier: str) -> Conflict:
    return Conflict(
        f"A deployment named {identifier!r} already exists; identifiers are unique across all users. "
        "Choose another identifier (or delete yours first).",
        code="identifier_taken",
        fields={"identifier": ["already exists"]},
    )


def asks_of(config: dict) -> dict:
    """The ask_* fields for `config` (see the model): what the quotas add up."""
    replicas = int(config.get("replicas", 1) or 0)
    ask = container_ask(config)
    return {"ask_replicas": replicas, "ask_cpu": ask["cpu"] * replicas, "ask_memory": ask["memory"] * replicas}


_LOCK_BY_IDENTIFIER = (f"SELECT {rows.columns(Deployment)} FROM {Deployment._meta.db_table} "
                       f"WHERE identifier = %s FOR UPDATE")


def deployment_initiate(*, owner: User, config: dict) -> Deployment:
    """A Deployment row for a CREATE request: INITIATED, desired_config = config. Must run inside
    the request's transaction (it row-locks, and a Conflict must roll the transaction back).

    The identifier is unique in the database whoever owns it. A DELETED row is reused (locked, then
    reset to the new owner, namespace and config); any other existing row is a Conflict. Two CREATEs
    of one identifier at once: one insert waits on the unique index for the other, then fails, and
    that becomes the same Conflict, never an error."""
    identifier = config["identifier"]
    # Plain SQL for the lookup and the insert: every CREATE runs them (k8sdm/rows.py says why).
    existing = next(iter(Deployment.objects.raw(_LOCK_BY_IDENTIFIER, [identifier])), None)
    if existing is None:
        try:
            # No savepoint: on a unique violation the whole transaction is refused and rolled back.
            return rows.insert(Deployment(
                identifier=identifier,
                namespace=config["namespace"],
                owner=owner,
                status=DeploymentStatus.INITIATED,
                health=DeploymentHealth.UNKNOWN,
                desired_config=config,
                **asks_of(config),
            ))
        except IntegrityError:
            raise _identifier_taken(identifier) from None
    if existing.status != DeploymentStatus.DELETED:
        raise _identifier_taken(identifier)
    # Reuse the row of a deleted deployment: what was observed belongs to the old one.
    existing.owner = owner
    existing.namespace = config["namespace"]
    existing.desired_config = config
    for field, value in asks_of(config).items():
        setattr(existing, field, value)
    existing.applied_config = None
    existing.status = DeploymentStatus.INITIATED
    existing.status_reason = ""
    existing.health = DeploymentHealth.UNKNOWN
    existing.observed_spec = {}
    existing.image = ""
    existing.replicas = None
    existing.ready_replicas = existing.updated_replicas = existing.available_replicas = 0
    existing.generation = existing.observed_generation = None
    existing.conditions = []
    existing.resource_version = ""
    existing.uid = ""
    existing.drift = {}
    existing.last_synced_at = None
    existing.created_at = timezone.now()
    existing.save()
    return existing


def deployment_lock_for_change(*, owner: User, identifier: str) -> Deployment:
    """The caller's deployment, row-locked until the end of the transaction (so concurrent
    UPDATE/DELETE requests for one deployment merge one after the other, none lost).
    NotFound, with the same answer, when it is missing or someone else's."""
    deployment = Deployment.objects.select_for_update().filter(owner=owner, identifier=identifier).first()
    if deployment is None:
        raise NotFound(f"Deployment {identifier!r} not found.", code="deployment_not_found")
    return deployment


def deployment_set_desired_config(*, deployment: Deployment, config: dict) -> Deployment:
    deployment.desired_config = config
    asks = asks_of(config)
    for field, value in asks.items():
        setattr(deployment, field, value)
    deployment.save(update_fields=["desired_config", *asks, "updated_at"])
    return deployment
