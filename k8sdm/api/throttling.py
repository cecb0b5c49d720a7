"""A per-user request rate limit: settings.K8SDM_RATE_LIMIT ("600/min"; "" or "off" disables it).

Counters live in Django's default cache. With the default local-memory cache that is per API
process: with N gunicorn workers a user can get up to N times the rate. Point CACHES at a shared
store to make it global.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class PerUserRateThrottle(SimpleRateThrottle):
    scope = "user"

    def __init__(self):
        # The rate is read per request (not at import), so settings overrides apply at once.
        pass

    def allow_request(self, request, view):
        rate = (settings.K8SDM_RATE_LIMIT or "").strip()
        if not rate or rate.lower() in ("off", "none", "0"):
            return True
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        caller = getattr(request, "user", None)
        ident = getattr(caller, "external_id", None) or self.get_ident(request)
        return f"k8sdm:throttle:{ident}"
