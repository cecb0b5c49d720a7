"""Domain errors: what a service raises to refuse a request, with a machine code, a sentence for a
human and, for bad input, the fields at fault.

They know nothing of HTTP. The API maps them once, in its exception handler
(k8sdm/api/errors.py), to the one error shape and a status: InvalidInput 400, NotFound 404,
Conflict 409, NotAllowed 403, LimitExceeded 422, Unavailable 503 `dependency_unavailable` with
Retry-After.
"""

from __future__ import annotations


class DomainError(Exception):
    default_code = "error"
    # A refusal worth an audit record (users_app RefusalKind: "policy", "quota"), or None.
    audit_kind: str | None = None

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = fields or {}


class InvalidInput(DomainError):
    """The input cannot be accepted as it is (names the fields when it can)."""

    default_code = "invalid"


class NotFound(DomainError):
    """No such thing, or not the caller's (the same answer either way)."""

    default_code = "not_found"


class Conflict(DomainError):
    """The request conflicts with the current state (taken, deleted, being deleted, reused id)."""

    default_code = "conflict"


class NotAllowed(DomainError):
    """The caller may not do this (their policy, or the credential they used)."""

    default_code = "not_allowed"


class LimitExceeded(DomainError):
    """The request would take the caller past one of their limits (quotas)."""

    default_code = "limit_exceeded"


class Unavailable(DomainError):
    """A dependency (the Kubernetes API server) did not answer in time; retry after `retry_after` s."""

    default_code = "dependency_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after
