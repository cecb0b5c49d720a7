"""Webhook endpoints a user registers, and the record of every delivery to them.

Events themselves live on the JetStream events stream (k8sdm/messaging/events.py); here only the
outbox rows that carry them there (EventOutbox).
"""

from __future__ import annotations

import uuid

from django.db import models

from users_app.models import User


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2048)
    # Event kinds to deliver; [] means every kind.
    kinds = models.JSONField(default=list, blank=True)
    # Only this deployment's events; "" means every deployment of the owner.
    identifier = models.CharField(max_length=63, blank=True, default="")
    description = models.CharField(max_length=200, blank=True, default="")
    # The HMAC key: shown to its owner once, at creation; never in the admin or the API after.
    secret = models.CharField(max_length=128, editable=False)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Since when every attempt has failed (None after a success), and how many in a row.
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.IntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="webhook_owner_created"),
            models.Index(fields=["owner", "active"], name="webhook_owner_active"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(consecutive_failures__gte=0), name="webhook_failures_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.owner_id})"


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"  # not sent yet, or a retry is scheduled
    SUCCEEDED = "SUCCEEDED", "Succeeded"  # a 2xx answer
    FAILED = "FAILED", "Failed"  # refused, or out of attempts


class WebhookDelivery(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.BigIntegerField(help_text="The event's id (its sequence in the events stream)")
    event_kind = models.CharField(max_length=64)
    identifier = models.CharField(max_length=63)
    payload = models.JSONField(help_text="The event as sent (the signed body)")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.IntegerField(default=0)
    response_code = models.IntegerField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at", "-id"], name="delivery_endpoint_created"),
            models.Index(fields=["status"], name="delivery_status"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="delivery_once_per_event"),
            models.CheckConstraint(condition=models.Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
            models.CheckConstraint(condition=models.Q(attempts__gte=0), name="delivery_attempts_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.event_kind} #{self.event_id} -> {self.endpoint_id}"


class EventOutbox(models.Model):
    """The events' transactional outbox: one row per event, written in the transaction of the
    transition it announces (events_app/emit.py). `published_at IS NULL`: JetStream has not
    acknowledged it yet; the process publishes it right after the commit, and the relay in every
    `runworker` publishes what that missed (events_app/outbox.py). Published rows are deleted
    after K8SDM_EVENTS_OUTBOX_KEEP_SECONDS."""

    id = models.BigAutoField(primary_key=True)
    subject = models.CharField(max_length=512)
    payload = models.BinaryField()
    msg_id = models.CharField(max_length=512)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    outbox_lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], name="event_outbox_pending", condition=models.Q(published_at__isnull=True)),
            models.Index(fields=["published_at"], name="event_outbox_published",
                         condition=models.Q(published_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"event {self.msg_id}"
