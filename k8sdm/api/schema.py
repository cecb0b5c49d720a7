"""OpenAPI pieces shared by every view: the error shape as a component, the identity header as a
security scheme, the idempotency and correlation headers."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from deployments_app.validators import REQUEST_ID


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable code, e.g. invalid, not_found, identifier_taken.")
    message = serializers.CharField(help_text="A sentence for humans.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field path -> reasons, e.g. {\"ports[1].container_port\": [\"...\"]}; {} when not about input.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


ERROR_DESCRIPTIONS = {
    400: "Invalid input (see `error.fields`), or nothing to change.",
    401: "Not authenticated: no credential, or an invalid, expired or revoked one (see WWW-Authenticate).",
    403: "Not allowed by the caller's policy (namespace, registry), or a token may not do this.",
    404: "No such object for this caller (another user's objects are 404 too).",
    405: "Method not allowed on this path.",
    409: "Conflicts with the current state (identifier taken, deployment deleted or being deleted, "
    "request_id reused with a different body).",
    413: "The body is larger than the server's limit.",
    415: "The body is not application/json in UTF-8 (or has no Content-Type).",
    422: "quota_exceeded: the request would exceed one of the caller's quotas (named in `error.fields`).",
    429: "Rate limit exceeded; see Retry-After.",
    411: "A chunked body: send it with a Content-Length.",
    500: "Internal error.",
    503: "A dependency (PostgreSQL) is unavailable: error.code dependency_unavailable; retry after the "
    "Retry-After header's seconds (a write retried with the same request_id is never applied twice).",
}

EXAMPLE_ERROR = OpenApiExample(
    "invalid input",
    value={"error": {"code": "invalid", "message": "The request is invalid: see fields.",
                     "fields": {"replicas": ["must be between 0 and 20"]}}},
    response_only=True,
    status_codes=["400"],
)


def error_responses(*codes: int) -> dict:
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in codes}


READ_ERRORS = (400, 401, 404, 405, 429, 500, 503)
WRITE_ERRORS = (400, 401, 403, 404, 405, 409, 411, 413, 415, 422, 429, 500, 503)

IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description="The request_id (alternative to `request_id` in the body; both given must be equal).",
    pattern=REQUEST_ID.pattern,
    type=str,
)

CORRELATION_ID = OpenApiParameter(
    name="X-Correlation-Id",
    location=OpenApiParameter.HEADER,
    required=False,
    description="Correlation id to log and store with the request (<= 64 of letters, digits, . _ : -); "
    "X-Request-Id works too. Generated when absent or malformed (it is never a reason to refuse a request); "
    "always echoed in the X-Correlation-Id response header.",
    type=str,
)


class ApiAuthenticationScheme(OpenApiAuthenticationExtension):
    """The authentication modes (K8SDM_AUTH_MODES): the gateway's header, or a bearer JWT / API token."""

    target_class = "k8sdm.api.authentication.ApiAuthentication"
    name = ["GatewayUserId", "Bearer"]

    def get_security_requirement(self, auto_schema):
        return [{"GatewayUserId": []}, {"Bearer": []}]  # either one (OR), not both

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": settings.K8SDM_USER_HEADER,
                "description": "Authentication mode `header`: the caller's id, set by the trusted gateway "
                "(1-128 of letters, digits and . _ @ : + -); believed only from the gateway.",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "Authentication modes `jwt` (a JWT from the configured issuer) and `token` "
                "(a personal API token `k8sdm_...`, see /api/v1/tokens/).",
            },
        ]
