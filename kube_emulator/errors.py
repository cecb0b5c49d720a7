"""Kubernetes ``Status`` errors, worded like the real kube-apiserver."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the client as a ``metav1.Status`` body."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str | None, group: str, kind: str, **extra) -> dict:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    d.update(extra)
    return d


def qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                    _details(name, group, resource))


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                    _details(name, group, resource))


def conflict(resource: str, group: str, name: str,
             why: str = "the object has been modified; please apply your changes "
                        "to the latest version and try again") -> ApiError:
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                    _details(name, group, resource))


def invalid(kind: str, group: str, name: str, causes: list[dict]) -> ApiError:
    """``causes``: dicts with reason, message, field (like metav1.StatusCause)."""
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    if len(parts) == 1:
        agg = parts[0]
    else:
        agg = "[" + ", ".join(parts) + "]"
    qual = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{qual} "{name}" is invalid: {agg}',
                    _details(name, group, kind, causes=causes))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(resource: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{qualified(resource, group)} "{name}" is forbidden: {why}',
                    _details(name, group, resource))


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


def unsupported_media_type(accepted: tuple[str, ...] | list[str],
                           message: str | None = None) -> ApiError:
    """415 as the apiserver's content negotiation words it (its Status has no details)."""
    if message is None:
        message = (f"the body of the request was in an unknown format - accepted media types "
                   f"include: {', '.join(accepted)}")
    return ApiError(415, "UnsupportedMediaType", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_many_requests(retry_after: int = 1) -> ApiError:
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after},
                    headers={"Retry-After": str(retry_after)})


def internal_error(message: str = "injected fault (kube-emulator)") -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})


def service_unavailable(message: str = "the server is currently unable to handle the request "
                                       "(injected fault, kube-emulator)",
                        retry_after: int | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    details = {"retryAfterSeconds": retry_after} if retry_after else {}
    return ApiError(503, "ServiceUnavailable", message, details, headers=headers)


def unprocessable(message: str, group: str = "", kind: str = "", name: str = "") -> ApiError:
    """Generic 422 used by the real server for e.g. failed JSON-patch ``test`` operations."""
    d = _details(name, group, kind, causes=[{"message": message}]) if kind else \
        {"causes": [{"message": message}]}
    return ApiError(422, "Invalid",
                    "the server rejected our request due to an error in our request", d)


def cause(field: str, reason: str, message: str) -> dict:
    return {"reason": reason, "message": message, "field": field}


def required(field: str) -> dict:
    return cause(field, "FieldValueRequired", "Required value")


def invalid_value(field: str, value: Any, detail: str) -> dict:
    return cause(field, "FieldValueInvalid", f"Invalid value: {go_repr(value)}: {detail}")


def go_repr(value: Any) -> str:
    """Approximate how the Go apiserver prints a value in field errors."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, dict):
        items = ", ".join(f'"{k}":{go_repr(v)}' for k, v in sorted(value.items()))
        return "map[string]string{" + items + "}" if all(
            isinstance(v, str) for v in value.values()) else "{" + items + "}"
    return str(value)
