"""Reads of users."""

from __future__ import annotations

from django.utils import timezone

from k8sdm import rows
from users_app.models import ApiToken, Refusal, User


def user_get_by_external_id(*, external_id: str) -> User | None:
    """The User with this gateway id, or None if they never wrote anything. Plain SQL: every API
    call authenticates, and compiling the ORM's query cost as much CPU as its round trip."""
    return next(iter(User.objects.raw(_BY_EXTERNAL_ID, [external_id])), None)


_BY_EXTERNAL_ID = f"SELECT {rows.columns(User)} FROM {User._meta.db_table} WHERE user_external_id = %s"


def token_find_live(*, digest: str) -> ApiToken | None:
    """The unrevoked, unexpired token with this digest, with its user (one query)."""
    token = ApiToken.objects.select_related("user").filter(digest=digest, revoked_at__isnull=True).first()
    if token is None or (token.expires_at is not None and token.expires_at <= timezone.now()):
        return None
    return token


def token_list(*, user: User | None):
    """The caller's tokens, newest first (none for a caller who never wrote anything)."""
    if user is None:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def token_get(*, user: User | None, token_id: int) -> ApiToken | None:
    """One of the caller's tokens; None for another user's (the API answers 404 either way)."""
    if user is None:
        return None
    return ApiToken.objects.filter(user=user, pk=token_id).first()


def refusal_recent(*, user: User, limit: int = 20) -> list[Refusal]:
    return list(Refusal.objects.filter(user=user).order_by("-created_at")[:limit])
