"""The callers of the API, identified by the id their gateway vouches for.

Not Django's auth user: staff log into the admin with django.contrib.auth users; these are the
platform's users, created on the first request that carries a new id.
"""

from django.db import models

USER_EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._@:+-]{1,128}$"


class User(models.Model):
    user_external_id = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user_external_id__regex=USER_EXTERNAL_ID_PATTERN),
                name="user_external_id_format",
            ),
        ]

    def __str__(self) -> str:
        return self.user_external_id


class ApiToken(models.Model):
    """A personal API token. Only the sha256 of the secret is stored; the secret is shown once.

    `prefix` (the first characters after `k8sdm_`) lets a user and staff tell tokens apart
    without the secret. Revocation sets `revoked_at`; rows are kept for the record."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, help_text="'self' (through the API) or the staff username")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_created")]

    def __str__(self) -> str:
        return f"{self.name} (k8sdm_{self.prefix}...)"


class UserPolicy(models.Model):
    """What one user may do. An empty field means the default from settings (K8SDM_POLICY_*).

    Limits are numbers (counts, replicas) or Kubernetes quantities (cpu "500m", memory "2Gi");
    "unlimited" lifts a limit for this user."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="policy")
    allowed_namespaces = models.JSONField(
        null=True, blank=True, help_text='A list of namespaces, e.g. ["team-a"]; empty: the default.'
    )
    allowed_registries = models.JSONField(
        null=True, blank=True,
        help_text='A list of "host" (all of it) or "host/path-prefix" entries, e.g. ["ghcr.io/acme", '
        '"docker.io/library"]; empty: the default.',
    )
    max_deployments = models.CharField(max_length=32, blank=True)
    max_replicas = models.CharField(max_length=32, blank=True, help_text="Per deployment.")
    max_replicas_total = models.CharField(max_length=32, blank=True)
    max_cpu_per_container = models.CharField(max_length=32, blank=True)
    max_memory_per_container = models.CharField(max_length=32, blank=True)
    max_cpu_total = models.CharField(max_length=32, blank=True)
    max_memory_total = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "user policies"

    def __str__(self) -> str:
        return f"policy of {self.user}"


class RefusalKind(models.TextChoices):
    AUTHENTICATION = "authentication"
    POLICY = "policy"
    QUOTA = "quota"
    RATE_LIMIT = "rate_limit"


class Refusal(models.Model):
    """A refused call, kept for the admin: who claimed to call, from where, and why it was refused."""

    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="refusals")
    kind = models.CharField(max_length=16, choices=RefusalKind.choices)
    code = models.CharField(max_length=64)
    claimed_identity = models.CharField(max_length=200, blank=True)
    source_address = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="refusal_user_created"),
            models.Index(fields=["-created_at"], name="refusal_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.code}"
