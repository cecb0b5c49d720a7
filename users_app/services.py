"""Writes of users."""

from __future__ import annotations

from django.db import transaction

from users_app.models import User


@transaction.atomic
def user_get_or_create(*, external_id: str) -> User:
    """The User with this gateway id, created on first use.

    Called inside the transaction that stores the caller's first request, so a refused request
    leaves no user behind. Two first requests at once: the unique key makes one insert wait for the
    other, and get_or_create reads the winner's row."""
    user, _ = User.objects.get_or_create(user_external_id=external_id)
    return user
