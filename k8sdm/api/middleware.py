"""ApiMiddleware: what every request to /api/, /healthz, /readyz and /metrics goes through first.

- correlation id: X-Request-Id / X-Correlation-Id if well-formed, else a new uuid4 hex; set as
  request.correlation_id and returned in the X-Correlation-Id response header;
- body size: a Content-Length over K8SDM_MAX_BODY_BYTES is refused with 413 before anything reads
  or parses it (DATA_UPLOAD_MAX_MEMORY_SIZE matches, for anything that reads request.body); a
  chunked body (no Content-Length) is refused with 411, since the API would not read it;
- trailing slashes: every API path answers with and without its trailing slash (`/api/v1/deployments`
  is `/api/v1/deployments/`, `/api/v1/deployments/requests/create/` is the create path): when a path
  does not resolve and the other form does, the request is routed to the other form. No redirect
  (a 301 would lose a POST's body), and the schema, metrics and links keep the one canonical form;
- the error shape: any error response on those paths that is not JSON (Django's 404/405 pages,
  a server's HTML) is replaced by the one JSON error shape; PostgreSQL unreachable is a 503
  `dependency_unavailable` with Retry-After, logged once per outage (outages.py); any other
  unhandled exception is logged with its traceback and answered 500 in that shape;
- metrics: requests by method/route/status and a latency histogram.

It sits first in MIDDLEWARE so that it sees everything the others answer.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings
from django.http import JsonResponse
from django.urls import Resolver404, resolve

from k8sdm.api import metrics
from k8sdm.api.errors import (
    STATUS_CODES,
    dependency_unavailable,
    is_api_path,
    json_error,
    logged_once,
    not_found_message,
    suspicious_request,
)

logger = logging.getLogger(__name__)

CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def correlation_id_of(request) -> str:
    for key in ("HTTP_X_CORRELATION_ID", "HTTP_X_REQUEST_ID"):
        value = request.META.get(key, "")
        if value and CORRELATION_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.correlation_id = correlation_id_of(request)
        api = is_api_path(request.path_info)
        response = None
        if api:
            self._route_other_slash_form(request)
            response = self._refuse_unbounded_body(request)
        if response is None:
            response = self.get_response(request)
        if api:
            response = self._as_json_error(request, response)
        response["X-Correlation-Id"] = request.correlation_id
        metrics.observe(
            method=request.method,
            route=metrics.route_of(request),
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response

    def process_exception(self, request, exception):
        if not is_api_path(request.path_info):
            return None
        unavailable = dependency_unavailable(exception)
        if unavailable is not None:
            body, headers = unavailable
            return logged_once(JsonResponse(body, status=503, headers=headers))
        suspicious = suspicious_request(request, exception)
        if suspicious is not None:
            return logged_once(JsonResponse(suspicious, status=400))
        logger.error(
            "unhandled error answering %s %s",
            request.method,
            request.path_info,
            exc_info=exception,
            extra={"correlation_id": getattr(request, "correlation_id", "")},
        )
        return json_error(500)

    @staticmethod
    def _route_other_slash_form(request) -> None:
        path = request.path_info
        if _resolves(path):
            return
        other = path[:-1] if path.endswith("/") else path + "/"
        if other != "/" and _resolves(other):
            request.path_info = other
            request.path = request.path[: len(request.path) - len(path)] + other

    @staticmethod
    def _refuse_unbounded_body(request):
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return json_error(411)
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return json_error(400, "bad_content_length", "Content-Length must be an integer.")
        limit = settings.K8SDM_MAX_BODY_BYTES
        if length > limit:
            return json_error(
                413, "payload_too_large", f"The request body is {length} bytes; the limit is {limit} bytes."
            )
        return None

    @staticmethod
    def _as_json_error(request, response):
        if response.status_code < 400:
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith("application/json"):
            return response
        code, message = STATUS_CODES.get(response.status_code, ("error", "The request failed."))
        if response.status_code == 404:
            message = not_found_message(request.path_info)
        elif response.status_code == 405:
            allowed = response.get("Allow", "")
            message = f"Method {request.method} not allowed here" + (f"; allowed: {allowed}." if allowed else ".")
        replacement = json_error(response.status_code, code, message)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True
