"""The mirror of a managed Kubernetes Deployment.

Kubernetes is the record of truth for these rows: the worker writes the observed fields from the
live object (never from a watch event's copy). `desired_config` is what the manager was last asked
for; `applied_config` what it last wrote to the cluster; comparing that with the live object shows
drift (changes made outside k8sdm).
"""

from django.db import models

from users_app.models import User


class DeploymentStatus(models.TextChoices):
    INITIATED = "INITIATED", "Initiated"  # accepted, not yet seen in the cluster
    CREATED = "CREATED", "Created"  # exists in the cluster, rolled out
    UPDATING = "UPDATING", "Updating"  # a spec change is rolling out
    DELETED = "DELETED", "Deleted"  # gone from the cluster


class DeploymentHealth(models.TextChoices):
    HEALTHY = "HEALTHY", "Healthy"
    PROGRESSING = "PROGRESSING", "Progressing"
    DEGRADED = "DEGRADED", "Degraded"
    UNKNOWN = "UNKNOWN", "Unknown"


class Deployment(models.Model):
    identifier = models.CharField(max_length=63, unique=True, help_text="Kubernetes name and app name")
    namespace = models.CharField(max_length=63)
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="deployments")
    status = models.CharField(max_length=16, choices=DeploymentStatus.choices, default=DeploymentStatus.INITIATED)
    # Why it is DELETED when that was not a DELETE request: its CREATE failed, or the object it
    # tracked is gone or was replaced by one k8sdm did not create ('' otherwise).
    status_reason = models.CharField(max_length=512, blank=True, default="")
    health = models.CharField(max_length=16, choices=DeploymentHealth.choices, default=DeploymentHealth.UNKNOWN)

    # What the manager was last asked for (the merged config of the newest accepted request).
    desired_config = models.JSONField(default=dict)
    # What desired_config asks of the cluster in all (replicas, and each container's CPU cores and
    # memory bytes x replicas), written with it: the per-user quotas sum these in SQL
    # (requests_app/quotas.py), so checking a request does not read every config of its user.
    ask_replicas = models.IntegerField(default=0)
    ask_cpu = models.DecimalField(max_digits=30, decimal_places=9, default=0)
    ask_memory = models.DecimalField(max_digits=40, decimal_places=3, default=0)
    # What the manager last wrote to the cluster (the config of the last request applied); None before.
    applied_config = models.JSONField(null=True, blank=True)

    # Observed from the cluster.
    observed_spec = models.JSONField(default=dict, blank=True)
    image = models.CharField(max_length=512, blank=True, default="")
    replicas = models.IntegerField(null=True, blank=True)
    ready_replicas = models.IntegerField(default=0)
    updated_replicas = models.IntegerField(default=0)
    available_replicas = models.IntegerField(default=0)
    generation = models.BigIntegerField(null=True, blank=True)
    observed_generation = models.BigIntegerField(null=True, blank=True)
    conditions = models.JSONField(default=list, blank=True)
    # Why it is DEGRADED or PROGRESSING, one line from the conditions (the sync writes it; '' when HEALTHY).
    health_reason = models.CharField(max_length=512, blank=True, default="")
    resource_version = models.CharField(max_length=64, blank=True, default="")
    uid = models.CharField(max_length=64, blank=True, default="")
    # Fields where the live spec differs from applied_config ({} when in sync).
    drift = models.JSONField(default=dict, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="deployment_owner_created"),
            models.Index(fields=["status"], name="deployment_status"),
            models.Index(fields=["health"], name="deployment_health"),
            models.Index(fields=["namespace"], name="deployment_namespace"),
            models.Index(fields=["created_at"], name="deployment_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DeploymentStatus.values), name="deployment_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(health__in=DeploymentHealth.values), name="deployment_health_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(replicas__isnull=True) | models.Q(replicas__gte=0), name="deployment_replicas_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(ready_replicas__gte=0, updated_replicas__gte=0, available_replicas__gte=0),
                name="deployment_replica_counts_gte_0",
            ),
            models.CheckConstraint(
                condition=models.Q(identifier__regex=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"),
                name="deployment_identifier_dns1123",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.identifier}"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.identifier}"

    @property
    def is_live(self) -> bool:
        return self.status != DeploymentStatus.DELETED
