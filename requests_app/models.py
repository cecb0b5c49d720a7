"""Deployment requests: a user's intent, stored before it is queued, and its result.

The outbox lives on the request itself, not in a table of its own: `published_at IS NULL` means
"committed but not yet acknowledged by JetStream". The API writes the request in the same
transaction as everything else it changes, so the outbox entry can never be lost or orphaned;
the relay (requests_app/relay.py) publishes pending rows and stamps `published_at` on the
publish ack, and a partial index keeps the pending set cheap to scan however large the table is.
"""

from django.db import models

from deployments_app.models import Deployment
from users_app.models import User


class RequestAction(models.TextChoices):
    CREATE = "CREATE", "Create"
    UPDATE = "UPDATE", "Update"
    DELETE = "DELETE", "Delete"


class RequestStatus(models.TextChoices):
    CREATED = "CREATED", "Created"  # accepted, waiting for the worker
    SUCCESS = "SUCCESS", "Success"
    FAILURE = "FAILURE", "Failure"


class DeploymentRequest(models.Model):
    request_id = models.CharField(max_length=128, help_text="client idempotency key, unique per user")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="requests")
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="requests")
    identifier = models.CharField(max_length=63, help_text="the deployment's identifier, kept for filtering")
    namespace = models.CharField(max_length=63)
    action = models.CharField(max_length=8, choices=RequestAction.choices)
    status = models.CharField(max_length=8, choices=RequestStatus.choices, default=RequestStatus.CREATED)

    # What the client sent (UPDATE: the partial patch) and what the worker applies (the merged config).
    payload = models.JSONField(default=dict)
    config = models.JSONField(default=dict)
    # sha256 of the canonical payload: a replay with the same request_id must carry the same body.
    payload_hash = models.CharField(max_length=64)

    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    resource_version = models.CharField(max_length=64, blank=True, default="")
    correlation_id = models.CharField(max_length=64, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True, help_text="outbox: when JetStream acked the publish")
    # outbox: a relay that claimed this row to publish it; other relays skip it until then.
    outbox_lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="request_user_created"),
            models.Index(fields=["user", "status", "-created_at"], name="request_user_status"),
            models.Index(fields=["user", "action", "-created_at"], name="request_user_action"),
            models.Index(fields=["user", "identifier", "-created_at"], name="request_user_identifier"),
            models.Index(fields=["status"], name="request_status"),
            models.Index(fields=["action"], name="request_action"),
            models.Index(fields=["identifier"], name="request_identifier"),
            models.Index(fields=["namespace"], name="request_namespace"),
            models.Index(fields=["created_at"], name="request_created"),
            # The worker drains a deployment's pending requests oldest first.
            models.Index(
                fields=["deployment", "id"],
                name="request_pending_by_deployment",
                condition=models.Q(status="CREATED"),
            ),
            # The outbox relay's scan.
            models.Index(fields=["id"], name="request_outbox_pending", condition=models.Q(published_at__isnull=True)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["user", "request_id"], name="request_unique_request_id_per_user"),
            models.CheckConstraint(condition=models.Q(action__in=RequestAction.values), name="request_action_valid"),
            models.CheckConstraint(condition=models.Q(status__in=RequestStatus.values), name="request_status_valid"),
            models.CheckConstraint(
                condition=(
                    models.Q(status=RequestStatus.CREATED, finished_at__isnull=True)
                    | (~models.Q(status=RequestStatus.CREATED) & models.Q(finished_at__isnull=False))
                ),
                name="request_finished_at_iff_finished",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=RequestStatus.FAILURE) | ~models.Q(error=""),
                name="request_failure_has_error",
            ),
            models.CheckConstraint(condition=~models.Q(request_id=""), name="request_request_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.identifier} ({self.request_id})"

    @property
    def is_finished(self) -> bool:
        return self.status != RequestStatus.CREATED
