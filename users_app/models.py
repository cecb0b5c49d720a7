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
