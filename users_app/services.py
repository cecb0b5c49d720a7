"""Writes of users."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from users_app.models import User


def user_get_or_create(*, external_id: str) -> User:
    """The User with this gateway id, created on first use.

    Called inside the transaction that stores the caller's first request, so a refused request
    leaves no user behind. Two first requests at once: the unique key makes one insert wait for the
    other, which then reads the winner's row. Only the insert takes a savepoint (the common case,
    a known user, is one SELECT)."""
    user = User.objects.filter(user_external_id=external_id).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            return User.objects.create(user_external_id=external_id)
    except IntegrityError:
        return User.objects.get(user_external_id=external_id)
