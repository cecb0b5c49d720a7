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
    ROLLBACK = "ROLLBACK", "Rollback"  # an UPDATE to the config of an earlier revision
    RESTART = "RESTART", "Restart"  # an UPDATE of the pod template's restartedAt annotation only


class RolloutState(models.TextChoices):
    """A request's `rollout` when it asked to wait ("" otherwise)."""

    NONE = "", "Not waited for"
    PENDING = "PENDING", "Pending"
    COMPLETE = "COMPLETE", "Complete"
    FAILED = "FAILED", "Failed"


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

    # The change cause the client gave (kept on the revision the request makes).
    message = models.CharField(max_length=1024, blank=True, default="")
    # ROLLBACK: the revision number it restores.
    rollback_of = models.PositiveIntegerField(null=True, blank=True)
    # An automatic rollback and the failed rollout it undoes point at each other.
    rollback_for = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     help_text="ROLLBACK made automatically: the request whose rollout failed")
    rolled_back_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                       help_text="the automatic ROLLBACK queued when this rollout failed")

    # Rollout wait ("wait" in the request): the worker watches the rollout after applying it.
    rollout = models.CharField(max_length=8, choices=RolloutState.choices, blank=True, default=RolloutState.NONE)
    rollout_reason = models.TextField(blank=True, default="")
    rollout_timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    rollback_on_failure = models.BooleanField(default=False)
    # The Deployment's metadata.generation this request wrote (its rollout is judged at it).
    rollout_generation = models.BigIntegerField(null=True, blank=True)
    # Set when the request is applied (now + timeout); the worker's rollout timer scans it.
    rollout_deadline = models.DateTimeField(null=True, blank=True)
    rollout_finished_at = models.DateTimeField(null=True, blank=True)

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
            # The rollout timer's scan.
            models.Index(fields=["deployment"], name="request_rollout_pending",
                         condition=models.Q(rollout="PENDING")),
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
            models.CheckConstraint(condition=models.Q(rollout__in=RolloutState.values), name="request_rollout_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.identifier} ({self.request_id})"

    @property
    def is_finished(self) -> bool:
        return self.status != RequestStatus.CREATED


class RevisionKind(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    ROLLBACK = "rollback", "Rollback"
    RESTART = "restart", "Restart"


class Revision(models.Model):
    """Revision `number` of a deployment: the complete config a successful CREATE, UPDATE, ROLLBACK
    or RESTART request applied. Numbers start at 1 with each CREATE of the identifier and grow by
    one; only the last K8SDM_REVISION_HISTORY are kept (the request log keeps everything). Kept in
    Postgres, never derived from ReplicaSets. The processing of requests (requests_app/processing.py)
    writes it, under the deployment's lock."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=RevisionKind.choices)
    config = models.JSONField()
    request = models.OneToOneField(DeploymentRequest, on_delete=models.PROTECT, related_name="revision")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    message = models.CharField(max_length=1024, blank=True, default="")
    rollback_of = models.PositiveIntegerField(null=True, blank=True)
    # The Deployment's metadata.generation after the write, and when it was first seen HEALTHY at it
    # (the target of an automatic rollback is the newest revision that completed).
    generation = models.BigIntegerField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "number"], name="revision_unique_number"),
            models.CheckConstraint(condition=models.Q(kind__in=RevisionKind.values), name="revision_kind_valid"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="revision_number_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id} revision {self.number} ({self.kind})"
