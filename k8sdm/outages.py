"""Dependency outages, logged as such: ONE warning when an outage starts and one line when it ends,
with its duration and how much it refused or deferred, never a traceback per request or per retry.

`Outage` is one dependency's current outage in one process (the api's PostgreSQL and NATS, the
worker's and the watcher's); `postgres_unavailable` tells an error that means "PostgreSQL cannot
serve now" from a bug.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

# SQLSTATEs that mean "the server cannot serve you now", not "your statement is wrong":
# admin_shutdown, crash_shutdown, cannot_connect_now (starting up), too_many_connections.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def postgres_unavailable(exc: BaseException) -> bool:
    """True for an error that says PostgreSQL cannot be reached or is not serving."""
    if isinstance(exc, InterfaceError):  # the connection is closed
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    # No SQLSTATE: the client library's own connection failure (refused, reset, closed).
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_STATES


class Outage:
    """One dependency's current outage in this process: logged when it starts and when it ends.

    `meanwhile` says what the API does while it lasts; `refusals` names what `refused` counts."""

    def __init__(self, dependency: str, *, meanwhile: str, refusals: str):
        self.dependency = dependency
        self.meanwhile = meanwhile
        self.refusals = refusals
        self._lock = threading.Lock()
        self._since: float | None = None
        self._refused = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def refused(self, error: BaseException | str) -> None:
        """One request was answered (or handled) differently because of `error`."""
        with self._lock:
            self._refused += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        logger.warning(
            "%s unavailable (%s): %s until it is back",
            self.dependency, reason, self.meanwhile, extra={"dependency": self.dependency, "outage": "started"},
        )

    def recovered(self) -> None:
        with self._lock:
            if self._since is None:
                return
            seconds = time.monotonic() - self._since
            refused = self._refused
            self._since, self._refused = None, 0
        logger.warning(
            "%s available again after an outage of %.1f s (%d %s)",
            self.dependency, seconds, refused, self.refusals,
            extra={"dependency": self.dependency, "outage": "ended", "outage_seconds": round(seconds, 3),
                   "refused_requests": refused},
        )
