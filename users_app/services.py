"""Writes of users."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from users_app.models import ApiToken, Refusal, User

logger = logging.getLogger(__name__)


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


# --- Personal API tokens ----------------------------------------------------------------------

TOKEN_PREFIX = "k8sdm_"
TOKEN_ID_CHARS = 8


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def token_digest(secret: str) -> str:
    """sha256 of a token: the secret has 256 bits of entropy, so a fast hash is enough (no salt
    or stretching needed to resist guessing), and lookups stay one indexed equality."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenLimitReached(Exception):
    pass


@transaction.atomic
def token_create(*, user: User, name: str, expires_at: datetime | None, created_by: str) -> IssuedToken:
    """A new token for `user`; the secret is in the result only. At most
    K8SDM_TOKEN_MAX_PER_USER live (unrevoked, unexpired) tokens per user (TokenLimitReached)."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
    if live.count() >= settings.K8SDM_TOKEN_MAX_PER_USER:
        raise TokenLimitReached(f"at most {settings.K8SDM_TOKEN_MAX_PER_USER} live tokens per user")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[len(TOKEN_PREFIX):len(TOKEN_PREFIX) + TOKEN_ID_CHARS],
        digest=token_digest(secret), expires_at=expires_at, created_by=created_by,
    )
    logger.info("API token %s (%r) created for %s by %s", token.prefix, name, user, created_by)
    return IssuedToken(token=token, secret=secret)


def token_revoke(*, token: ApiToken, by: str) -> bool:
    """Revoke `token` (idempotent); True if this call revoked it."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()) == 1
    if revoked:
        logger.info("API token %s of %s revoked by %s", token.prefix, token.user_id, by)
    return revoked


def token_touch(*, token: ApiToken) -> None:
    """Record a use of `token`, at most once per K8SDM_TOKEN_TOUCH_SECONDS (a write per use would
    make every authenticated call a write)."""
    now = timezone.now()
    interval = timedelta(seconds=settings.K8SDM_TOKEN_TOUCH_SECONDS)
    if token.last_used_at is not None and now - token.last_used_at < interval:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - interval)
    ).update(last_used_at=now)


# --- Refusals (audit) -------------------------------------------------------------------------


def refusal_record(
    *, kind: str, code: str, user: User | None, claimed_identity: str, source_address: str, detail: str
) -> None:
    """Keep a refused call for the admin. Never raises: auditing must not turn a 4xx into a 500."""
    try:
        Refusal.objects.create(
            user=user, kind=kind, code=code[:64], claimed_identity=claimed_identity[:200],
            source_address=source_address[:64], detail=detail[:2000],
        )
    except DatabaseError:
        logger.warning("could not record a %s refusal (%s)", kind, code, exc_info=True)
