"""Fault injection: latency, error rates per verb / path prefix, "error the next N
requests", all decided per request before it reaches the API handlers."""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, asdict
from typing import Optional

from . import errors


@dataclass
class ErrorRule:
    """Fail matching requests with ``status`` (500, 503 or 429).

    ``verb`` in UPPER case matches the HTTP method (GET, POST, PUT, PATCH, DELETE);
    in lower case it matches the Kubernetes verb (get, list, watch, create, update,
    patch, delete, deletecollection); None or "*" matches all. ``path_prefix`` restricts by URL
    path. ``rate`` is a probability 0..1; ``count`` (when set) makes the rule
    deterministic: it fails exactly the next ``count`` matching requests and is then
    exhausted (rate is ignored)."""
    status: int = 500
    rate: float = 1.0
    verb: Optional[str] = None
    path_prefix: Optional[str] = None
    count: Optional[int] = None
    retry_after: Optional[int] = None   # seconds; 429 defaults to 1, others send none

    def matches(self, method: str, verb: str, path: str) -> bool:
        v = self.verb
        if v not in (None, "*", ""):
            if v.isupper():
                if v != method:
                    return False
            elif v != verb:
                return False
        if self.path_prefix and not path.startswith(self.path_prefix):
            return False
        return True


class Faults:
    def __init__(self, seed: Optional[int] = None):
        self.latency_ms: float = 0.0
        self.rules: list[ErrorRule] = []
        self.injected = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.latency_ms = 0.0
            self.rules = []

    def configure(self, spec: dict) -> None:
        """Replace the configuration from an admin JSON document::

            {"latency_ms": 50,
             "errors": [{"status": 503, "rate": 0.5, "verb": "POST", "path_prefix": "/apis"},
                        {"status": 500, "count": 3}],
             "seed": 42}
        """
        rules = []
        for r in spec.get("errors") or []:
            rules.append(_rule(r))
        with self._lock:
            self.latency_ms = float(spec.get("latency_ms") or 0)
            self.rules = rules
            if spec.get("seed") is not None:
                self._rng.seed(spec["seed"])

    def add_rule(self, rule: ErrorRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def describe(self) -> dict:
        with self._lock:
            return {"latency_ms": self.latency_ms, "errors": [asdict(r) for r in self.rules],
                    "injected": self.injected}

    def pick(self, method: str, verb: str, path: str) -> Optional[errors.ApiError]:
        with self._lock:
            for r in list(self.rules):
                if not r.matches(method, verb, path):
                    continue
                if r.count is not None:
                    if r.count <= 0:
                        continue
                    r.count -= 1
                    if r.count == 0:
                        self.rules.remove(r)
                elif self._rng.random() >= r.rate:
                    continue
                self.injected += 1
                return make_error(r.status, r.retry_after)
        return None


def _rule(r: dict) -> ErrorRule:
    status = int(r.get("status", 500))
    if status not in (429, 500, 502, 503, 504):
        raise ValueError(f"unsupported fault status {status}: use 429, 500, 502, 503 or 504")
    rate = float(r.get("rate", 1.0))
    if not 0 <= rate <= 1:
        raise ValueError("rate must be between 0 and 1")
    count = r.get("count")
    return ErrorRule(status=status, rate=rate, verb=r.get("verb"),
                     path_prefix=r.get("path_prefix"),
                     count=int(count) if count is not None else None,
                     retry_after=int(r["retry_after"]) if r.get("retry_after") is not None
                     else None)


def make_error(status: int, retry_after: Optional[int] = None) -> errors.ApiError:
    if status == 429:
        return errors.too_many_requests(retry_after or 1)
    if status == 503:
        return errors.service_unavailable(retry_after=retry_after)
    if status == 500:
        return errors.internal_error()
    reason = {502: "BadGateway", 504: "Timeout"}.get(status, "InternalError")
    return errors.ApiError(status, reason, f"injected fault (kube-emulator): HTTP {status}", {})
