"""Identity: the trusted gateway in front of the API puts the caller's id in one header.

The header (settings.K8SDM_USER_HEADER, `X-User-Id`) is the only credential. The gateway must set
it and strip any copy the client sent; see README "API / Identity".

Header names are case-insensitive and, in CGI/WSGI, `X-User-Id` and `X_User_Id` both become
META["HTTP_X_USER_ID"]. A gateway that strips `X-User-Id` but passes `X_User_Id` would let a client
pick its identity, so an identity that might have come from an underscore header is refused
(401 ambiguous_identity), never guessed:
- WSGI servers that keep underscore headers (gunicorn `--header-map dangerous`) join both into one
  value with a comma, which the id syntax never allows; gunicorn's default (`drop`) and Django's
  runserver drop such headers before Django sees them;
- a server that keeps the raw spelling in its environ key (HTTP_X_User_Id and the like) is caught by
  looking for any other META key that folds to the same name;
- under ASGI the raw header names are in scope["headers"]: any name with "_" that folds to the
  identity header is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from rest_framework import authentication, exceptions

from users_app.models import User
from users_app.selectors import user_get_by_external_id

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
EXTERNAL_ID_MAX = 128


class MissingIdentity(exceptions.NotAuthenticated):
    default_code = "missing_identity"


class InvalidIdentity(exceptions.AuthenticationFailed):
    default_code = "invalid_identity"


class AmbiguousIdentity(exceptions.AuthenticationFailed):
    default_code = "ambiguous_identity"


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling: the gateway's id, and their User row if they ever wrote anything."""

    external_id: str
    user: User | None

    is_authenticated = True
    is_anonymous = False

    def __str__(self) -> str:
        return self.external_id


def header_meta_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def _folded(name: str) -> str:
    return name.upper().replace("-", "_")


def ambiguous_identity_source(request) -> str:
    """A description of an underscore/duplicate identity header, or '' if there is none."""
    header = settings.K8SDM_USER_HEADER
    meta_key = header_meta_key(header)
    target = _folded(header)
    for key in request.META:
        if key != meta_key and key.startswith(("HTTP_", "http_")) and _folded(key[5:]) == target:
            return f"header {key[5:]!r} folds onto {header!r}"
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):
        for raw_name, _ in scope.get("headers") or ():
            name = raw_name.decode("latin1")
            if "_" in name and _folded(name) == target:
                return f"header {name!r} folds onto {header!r}"
    if "," in request.META.get(meta_key, ""):
        return f"{header!r} arrived more than once (or together with an underscore variant)"
    return ""


class GatewayHeaderAuthentication(authentication.BaseAuthentication):
    """Every API call must carry a well-formed identity header; 401 otherwise."""

    def authenticate(self, request):
        header = settings.K8SDM_USER_HEADER
        django_request = request._request
        ambiguous = ambiguous_identity_source(django_request)
        if ambiguous:
            raise AmbiguousIdentity(f"Refused an ambiguous identity: {ambiguous}. Send only {header}.")
        raw = django_request.META.get(header_meta_key(header))
        if raw is None or raw == "":
            raise MissingIdentity(f"The {header} header is required.")
        if len(raw) > EXTERNAL_ID_MAX:
            raise InvalidIdentity(f"The {header} header must be at most {EXTERNAL_ID_MAX} characters.")
        if not EXTERNAL_ID.match(raw):
            raise InvalidIdentity(f"The {header} header must be 1-128 characters of letters, digits and . _ @ : + -")
        return ApiCaller(external_id=raw, user=user_get_by_external_id(external_id=raw)), None

    def authenticate_header(self, request) -> str:
        return f'Gateway header="{settings.K8SDM_USER_HEADER}"'
