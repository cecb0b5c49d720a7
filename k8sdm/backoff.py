"""The one backoff rule of every retry in k8sdm: exponential, jittered, bounded, honouring Retry-After.

`delay(attempt, ...)` is the pure function (attempt 1 waits about `base`, each further attempt
doubles it, never beyond `cap`, +-`jitter` so that many clients retrying at once spread out).
`Backoff` carries the attempt count for a loop that retries until it succeeds. Loops that count
their attempts elsewhere (a request counts them in its row) call `delay` with that count.
"""

from __future__ import annotations

import random


def delay(attempt: int, *, base: float, cap: float, retry_after: float | None = None, jitter: float = 0.2) -> float:
    """Seconds to wait before attempt `attempt + 1`, given `attempt` failures so far (>= 1).

    A server's Retry-After is honoured up to `cap`."""
    wait = min(cap, base * 2 ** max(0, attempt - 1)) * random.uniform(1 - jitter, 1 + jitter)
    if retry_after is not None:
        wait = max(wait, min(retry_after, cap))
    return wait


class Backoff:
    """The failures of one retry loop: `next()` after each failure, `reset()` after a success."""

    def __init__(self, *, base: float, cap: float, jitter: float = 0.2):
        self.base, self.cap, self.jitter = base, cap, jitter
        self.attempt = 0

    def next(self, retry_after: float | None = None) -> float:
        self.attempt += 1
        return delay(self.attempt, base=self.base, cap=self.cap, retry_after=retry_after, jitter=self.jitter)

    def reset(self) -> None:
        self.attempt = 0
