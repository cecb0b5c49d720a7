"""One JSON shape for every error the API, /healthz, /readyz and /metrics answer:

    {"error": {"code": "<machine_code>", "message": "<human sentence>",
               "fields": {"<field path>": ["reason", ...]}}}

`fields` is {} unless the error is about input. Field paths are dotted, with list indices in
brackets: `ports[1].container_port`, `resources.limits.cpu`, `labels.tier`; `body` is the request
body as a whole. The DRF exception handler below turns every APIException into this shape; the
Django handlers (handler400/403/404/500) and ApiMiddleware cover what DRF never sees (unknown URLs,
crashes, oversized bodies).

Services raise domain errors (k8sdm/errors.py: InvalidInput, NotFound, Conflict), which know
nothing of HTTP; `exception_handler` maps them here, once, to a status and this shape. The API
layer raises the same ones (re-exported here).
PostgreSQL being unreachable is 503 `dependency_unavailable` with Retry-After (see outages.py).
"""

from __future__ import annotations

import logging

from django.core.exceptions import SuspiciousOperation, TooManyFieldsSent
from django.http import Http404, JsonResponse
from django.views import defaults
from django.urls import reverse
from rest_framework import exceptions, status
from rest_framework.response import Response

from k8sdm.api.outages import POSTGRES, RETRY_AFTER_SECONDS, postgres_unavailable
from k8sdm.errors import Conflict, DomainError, InvalidInput, LimitExceeded, NotAllowed, NotFound, Unavailable

__all__ = ["Conflict", "DomainError", "InvalidInput", "LimitExceeded", "NotAllowed", "NotFound", "Unavailable", "exception_handler", "error_body", "json_error"]

logger = logging.getLogger(__name__)

API_PATH_PREFIXES = ("/api/",)
API_EXACT_PATHS = ("/api", "/healthz", "/readyz", "/metrics")

STATUS_CODES = {
    400: ("bad_request", "The request is invalid."),
    401: ("not_authenticated", "The caller is not identified."),
    403: ("forbidden", "Not allowed."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed on this path."),
    406: ("not_acceptable", "Cannot answer in the requested format; this API speaks application/json."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type; send application/json."),
    422: ("unprocessable", "The request cannot be processed."),
    429: ("throttled", "Too many requests."),
    500: ("internal_error", "Internal server error. It has been logged; retry later."),
    411: ("length_required", "Send the body with a Content-Length header (not chunked)."),
    503: ("unavailable", "The service is unavailable."),
}

JSON_HINT = "Send the body as JSON (UTF-8) with the header Content-Type: application/json."


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES) or path.rstrip("/") in API_EXACT_PATHS


def not_found_message(path: str) -> str:
    """A 404's message; `/api` (a newcomer's guess) points at the index."""
    if path.rstrip("/") == "/api":
        return (f"No such path: {path}. The API index is at {reverse('api-v1:index')} "
                f"(the OpenAPI schema at {reverse('schema')}).")
    return f"No such path: {path}"


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def json_error(status_code: int, code: str | None = None, message: str | None = None,
               fields: dict | None = None) -> JsonResponse:
    default_code, default_message = STATUS_CODES.get(status_code, ("error", "The request failed."))
    return JsonResponse(error_body(code or default_code, message or default_message, fields), status=status_code)


def suspicious_request(request, exc: BaseException) -> dict | None:
    """The 400 body for a request Django refuses as suspicious (1000+ query parameters and the
    like), logged as one line instead of Django's ERROR with a traceback; None for anything else."""
    if not isinstance(exc, SuspiciousOperation):
        return None
    path = getattr(request, "path", "")
    logger.warning("refused a suspicious request to %s: %s: %s", path, type(exc).__name__, exc)
    if isinstance(exc, TooManyFieldsSent):
        return error_body("too_many_parameters", "Too many query parameters.")
    return error_body("bad_request", "The request was refused as malformed.")


def logged_once(response):
    """Marks a response as logged, so django.request does not log it again (an outage is logged
    once by outages.Outage, not once per request)."""
    response._has_been_logged = True
    return response


def dependency_unavailable(exc: BaseException) -> tuple[dict, dict] | None:
    """(body, headers) of the 503 for an error that means PostgreSQL is unavailable; else None."""
    if not postgres_unavailable(exc):
        return None
    POSTGRES.refused(exc)
    message = (
        f"The database is unavailable; retry in {RETRY_AFTER_SECONDS} s. "
        "A write retried with the same request_id is never applied twice."
    )
    return error_body("dependency_unavailable", message), {"Retry-After": str(RETRY_AFTER_SECONDS)}


# The status of each domain error (most specific class first).
DOMAIN_STATUS = ((InvalidInput, status.HTTP_400_BAD_REQUEST), (NotFound, status.HTTP_404_NOT_FOUND),
                 (Conflict, status.HTTP_409_CONFLICT), (NotAllowed, status.HTTP_403_FORBIDDEN),
                 (LimitExceeded, status.HTTP_422_UNPROCESSABLE_ENTITY),
                 (Unavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
                 (DomainError, status.HTTP_400_BAD_REQUEST))


def domain_status(exc: DomainError) -> int:
    return next(code for cls, code in DOMAIN_STATUS if isinstance(exc, cls))


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail -> {"ports[1].container_port": ["..."]}."""
    out: dict[str, list[str]] = {}

    def join(base: str, key) -> str:
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit() and base):
            return f"{base}[{key}]"
        if key in ("non_field_errors", "__all__"):
            return base or "body"
        return f"{base}.{key}" if base else str(key)

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, join(path, key))
        elif isinstance(node, list):
            if all(not isinstance(item, (dict, list)) for item in node):
                if node:
                    out.setdefault(path or "body", []).extend(str(item) for item in node)
            else:
                for index, item in enumerate(node):
                    if item:
                        walk(item, join(path, index) if isinstance(item, (dict, list)) else path)
        else:
            out.setdefault(path or "body", []).append(str(node))

    walk(detail, prefix)
    return out


def _first_message(detail) -> str:
    if isinstance(detail, (list, tuple)) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        return _first_message(next(iter(detail.values())))
    return str(detail)


def exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every domain error and APIException as the one error shape.

    Anything else (a bug) is left to ApiMiddleware.process_exception, which logs it and answers 500."""
    unavailable = dependency_unavailable(exc)
    if unavailable is not None:
        body, headers = unavailable
        return logged_once(Response(body, status=503, headers=headers))
    suspicious = suspicious_request(context.get("request"), exc)
    if suspicious is not None:
        return logged_once(Response(suspicious, status=400))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DomainError):
        if exc.audit_kind:
            _audit(exc, context)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else {}
        return Response(error_body(exc.code, exc.message, exc.fields), status=domain_status(exc), headers=headers)
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))

    status_code = exc.status_code
    default_code, default_message = STATUS_CODES.get(status_code, ("error", "The request failed."))
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        body = error_body("invalid", "The request is invalid: see fields.", fields)
    elif isinstance(exc, exceptions.ParseError):
        reason = getattr(exc, "reason", None) or str(exc.detail)
        body = error_body("malformed", str(exc.detail), {"body": [reason]})
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        body = error_body("unsupported_media_type", f"{exc.detail} {JSON_HINT}", {})
    elif isinstance(exc, exceptions.MethodNotAllowed):
        body = error_body("method_not_allowed", _method_not_allowed_message(context), {})
    elif isinstance(exc, exceptions.Throttled):
        body = error_body(
            "throttled", f"Too many requests; retry in {headers.get('Retry-After', '1')} seconds.", {}
        )
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else default_code
        generic = {"error", "invalid", "not_authenticated", "authentication_failed", "permission_denied"}
        body = error_body(code if code not in generic else default_code, _first_message(exc.detail), {})
    return Response(body, status=status_code, headers=headers)


def _method_not_allowed_message(context) -> str:
    """Names the allowed methods and, through the view's method_hint(), where to go instead."""
    request, view = context.get("request"), context.get("view")
    if request is None or view is None:
        return STATUS_CODES[405][1]
    allowed = ", ".join(view.allowed_methods)
    message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}."
    hint = view.method_hint(request.method) if hasattr(view, "method_hint") else ""
    return f"{message} {hint}" if hint else message


def _audit(exc: DomainError, context) -> None:
    from k8sdm.api import audit
    from k8sdm.api.addresses import client_address

    request = context.get("request")
    caller = getattr(request, "user", None)
    audit.refused(
        kind=exc.audit_kind, code=exc.code, source_address=client_address(request) if request else "",
        claimed_identity=getattr(caller, "external_id", "") or "", reason=exc.message,
        user=getattr(caller, "user", None), correlation_id=getattr(getattr(request, "_request", None),
                                                                    "correlation_id", ""),
    )


# --- Django's own error views, answering JSON on API paths -------------------------------------


def handler400(request, exception=None):
    if is_api_path(request.path):
        return json_error(400, message=f"Bad request: {exception}" if exception else None)
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if is_api_path(request.path):
        return json_error(403)
    return defaults.permission_denied(request, exception)


def handler404(request, exception=None):
    if is_api_path(request.path):
        return json_error(404, message=not_found_message(request.path))
    return defaults.page_not_found(request, exception)


def handler500(request):
    if is_api_path(request.path):
        return json_error(500)
    return defaults.server_error(request)
