"""Reads of webhook endpoints and deliveries, scoped to their owner (anyone else gets a 404)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from events_app.models import WebhookDelivery, WebhookEndpoint
from k8sdm.errors import NotFound
from users_app.models import User


def webhook_list(*, user: User | None) -> QuerySet[WebhookEndpoint]:
    if user is None:
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.filter(owner=user)


def webhook_get(*, user: User | None, webhook_id: str) -> WebhookEndpoint:
    endpoint = None
    try:
        key = uuid.UUID(str(webhook_id))
    except ValueError:
        key = None
    if user is not None and key is not None:
        endpoint = WebhookEndpoint.objects.filter(owner=user, pk=key).first()
    if endpoint is None:
        raise NotFound(f"Webhook {webhook_id!r} not found.", code="webhook_not_found")
    return endpoint


def webhook_deliveries(*, endpoint: WebhookEndpoint, status: str | None = None) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries
