"""Building events from transitions and publishing them after commit.

The hooks the other apps call where their state changes; each takes plain values (or an object
with the named attributes), so events_app imports no other app. Publishing happens in
`transaction.on_commit` (at once outside a transaction) and never waits for NATS; the event's row
in the events outbox (events_app/outbox.py), written in the same transaction, makes sure it is
published even if this process dies or NATS is away right then.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events_app import outbox
from k8sdm.messaging import events

logger = logging.getLogger(__name__)


def _now() -> str:
    return timezone.now().isoformat().replace("+00:00", "Z")


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def publish_after_commit(event: events.Event) -> None:
    """Write the event's outbox row in the caller's transaction; once it commits, hand the event
    to the process's bus, which stamps the row when JetStream acknowledges it. What the bus
    cannot publish (NATS away, the process gone) the relay in `runworker` publishes later."""
    publish_all_after_commit([event])


def publish_all_after_commit(built: list[events.Event]) -> None:
    """`publish_after_commit` for the events of one transition, their outbox rows in one INSERT."""
    if not settings.K8SDM_EVENTS_ENABLED or not built:
        return
    # An event without msg_id gets one: the relay's re-publish must be recognisable as the same event.
    built = [event if event.msg_id else replace(event, msg_id=f"event/{uuid.uuid4().hex}") for event in built]
    rows = outbox.add_many(built)

    def publish():
        from k8sdm.messaging.events_stream import event_bus

        bus = event_bus()
        for event, row in zip(built, rows):
            bus.publish(event, on_published=lambda pk=row.pk: outbox.stamper().add(pk))

    transaction.on_commit(publish)


def request_event(kind: str, request, *, user_external_id: str) -> events.Event:
    """`request`: a DeploymentRequest (or anything with its attributes). No config, no env."""
    data = {
        "request_id": request.request_id,
        "action": request.action,
        "status": request.status,
        "error": request.error or "",
        "attempts": request.attempts,
        "resource_version": request.resource_version or "",
        "created_at": _iso(getattr(request, "created_at", None)),
        "finished_at": _iso(getattr(request, "finished_at", None)),
        "links": {"request": f"/api/v1/requests/{request.request_id}",
                  "deployment": f"/api/v1/deployments/{request.identifier}"},
    }
    return events.Event(
        kind=kind, user=user_external_id, identifier=request.identifier, namespace=request.namespace,
        time=_now(), data=data, msg_id=f"request/{request.pk}/{kind}",
    )


def request_accepted(request, *, user_external_id: str) -> tuple[str, bytes, str, object] | None:
    """Inside the transaction that stored a new request: writes the event's outbox row and returns
    the message for the request's publisher to send first, (subject, payload, msg_id,
    on_done(PublishResult)), or None when events are off. Sent on the same connection and acked
    before the request goes out, the event is in the stream before the worker can finish the
    request; its `request.succeeded` therefore never overtakes its `request.accepted`."""
    if not settings.K8SDM_EVENTS_ENABLED:
        return None
    event = request_event(events.REQUEST_ACCEPTED, request, user_external_id=user_external_id)
    row = outbox.add(event)

    def done(result) -> None:
        if result.ok:
            outbox.stamper().add(row.pk)

    return event.subject, event.to_bytes(), event.msg_id, done


def request_finished(request, *, user_external_id: str) -> None:
    """After a request moved from CREATED to SUCCESS or FAILURE (the caller saw its update count 1)."""
    kind = events.REQUEST_SUCCEEDED if request.status == "SUCCESS" else events.REQUEST_FAILED
    if request.finished_at is None:
        request.finished_at = timezone.now()
    publish_after_commit(request_event(kind, request, user_external_id=user_external_id))


STATE_FIELDS = ("status", "health", "drift")


def deployment_state(row) -> dict:
    """What deployment events compare: status, health and the names of the drifted fields."""
    return {"status": row.status, "health": row.health, "drift": sorted((row.drift or {}).keys())}


def deployment_changed(*, before: dict, row, owner_external_id: str, reason: str = "") -> list[events.Event]:
    """Compare `before` (deployment_state of the row as read) with the row as written; publish one
    event per real transition: status (or `deployment.deleted`), health (not on deletion, where
    it only becomes UNKNOWN), drift appearing, changing fields, or clearing."""
    after = deployment_state(row)
    kinds = []
    deleted = after["status"] == "DELETED" and before["status"] != "DELETED"
    if deleted:
        kinds.append(events.DEPLOYMENT_DELETED)
    elif after["status"] != before["status"]:
        kinds.append(events.DEPLOYMENT_STATUS_CHANGED)
    if after["health"] != before["health"] and not deleted and after["status"] != "DELETED":
        kinds.append(events.DEPLOYMENT_HEALTH_CHANGED)
    if after["drift"] != before["drift"] and not deleted:
        kinds.append(events.DEPLOYMENT_DRIFT_DETECTED if after["drift"] else events.DEPLOYMENT_DRIFT_CLEARED)
    built = []
    for kind in kinds:
        data = {
            "status": after["status"], "previous_status": before["status"],
            "health": after["health"], "previous_health": before["health"],
            "drift_fields": after["drift"], "previous_drift_fields": before["drift"],
            "image": getattr(row, "image", ""), "replicas": getattr(row, "replicas", None),
            "ready_replicas": getattr(row, "ready_replicas", 0),
            "updated_replicas": getattr(row, "updated_replicas", 0),
            "available_replicas": getattr(row, "available_replicas", 0),
            "generation": getattr(row, "generation", None),
            "observed_generation": getattr(row, "observed_generation", None),
            "resource_version": getattr(row, "resource_version", ""),
            "links": {"deployment": f"/api/v1/deployments/{row.identifier}"},
        }
        if reason:
            data["reason"] = reason
        change = {
            events.DEPLOYMENT_STATUS_CHANGED: after["status"],
            events.DEPLOYMENT_DELETED: after["status"],
            events.DEPLOYMENT_HEALTH_CHANGED: after["health"],
        }.get(kind, ",".join(after["drift"]))
        event = events.Event(
            kind=kind, user=owner_external_id, identifier=row.identifier, namespace=row.namespace, time=_now(),
            data=data,
            msg_id=f"deployment/{row.pk}/{kind}/{before['status']}.{before['health']}/{change}/{data['resource_version']}",
        )
        built.append(event)
    publish_all_after_commit(built)
    return built
