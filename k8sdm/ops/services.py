"""The console's safe actions: each goes through the path the rest of the system uses.

- `request_retry`: a FAILED request is asked for again as a NEW request (a failed UPDATE: its
  patch re-applied, even though the desired config already holds it), through the same
  requests service the API calls (validation, idempotency, the outbox, the per-deployment
  order all apply). The new request belongs to the deployment's owner, as the original did;
  who asked for it is recorded: the staff user's name in its correlation id and request id,
  and an entry in the admin's history (LogEntry) of both requests, made by that staff user.
- `deployment_resync`: publishes "look at namespace/name" on the sync subject, exactly what the
  watcher publishes; a worker re-reads the live object and mirrors it. Nothing is written here.
- Nothing in the console deletes a row that mirrors the cluster.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from deployments_app.models import Deployment
from k8sdm.errors import DomainError
from requests_app import publishing
from k8sdm.messaging.messages import SyncDeployment
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus

logger = logging.getLogger(__name__)


class ActionRefused(Exception):
    """The action cannot be taken on this record; the message says why."""


@dataclass(frozen=True)
class Retried:
    original: DeploymentRequest
    new: DeploymentRequest


def _staff_name(staff_user) -> str:
    """The staff user's name in the characters a request_id may hold (a retry's id must be one
    the API itself would accept and could look up)."""
    return re.sub(r"[^A-Za-z0-9.@+-]", "-", staff_user.get_username() or f"id{staff_user.pk}")[:40]


def _log(staff_user, obj, flag: int, message: str) -> None:
    LogEntry.objects.create(
        user_id=staff_user.pk,
        content_type_id=ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=flag,
        change_message=message,
    )


def request_retry(*, request: DeploymentRequest, staff_user) -> Retried:
    """Ask again for what a FAILED request asked for, as a new request made by `staff_user`."""
    if request.status != RequestStatus.FAILURE:
        raise ActionRefused(f"request {request.pk} is {request.status}; only FAILED requests are retried")
    # Imported here, not at module level: the admin is imported by every management command
    # (collectstatic included), and the requests service brings in the request metrics, which in
    # Prometheus multiprocess mode write to a directory only the api's gunicorn prepares.
    from requests_app import services as request_services

    staff = _staff_name(staff_user)
    common = dict(
        user_external_id=request.user.user_external_id,
        user=request.user,
        request_id=f"retry-of-{request.pk}-by-{staff}-{uuid.uuid4().hex[:8]}",
        correlation_id=f"staff:{staff}"[:64],
    )
    # The payload holds the config fields the client sent, plus its change cause and rollout wait.
    fields = {k: v for k, v in request.payload.items() if k not in ("message", "wait", "to_revision")}
    extras = dict(message=request.message, wait=request.payload.get("wait"))
    try:
        if request.action == RequestAction.CREATE:
            accepted = request_services.deployment_request_create(
                config=request.config, payload=fields, **extras, **common)
        elif request.action == RequestAction.UPDATE:
            # Its patch again, onto the config as it is now; the desired config may already hold
            # it (stored when the failed request was accepted), which is no reason to refuse.
            accepted = request_services.deployment_request_update(
                identifier=request.identifier, patch=fields, reapply=True, **extras, **common)
        elif request.action == RequestAction.ROLLBACK:
            accepted = request_services.deployment_request_rollback(
                identifier=request.identifier, to_revision=request.rollback_of, **extras, **common)
        elif request.action == RequestAction.RESTART:
            accepted = request_services.deployment_request_restart(identifier=request.identifier, **extras, **common)
        else:
            accepted = request_services.deployment_request_delete(identifier=request.identifier, **common)
    except DomainError as exc:
        raise ActionRefused(f"the requests service refused the retry: {exc.message}") from None
    new = accepted.request
    _log(staff_user, new, ADDITION, f"retry of request {request.pk} ({request.request_id}), asked by {staff}")
    _log(staff_user, request, CHANGE, f"retried as request {new.pk} ({new.request_id}) by {staff}")
    logger.info("staff %s retried request %s as request %s", staff, request.pk, new.pk,
                extra={"correlation_id": new.correlation_id, "request_pk": new.pk})
    return Retried(original=request, new=new)


def deployment_resync(*, deployment: Deployment, staff_user) -> None:
    """Publish a sync key for the deployment, as the watcher does, with a fresh message id so
    JetStream's duplicate window never drops a deliberate re-sync."""
    message = SyncDeployment(namespace=deployment.namespace, name=deployment.identifier,
                             resource_version=f"staff-{timezone.now().timestamp():.6f}")
    publisher = publishing.current().publisher  # the api process's NATS publisher
    result = publisher.publish(subject=message.subject, payload=message.to_bytes(), msg_id=message.msg_id)
    if not result.ok:
        raise ActionRefused(f"could not publish the sync request to JetStream: {result.error}")
    staff = _staff_name(staff_user)
    _log(staff_user, deployment, CHANGE, f"re-sync from the cluster asked by {staff}")
    logger.info("staff %s asked for a re-sync of %s", staff, deployment.key)


def deployment_rollback(*, deployment: Deployment, staff_user, to_revision: int | None) -> DeploymentRequest:
    """A ROLLBACK of `deployment` asked by `staff_user`: through the requests service the API uses
    (refusals, the queue and its order all apply), on behalf of the owner, recorded as the staff
    user's (request id, correlation id, change cause and the admin's history)."""
    from requests_app import services as request_services  # see request_retry

    staff = _staff_name(staff_user)
    try:
        accepted = request_services.deployment_request_rollback(
            user_external_id=deployment.owner.user_external_id, user=deployment.owner,
            identifier=deployment.identifier, to_revision=to_revision,
            request_id=f"rollback-by-{staff}-{uuid.uuid4().hex[:8]}", correlation_id=f"staff:{staff}"[:64],
            message=f"rollback by staff {staff}",
        )
    except DomainError as exc:
        raise ActionRefused(f"the requests service refused the rollback: {exc.message}") from None
    _log(staff_user, deployment, CHANGE, f"rollback to revision {accepted.request.rollback_of} asked by {staff} "
                                         f"(request {accepted.request.request_id})")
    logger.info("staff %s asked for a rollback of %s to revision %s", staff, deployment.key,
                accepted.request.rollback_of, extra={"request_pk": accepted.request.pk})
    return accepted.request


def deployment_restart(*, deployment: Deployment, staff_user) -> DeploymentRequest:
    """A RESTART of `deployment` asked by `staff_user` (see deployment_rollback)."""
    from requests_app import services as request_services  # see request_retry

    staff = _staff_name(staff_user)
    try:
        accepted = request_services.deployment_request_restart(
            user_external_id=deployment.owner.user_external_id, user=deployment.owner,
            identifier=deployment.identifier, request_id=f"restart-by-{staff}-{uuid.uuid4().hex[:8]}",
            correlation_id=f"staff:{staff}"[:64], message=f"restart by staff {staff}",
        )
    except DomainError as exc:
        raise ActionRefused(f"the requests service refused the restart: {exc.message}") from None
    _log(staff_user, deployment, CHANGE, f"restart asked by {staff} (request {accepted.request.request_id})")
    logger.info("staff %s asked for a restart of %s", staff, deployment.key, extra={"request_pk": accepted.request.pk})
    return accepted.request


def deployment_revisions(*, deployment: Deployment, limit: int = 50) -> list[tuple]:
    """The deployment's newest revisions for its admin page: (revision, diff to the previous one)."""
    from deployments_app.config import config_diff
    from requests_app.models import Revision

    revisions = list(Revision.objects.filter(deployment=deployment, created_at__gte=deployment.created_at)
                     .select_related("request", "user").order_by("-number")[:limit + 1])
    by_number = {r.number: r for r in revisions}
    return [(r, config_diff(by_number[r.number - 1].config if r.number - 1 in by_number else None, r.config)
             if (r.number == 1 or r.number - 1 in by_number) else None) for r in revisions[:limit]]
