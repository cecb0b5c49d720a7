"""Reads of users."""

from __future__ import annotations

from users_app.models import User


def user_get_by_external_id(*, external_id: str) -> User | None:
    """The User with this gateway id, or None if they never wrote anything."""
    return User.objects.filter(user_external_id=external_id).first()
