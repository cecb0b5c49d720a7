"""Accepting deployment requests: the API's writes.

Contract of the three services (`deployment_request_create`, `_update`, `_delete`):
- input is already validated (requests_app/serializers.py, deployments_app/validators.py);
- the caller is `user_external_id`; `user` is their User row when the caller already looked it up
  (it is created on their first write otherwise);
- one transaction stores the caller's User (first request), the Deployment change (CREATE: a new or
  reused INITIATED row; UPDATE: the merged desired_config) and the DeploymentRequest with
  `published_at = NULL` (its outbox entry); `publish_after_commit` publishes it to JetStream once the
  transaction has committed; if NATS is down the row stays in the outbox for the relay;
- idempotency: (user, request_id) is unique. A request_id already used with the same body
  (payload_hash) returns the original request (`replayed=True`, nothing written); with a different
  body it is a Conflict. A replay is recognised when its transaction is refused or fails on the
  unique key (it is rolled back, then the original is looked up), so two identical requests at
  once also end as one request and one replay;
- ROLLBACK (`deployment_request_rollback`) and RESTART (`deployment_request_restart`) are UPDATEs
  whose config the server computes: the config of an earlier revision (requests_app/revisions.py),
  or the current one with a new pod-template restartedAt; they are queued, ordered and applied like
  any UPDATE and rewrite desired_config the same way;
- every write but DELETE may carry a change-cause `message` and a rollout `wait`
  ({"timeout_seconds": n, "rollback_on_failure": bool}): the request starts with rollout PENDING and
  the worker judges it after applying it (requests_app/rollouts.py);
- refusals raise domain errors (k8sdm/errors.py: NotFound, Conflict, InvalidInput) and store nothing;
  the API maps them to its error shape.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Callable

from django.utils import timezone

from django.db import IntegrityError, transaction

from deployments_app.config import DeploymentConfig
from deployments_app.models import Deployment, DeploymentStatus
from deployments_app.services import (
    deployment_initiate,
    deployment_lock_for_change,
    deployment_set_desired_config,
)
from events_app import emit as events
from k8sdm import rows
from k8sdm.errors import Conflict, DomainError, InvalidInput
from requests_app import metrics
from requests_app.models import DeploymentRequest, RequestAction, RolloutState
from requests_app.publishing import publish_after_commit
from requests_app.quotas import quota_check
from requests_app.selectors import request_find, request_has_pending_delete, rollback_target
from users_app.models import User
from users_app.selectors import user_get_by_external_id
from users_app.services import user_get_or_create

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    request: DeploymentRequest
    replayed: bool


def payload_hash(*, action: str, identifier: str, payload: dict) -> str:
    """sha256 of the canonical JSON of what identifies a request's body."""
    canonical = json.dumps(
        {"action": action, "identifier": identifier, "payload": payload},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(existing: DeploymentRequest, digest: str) -> Accepted:
    if existing.payload_hash != digest:
        raise Conflict(
            f"request_id {existing.request_id!r} was already used for a different request "
            f"({existing.action} of {existing.identifier!r}); use a new request_id for a new request.",
            code="request_id_reused",
            fields={"request_id": ["already used with a different body"]},
        )
    metrics.REQUESTS_REPLAYED.labels(existing.action).inc()
    return Accepted(request=existing, replayed=True)


# apply(user) -> (deployment, merged config); raises a DomainError to refuse.
Apply = Callable[[User], "tuple[Deployment, dict]"]


def _accept(
    *, action: str, user_external_id: str, user: User | None, identifier: str, request_id: str, payload: dict,
    digest: str, correlation_id: str, apply: Apply, extras: dict | None = None,
) -> Accepted:
    try:
        return _accept_once(
            action=action, user_external_id=user_external_id, user=user, identifier=identifier,
            request_id=request_id, payload=payload, digest=digest, correlation_id=correlation_id, apply=apply,
            extras=extras if extras is not None else {},
        )
    except (DomainError, IntegrityError):
        # A concurrent twin with this request_id may have won while we were refused or hit its
        # unique key: if so, this is a replay of it.
        user = user_get_by_external_id(external_id=user_external_id)
        existing = request_find(user=user, request_id=request_id) if user else None
        if existing is None:
            raise
        return _replay(existing, digest)


@transaction.atomic
def _accept_once(
    *, action: str, user_external_id: str, user: User | None, identifier: str, request_id: str, payload: dict,
    digest: str, correlation_id: str, apply: Apply, extras: dict,
) -> Accepted:
    """`extras`: more fields of the new request (message, wait, rollback_of ...); `apply` may add to it."""
    if user is None:
        user = user_get_or_create(external_id=user_external_id)
    # No lookup of request_id first: a replay either is refused by apply (the state it made has
    # moved on) or hits the (user, request_id) unique key on insert; both roll back, and _accept
    # answers it as the replay it is. New requests, the common case, save a query.
    deployment, config = apply(user)
    request = rows.insert(DeploymentRequest(  # plain SQL (k8sdm/rows.py)
        request_id=request_id,
        user=user,
        deployment=deployment,
        identifier=deployment.identifier,
        namespace=deployment.namespace,
        action=action,
        payload=payload,
        config=config,
        payload_hash=digest,
        correlation_id=correlation_id,
        **extras,
    ))
    # The accepted event goes out first, on the request's own connection (events_app/emit.py).
    publish_after_commit(request, preceded_by=events.request_accepted(request, user_external_id=user.user_external_id))

    def accepted():
        metrics.REQUESTS_ACCEPTED.labels(action).inc()
        logger.info(
            "accepted %s of %s/%s (request %s, id %s)", action, deployment.namespace, deployment.identifier,
            request_id, request.pk,
            extra={"correlation_id": correlation_id, "request_id": request_id, "request_pk": request.pk,
                   "action": action, "identifier": deployment.identifier, "user": user_external_id},
        )

    transaction.on_commit(accepted)
    return Accepted(request=request, replayed=False)


def _extras(message: str, wait: dict | None) -> dict:
    """The request fields of a change cause and a rollout wait (validated by the serializers)."""
    extras: dict = {"message": message or ""}
    if wait:
        extras.update(rollout=RolloutState.PENDING, rollout_timeout_seconds=wait["timeout_seconds"],
                      rollback_on_failure=bool(wait.get("rollback_on_failure", False)))
    return extras


def _with_extras(payload: dict, message: str, wait: dict | None) -> dict:
    """What the request's body hash covers: the payload, plus message and wait when given (so a
    body without them hashes as it always did)."""
    body = dict(payload)
    if message:
        body["message"] = message
    if wait:
        body["wait"] = {"timeout_seconds": wait["timeout_seconds"],
                        "rollback_on_failure": bool(wait.get("rollback_on_failure", False))}
    return body


def deployment_request_create(
    *, user_external_id: str, config: dict, payload: dict, request_id: str, correlation_id: str = "",
    user: User | None = None, message: str = "", wait: dict | None = None,
) -> Accepted:
    """CREATE: `config` is the validated config (defaults are filled in here, DeploymentConfig.from_input),
    `payload` what the client sent. The Deployment row is created (or a DELETED one reused) as INITIATED."""
    stored = DeploymentConfig.from_input(config).to_dict()

    def apply(user: User):
        quota_check(user=user, config=stored)
        return deployment_initiate(owner=user, config=stored), stored

    return _accept(
        action=RequestAction.CREATE, user_external_id=user_external_id, user=user, identifier=stored["identifier"],
        request_id=request_id, payload=_with_extras(payload, message, wait),
        digest=payload_hash(action=RequestAction.CREATE, identifier=stored["identifier"],
                            payload=_with_extras(stored, message, wait)),
        correlation_id=correlation_id, apply=apply, extras=_extras(message, wait),
    )


def _refuse_if_gone(deployment: Deployment) -> None:
    if deployment.status == DeploymentStatus.DELETED:
        raise Conflict(
            f"Deployment {deployment.identifier!r} is deleted; create it again instead.", code="deployment_deleted"
        )
    if request_has_pending_delete(deployment=deployment):
        raise Conflict(
            f"Deployment {deployment.identifier!r} is being deleted (a DELETE request is pending).",
            code="delete_pending",
        )


def deployment_request_update(
    *, user_external_id: str, identifier: str, patch: dict, request_id: str, correlation_id: str = "",
    user: User | None = None, reapply: bool = False, message: str = "", wait: dict | None = None,
) -> Accepted:
    """UPDATE: `patch` (validated config fields, identifier excluded) is merged onto the
    deployment's desired_config (DeploymentConfig.merge: each given field replaces that field);
    the request stores payload = patch, config = the merged config, which also becomes the
    Deployment's desired_config. Refused: nothing to change (400), namespace change (400),
    deployment deleted or being deleted (409), not the caller's (404).

    `reapply=True` (the console's retry of a FAILED update) accepts a patch the desired config
    already holds: a failed UPDATE stored its config when it was accepted, so asking for it again
    changes nothing in Postgres, yet the cluster never got it."""
    if not patch:
        raise InvalidInput("Nothing to change: the body names no config field.", code="nothing_to_change")

    def apply(user: User):
        deployment = deployment_lock_for_change(owner=user, identifier=identifier)
        _refuse_if_gone(deployment)
        if "namespace" in patch and patch["namespace"] != deployment.namespace:
            raise InvalidInput(
                f"The namespace of a deployment cannot change (it is {deployment.namespace!r}); "
                "delete it and create it in the other namespace.",
                code="namespace_immutable",
                fields={"namespace": ["cannot be changed"]},
            )
        current = DeploymentConfig.from_input({**deployment.desired_config, "identifier": deployment.identifier,
                                               "namespace": deployment.namespace})
        merged = current.merge(patch)
        if merged == current and not reapply:
            raise InvalidInput("Nothing to change: the patch matches the current config.", code="nothing_to_change")
        stored = merged.to_dict()
        quota_check(user=user, config=stored, replacing=deployment)
        deployment_set_desired_config(deployment=deployment, config=stored)
        return deployment, stored

    return _accept(
        action=RequestAction.UPDATE, user_external_id=user_external_id, user=user, identifier=identifier,
        request_id=request_id, payload=_with_extras(patch, message, wait),
        digest=payload_hash(action=RequestAction.UPDATE, identifier=identifier,
                            payload=_with_extras(patch, message, wait)),
        correlation_id=correlation_id, apply=apply, extras=_extras(message, wait),
    )


def deployment_request_delete(
    *, user_external_id: str, identifier: str, request_id: str, correlation_id: str = "",
    user: User | None = None,
) -> Accepted:
    """DELETE: config = the deployment's current desired_config. Refused when it is already
    deleted or a DELETE is pending (409), or not the caller's (404)."""

    def apply(user: User):
        deployment = deployment_lock_for_change(owner=user, identifier=identifier)
        if deployment.status == DeploymentStatus.DELETED:
            raise Conflict(f"Deployment {identifier!r} is already deleted.", code="already_deleted")
        if request_has_pending_delete(deployment=deployment):
            raise Conflict(
                f"Deployment {identifier!r} is already being deleted (a DELETE request is pending).",
                code="delete_pending",
            )
        return deployment, dict(deployment.desired_config)

    return _accept(
        action=RequestAction.DELETE, user_external_id=user_external_id, user=user, identifier=identifier,
        request_id=request_id, payload={},
        digest=payload_hash(action=RequestAction.DELETE, identifier=identifier, payload={}),
        correlation_id=correlation_id, apply=apply,
    )


def _current_config(deployment: Deployment) -> DeploymentConfig:
    return DeploymentConfig.from_input({**deployment.desired_config, "identifier": deployment.identifier,
                                        "namespace": deployment.namespace})


def deployment_request_rollback(
    *, user_external_id: str, identifier: str, to_revision: int | None, request_id: str, correlation_id: str = "",
    user: User | None = None, message: str = "", wait: dict | None = None,
    rollback_for: DeploymentRequest | None = None,
) -> Accepted:
    """ROLLBACK: the config of revision `to_revision` (None: the newest revision older than the
    current one whose config differs from the current desired config) becomes the desired config,
    queued as a request that records rollback_of = the revision number. The pod template's
    restartedAt stays as it is (a rollback restores the config, it does not undo a restart).
    Refused (400, field to_revision): no such revision, pruned, or the same config as now; and as
    an UPDATE is (404 not the caller's, 409 deleted or being deleted). `rollback_for`: the request
    whose failed rollout this automatic rollback undoes (the worker's, requests_app/rollouts.py)."""
    extras = _extras(message, wait)
    if rollback_for is not None:
        extras["rollback_for"] = rollback_for

    def apply(user: User):
        deployment = deployment_lock_for_change(owner=user, identifier=identifier)
        _refuse_if_gone(deployment)
        current = _current_config(deployment)
        target = rollback_target(deployment=deployment, to_revision=to_revision, current=current)
        restored = replace(DeploymentConfig.from_input(target.config), restarted_at=current.restarted_at)
        stored = restored.to_dict()
        quota_check(user=user, config=stored, replacing=deployment)
        deployment_set_desired_config(deployment=deployment, config=stored)
        extras["rollback_of"] = target.number
        return deployment, stored

    body = {"to_revision": to_revision}
    return _accept(
        action=RequestAction.ROLLBACK, user_external_id=user_external_id, user=user, identifier=identifier,
        request_id=request_id, payload=_with_extras(body, message, wait),
        digest=payload_hash(action=RequestAction.ROLLBACK, identifier=identifier,
                            payload=_with_extras(body, message, wait)),
        correlation_id=correlation_id, apply=apply, extras=extras,
    )


def deployment_request_restart(
    *, user_external_id: str, identifier: str, request_id: str, correlation_id: str = "",
    user: User | None = None, message: str = "", wait: dict | None = None,
) -> Accepted:
    """RESTART: a rolling restart as `kubectl rollout restart` makes it: the current desired config
    with a new pod-template annotation kubectl.kubernetes.io/restartedAt (now). Not drift: the
    annotation is not a managed field. Refused like an UPDATE (404, 409)."""

    def apply(user: User):
        deployment = deployment_lock_for_change(owner=user, identifier=identifier)
        _refuse_if_gone(deployment)
        restarted = replace(_current_config(deployment), restarted_at=timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        stored = restarted.to_dict()
        deployment_set_desired_config(deployment=deployment, config=stored)
        return deployment, stored

    return _accept(
        action=RequestAction.RESTART, user_external_id=user_external_id, user=user, identifier=identifier,
        request_id=request_id, payload=_with_extras({}, message, wait),
        digest=payload_hash(action=RequestAction.RESTART, identifier=identifier, payload=_with_extras({}, message, wait)),
        correlation_id=correlation_id, apply=apply, extras=_extras(message, wait),
    )
