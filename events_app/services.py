"""Webhooks: registering endpoints (the API's writes) and delivering events to them (the notifier's).

Endpoints: a secret is generated at creation and returned once; the URL is checked against the
SSRF rules (events_app/outbound.py) when it is set, and again before every attempt. At most
K8SDM_WEBHOOK_MAX_PER_USER endpoints per user.

Deliveries (`event_deliver`, idempotent, called for every delivery of an event message):
- one WebhookDelivery row per (endpoint, event id), created for the owner's active endpoints whose
  kinds and identifier match (a unique key, so a redelivered message never doubles them);
- each PENDING row that is due is attempted: a POST of the event's JSON, signed with
  `X-K8sdm-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, with
  K8SDM_WEBHOOK_TIMEOUT_SECONDS; a 2xx is SUCCEEDED; anything else is retried with exponential
  backoff until K8SDM_WEBHOOK_MAX_ATTEMPTS, then FAILED; a refused address fails at once;
- the row records attempts, the last response code, duration and error; the write is conditional
  on the attempt count it started from, so two notifiers never both count one attempt;
- an endpoint whose attempts have all failed for K8SDM_WEBHOOK_DISABLE_AFTER_SECONDS, and at least
  K8SDM_WEBHOOK_DISABLE_AFTER_FAILURES times in a row, is disabled with the reason; the owner sees
  it in the API and may enable it again.
Returns the seconds until the next attempt that is due (the caller redelivers the message then),
or None when every delivery of the event is finished.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from events_app import outbound
from events_app.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from k8sdm import backoff
from k8sdm.errors import Conflict, InvalidInput
from k8sdm.messaging import events
from users_app.models import User
from users_app.services import user_get_or_create

logger = logging.getLogger(__name__)


def _checked_url(url: str) -> str:
    try:
        outbound.resolve(url)
    except outbound.Refused as exc:
        raise InvalidInput(f"The webhook URL is not allowed: {exc}.", code="invalid",
                           fields={"url": [str(exc)]}) from None
    return url


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@transaction.atomic
def webhook_create(*, user_external_id: str, url: str, kinds: list[str] | None = None, identifier: str = "",
                   description: str = "") -> WebhookEndpoint:
    """The new endpoint; its `secret` attribute is the only time the secret is shown."""
    _checked_url(url)
    user = user_get_or_create(external_id=user_external_id)
    # Lock the user's row so two creations at once cannot both pass the count.
    User.objects.select_for_update().filter(pk=user.pk).first()
    if WebhookEndpoint.objects.filter(owner=user).count() >= settings.K8SDM_WEBHOOK_MAX_PER_USER:
        raise Conflict(f"At most {settings.K8SDM_WEBHOOK_MAX_PER_USER} webhooks per user; delete one first.",
                       code="too_many_webhooks")
    return WebhookEndpoint.objects.create(owner=user, url=url, kinds=kinds or [], identifier=identifier,
                                          description=description, secret=new_secret())


def webhook_update(*, endpoint: WebhookEndpoint, changes: dict) -> WebhookEndpoint:
    """Change url / kinds / identifier / description; `active: true` enables a disabled endpoint
    again (its failure count starts over), `active: false` pauses it."""
    if "url" in changes:
        endpoint.url = _checked_url(changes["url"])
    for name in ("kinds", "identifier", "description"):
        if name in changes:
            setattr(endpoint, name, changes[name])
    if "active" in changes:
        if changes["active"] and not endpoint.active:
            endpoint.active = True
            endpoint.disabled_reason, endpoint.disabled_at = "", None
            endpoint.failing_since, endpoint.consecutive_failures = None, 0
        elif not changes["active"] and endpoint.active:
            endpoint.active = False
            endpoint.disabled_reason, endpoint.disabled_at = "disabled by its owner", timezone.now()
    endpoint.save()
    return endpoint


def webhook_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


# --- delivering -------------------------------------------------------------------------------------


def _matches(endpoint: WebhookEndpoint, event: events.Event) -> bool:
    return (not endpoint.kinds or event.kind in endpoint.kinds) and (
        not endpoint.identifier or endpoint.identifier == event.identifier)


def _backoff(attempts: int) -> float:
    return backoff.delay(attempts, base=settings.K8SDM_WEBHOOK_RETRY_BASE_SECONDS,
                         cap=settings.K8SDM_WEBHOOK_RETRY_MAX_SECONDS)


def _record_endpoint_result(endpoint: WebhookEndpoint, *, ok: bool, error: str) -> None:
    now = timezone.now()
    rows = WebhookEndpoint.objects.filter(pk=endpoint.pk)
    if ok:
        rows.update(consecutive_failures=0, failing_since=None, last_success_at=now)
        return
    rows.update(consecutive_failures=F("consecutive_failures") + 1,
                failing_since=Coalesce(F("failing_since"), now), last_failure_at=now)
    cutoff = now - timedelta(seconds=settings.K8SDM_WEBHOOK_DISABLE_AFTER_SECONDS)
    disabled = rows.filter(active=True, consecutive_failures__gte=settings.K8SDM_WEBHOOK_DISABLE_AFTER_FAILURES,
                           failing_since__lte=cutoff).update(
        active=False, disabled_at=now,
        disabled_reason=f"disabled after {settings.K8SDM_WEBHOOK_DISABLE_AFTER_FAILURES}+ failed attempts in a row "
                        f"over {settings.K8SDM_WEBHOOK_DISABLE_AFTER_SECONDS:.0f}s; last error: {error}"[:500],
    )
    if disabled:
        logger.warning("webhook %s disabled: failing since long (%s)", endpoint.pk, error,
                       extra={"webhook": str(endpoint.pk), "user": endpoint.owner_id})


def _attempt(delivery: WebhookDelivery) -> None:
    endpoint = delivery.endpoint
    now = timezone.now()
    if not endpoint.active:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, finished_at=now, next_attempt_at=None,
            last_error=f"not sent: the endpoint is disabled ({endpoint.disabled_reason})"[:2000])
        return
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    final = False
    try:
        target = outbound.resolve(endpoint.url)
    except outbound.Refused as exc:
        attempt, final = outbound.Attempt(ok=False, status=None, duration_ms=0.0, error=f"refused: {exc}"), True
    else:
        timestamp = int(time.time())
        attempt = outbound.post(target, body=body, timeout=settings.K8SDM_WEBHOOK_TIMEOUT_SECONDS, headers={
            "Content-Type": "application/json",
            "X-K8sdm-Signature": outbound.sign(endpoint.secret, timestamp, body),
            "X-K8sdm-Event": delivery.event_kind,
            "X-K8sdm-Event-Id": str(delivery.event_id),
            "X-K8sdm-Delivery": str(delivery.pk),
        })
    attempts = delivery.attempts + 1
    now = timezone.now()
    if attempt.ok:
        outcome = dict(status=DeliveryStatus.SUCCEEDED, finished_at=now, next_attempt_at=None, last_error="")
    elif final or attempts >= settings.K8SDM_WEBHOOK_MAX_ATTEMPTS:
        outcome = dict(status=DeliveryStatus.FAILED, finished_at=now, next_attempt_at=None, last_error=attempt.error)
    else:
        outcome = dict(next_attempt_at=now + timedelta(seconds=_backoff(attempts)), last_error=attempt.error)
    updated = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING,
                                             attempts=delivery.attempts).update(
        attempts=attempts, response_code=attempt.status, duration_ms=round(attempt.duration_ms, 2), **outcome)
    if updated:
        _record_endpoint_result(endpoint, ok=attempt.ok, error=attempt.error)
        logger.info("webhook delivery %s of event %s (%s) attempt %d: %s", delivery.pk, delivery.event_id,
                    delivery.event_kind, attempts, "ok" if attempt.ok else attempt.error,
                    extra={"webhook": str(endpoint.pk), "status_code": attempt.status,
                           "duration_ms": round(attempt.duration_ms, 1)})


def event_deliver(event: events.Event) -> float | None:
    endpoints = [e for e in WebhookEndpoint.objects.filter(owner__user_external_id=event.user, active=True)
                 if _matches(e, event)]
    if endpoints:
        WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(endpoint=e, event_id=event.id, event_kind=event.kind, identifier=event.identifier,
                             payload=event.body()) for e in endpoints],
            ignore_conflicts=True,
        )
    pending = list(WebhookDelivery.objects.select_related("endpoint").filter(
        event_id=event.id, status=DeliveryStatus.PENDING, endpoint__owner__user_external_id=event.user))
    now = timezone.now()
    for delivery in pending:
        if delivery.next_attempt_at is None or delivery.next_attempt_at <= now:
            _attempt(delivery)
    due = [at for at in WebhookDelivery.objects.filter(
        event_id=event.id, status=DeliveryStatus.PENDING, endpoint__owner__user_external_id=event.user,
    ).values_list("next_attempt_at", flat=True)]
    if not due:
        return None
    soonest = min((at for at in due if at is not None), default=None)
    return max(0.0, (soonest - timezone.now()).total_seconds()) if soonest else 0.0
