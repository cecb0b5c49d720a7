"""Rate limits, counted in Django's default cache (settings.CACHES, from CACHE_URL).

- per user: K8SDM_RATE_LIMIT ("600/min"), keyed by the authenticated external id;
- per source address: K8SDM_RATE_LIMIT_PER_ADDRESS ("1200/min"), keyed by the client address
  (k8sdm.api.addresses), so rotating user ids does not escape the limit;
- failed authentication per address: K8SDM_AUTH_FAILURE_LIMIT ("60/min"); past it the address
  gets 429 before any credential is looked at (no token or JWT guessing at full speed).
"" or "off" disables a limit.

Counters are fixed windows: one key per (scope, identity, window), created with `add` and bumped
with `incr`, both atomic in Redis/Valkey. With CACHE_URL=redis://... every api process shares them;
with the local-memory default each process counts alone. If the cache is unreachable the call is
let through (logged): a broken cache must not take the API down.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from k8sdm.api import audit
from k8sdm.api.addresses import client_address
from users_app.models import RefusalKind

logger = logging.getLogger(__name__)

PREFIX = "k8sdm:rl"
_parse_rate = SimpleRateThrottle.parse_rate


def parse_rate(rate: str) -> tuple[int, int] | None:
    rate = (rate or "").strip()
    if not rate or rate.lower() in ("off", "none", "0"):
        return None
    return _parse_rate(None, rate)


def _window(duration: int) -> tuple[int, float]:
    now = time.time()
    index = int(now // duration)
    return index, (index + 1) * duration - now


def hit(scope: str, ident: str, rate: str) -> float | None:
    """Count one call; None if within the limit, else the seconds until the window ends."""
    parsed = parse_rate(rate)
    if parsed is None:
        return None
    limit, duration = parsed
    index, remaining = _window(duration)
    key = f"{PREFIX}:{scope}:{ident}:{index}"
    try:
        try:
            count = cache.incr(key)
        except ValueError:
            count = 1 if cache.add(key, 1, timeout=duration + 1) else cache.incr(key)
    except Exception:  # noqa: BLE001 - the cache is down: let the call through, loudly
        logger.warning("rate-limit cache unreachable; %s limit not enforced", scope, exc_info=True)
        return None
    return None if count <= limit else remaining


def over(scope: str, ident: str, rate: str) -> float | None:
    """Like hit() without counting: None if `ident` may go on."""
    parsed = parse_rate(rate)
    if parsed is None:
        return None
    limit, duration = parsed
    index, remaining = _window(duration)
    try:
        count = cache.get(f"{PREFIX}:{scope}:{ident}:{index}") or 0
    except Exception:  # noqa: BLE001
        logger.warning("rate-limit cache unreachable; %s limit not checked", scope, exc_info=True)
        return None
    return None if count < limit else remaining


def auth_failures_wait(request) -> float | None:
    return over("authfail", client_address(request), settings.K8SDM_AUTH_FAILURE_LIMIT)


def auth_failure_count(request) -> None:
    hit("authfail", client_address(request), settings.K8SDM_AUTH_FAILURE_LIMIT)


class _CacheThrottle(BaseThrottle):
    scope = ""

    def __init__(self):
        self._wait: float | None = None

    def rate(self) -> str:
        raise NotImplementedError

    def ident(self, request) -> str:
        raise NotImplementedError

    def allow_request(self, request, view):
        self._wait = hit(self.scope, self.ident(request), self.rate())
        if self._wait is None:
            return True
        caller = getattr(request, "user", None)
        audit.refused(
            kind=RefusalKind.RATE_LIMIT, code=f"throttled_{self.scope}", source_address=client_address(request),
            claimed_identity=getattr(caller, "external_id", "") or "", reason=f"{self.scope} limit {self.rate()}",
            store=False,
        )
        return False

    def wait(self):
        return self._wait


class UserRateThrottle(_CacheThrottle):
    scope = "user"

    def rate(self) -> str:
        return settings.K8SDM_RATE_LIMIT

    def ident(self, request) -> str:
        caller = getattr(request, "user", None)
        return getattr(caller, "external_id", None) or f"addr:{client_address(request)}"


class AddressRateThrottle(_CacheThrottle):
    scope = "addr"

    def rate(self) -> str:
        return settings.K8SDM_RATE_LIMIT_PER_ADDRESS

    def ident(self, request) -> str:
        return client_address(request)
