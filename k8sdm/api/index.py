"""GET /api/v1/: what a newcomer needs to make the first call (the banner of `make run` links here).

Public like the schema: it lists paths and the identity header's name, nothing about any user.
Paths are reversed from the URL configuration, so the list cannot drift from the routes. The
API's rules hold here too (ApiViewMixin: no query parameters, 405s in the one error shape); the
page itself is not an operation of the schema.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from k8sdm.api.views import ApiViewMixin

# (method, url name, kwargs placeholder, what it does)
ENDPOINTS = [
    ("POST", "api-v1:deployment-request-create", None,
     "ask for a Deployment to be created; 202 with the request, applied asynchronously"),
    ("PATCH", "api-v1:deployment-request-change", "identifier",
     "ask for a change to one of your deployments (the fields given replace the current ones); 202"),
    ("DELETE", "api-v1:deployment-request-change", "identifier",
     "ask for one of your deployments to be deleted; 202"),
    ("GET", "api-v1:request-list", None,
     "your requests, newest first; filters status, action, identifier"),
    ("GET", "api-v1:request-detail", "request_id",
     "one of your requests: its status (CREATED while pending, then SUCCESS or FAILURE) and error"),
    ("GET", "api-v1:deployment-list", None,
     "your deployments, newest first; filters status, health, namespace"),
    ("GET", "api-v1:deployment-detail", "identifier",
     "one of your deployments as the cluster runs it, with its recent requests"),
    ("GET", "api-v1:deployment-diagnosis", "identifier",
     "why one of your deployments is (un)healthy: its pods, Warning events and a summary, read live"),
    ("GET", "api-v1:deployment-logs", "identifier",
     "the last log lines of one of your deployment's pods (bounded: ?pod=, ?container=, ?tail=, ?since=, ?previous=)"),
    ("POST", "api-v1:deployment-request-rollback", "identifier",
     "ask for one of your deployments to go back to an earlier revision ({\"to_revision\": n}); 202"),
    ("POST", "api-v1:deployment-request-restart", "identifier",
     "ask for a rolling restart of one of your deployments (like kubectl rollout restart); 202"),
    ("GET", "api-v1:revision-list", "identifier",
     "one of your deployment's revisions, newest first, each with its diff to the previous one"),
    ("GET", "api-v1:revision-detail", ("identifier", "number"), "one revision of one of your deployments"),
    ("GET", "api-v1:token-list", None, "your personal API tokens (never their secrets)"),
    ("POST", "api-v1:token-list", None,
     "create a personal API token (Authorization: Bearer k8sdm_...); 201 shows its secret once"),
    ("DELETE", "api-v1:token-detail", "id", "revoke one of your API tokens; 204"),
    ("GET", "api-v1:event-stream", None,
     "your events as they happen (Server-Sent Events; ?identifier=, Last-Event-ID resume), served by the "
     "events server"),
    ("GET", "api-v1:webhook-list", None, "your webhooks (URLs told of your events)"),
    ("POST", "api-v1:webhook-list", None, "register a webhook; 201 with its signing secret, shown only then"),
    ("GET", "api-v1:webhook-detail", "webhook_id", "one of your webhooks, with why it is disabled if it is"),
    ("PATCH", "api-v1:webhook-detail", "webhook_id", "change a webhook; {\"active\": true} enables it again"),
    ("DELETE", "api-v1:webhook-detail", "webhook_id", "remove a webhook"),
    ("GET", "api-v1:webhook-deliveries", "webhook_id", "a webhook's deliveries: status, attempts, response code"),
]


def _path(name: str, placeholder: str | tuple[str, ...] | None) -> str:
    if placeholder is None:
        return reverse(name)
    names = (placeholder,) if isinstance(placeholder, str) else placeholder
    # reverse() would percent-encode braces: reverse with markers, then show the template.
    path = reverse(name, kwargs={each: f"PLACEHOLDER{i}" for i, each in enumerate(names)})
    for i, each in enumerate(names):
        path = path.replace(f"PLACEHOLDER{i}", "{" + each + "}")
    return path


class ApiIndexView(ApiViewMixin, APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({
            "name": "k8sdm API",
            "version": "v1",
            "authentication": f"send the header {settings.K8SDM_USER_HEADER} with your user id "
                              "(in production a gateway sets it), or Authorization: Bearer with a JWT or an API "
                              f"token (modes enabled: {', '.join(settings.K8SDM_AUTH_MODES)})",
            "endpoints": [
                {"method": method, "path": _path(name, placeholder), "description": description}
                for method, name, placeholder, description in ENDPOINTS
            ],
            "docs": {
                "openapi": reverse("schema"),
                "swagger_ui": reverse("api-docs"),
                "redoc": reverse("api-redoc"),
            },
            "health": {"alive": reverse("healthz"), "ready": reverse("readyz"), "metrics": reverse("metrics")},
            "admin": reverse("admin:index"),
        })
