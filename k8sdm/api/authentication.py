"""Who is calling: the authentication modes of settings.K8SDM_AUTH_MODES, tried in order.

- `header`: the caller's id in K8SDM_USER_HEADER (`X-User-Id`), believed only from a trusted
  gateway: the peer is in K8SDM_TRUSTED_PROXIES and/or the request carries K8SDM_GATEWAY_SECRET in
  K8SDM_GATEWAY_SECRET_HEADER (compared in constant time); whichever of the two is configured must
  hold. From anyone else the header is ignored, as if absent.
- `jwt`: `Authorization: Bearer <JWT>` verified by k8sdm.api.jwks; the id is the claim
  K8SDM_JWT_USER_CLAIM.
- `token`: `Authorization: Bearer k8sdm_...`, a personal API token (users_app), stored as a hash.

The first mode whose credential the request carries decides: a bad credential is 401, never a
fall-through to the next mode. Every mode ends in the same `request.user`, an ApiCaller with the
external id (and the User row when it exists; a first write creates it). Failures are 401 in the
one error shape with a WWW-Authenticate header and no hint of which check failed: the reason goes
to the log (k8sdm.api.audit). Past K8SDM_AUTH_FAILURE_LIMIT failures an address gets 429.

In header mode the gateway must strip any copy of the header the client sent; see README "API / Identity".

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

import hmac
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from rest_framework import authentication, exceptions

from k8sdm.api import audit, jwks, throttling
from k8sdm.api.addresses import client_address, peer_address, peer_is_trusted
from users_app.models import RefusalKind, User
from users_app.selectors import token_find_live, user_get_by_external_id
from users_app.services import TOKEN_PREFIX, token_digest, token_touch

logger = logging.getLogger(__name__)

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
EXTERNAL_ID_MAX = 128


class MissingIdentity(exceptions.NotAuthenticated):
    default_code = "missing_identity"


class InvalidIdentity(exceptions.AuthenticationFailed):
    default_code = "invalid_identity"


class AmbiguousIdentity(exceptions.AuthenticationFailed):
    default_code = "ambiguous_identity"


class InvalidCredentials(exceptions.AuthenticationFailed):
    default_code = "invalid_credentials"
    default_detail = "The credentials are invalid, expired or revoked."


class TooManyFailures(exceptions.Throttled):
    default_code = "throttled"


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling: the gateway's id, and their User row if they ever wrote anything."""

    external_id: str
    user: User | None
    mode: str = "header"

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


def bearer_of(request) -> str:
    """The credential of `Authorization: Bearer <credential>`, or ''."""
    scheme, _, credential = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def gateway_trusted(request) -> bool:
    """The request came through the trusted gateway: each configured proof holds (and at least one is configured)."""
    proxies, secret = settings.K8SDM_TRUSTED_PROXIES, settings.K8SDM_GATEWAY_SECRET
    if not proxies and not secret:
        return False
    if proxies and not peer_is_trusted(request):
        return False
    if secret:
        sent = request.META.get(header_meta_key(settings.K8SDM_GATEWAY_SECRET_HEADER), "")
        if not hmac.compare_digest(sent.encode(), secret.encode()):
            return False
    return True


class ApiAuthentication(authentication.BaseAuthentication):
    """settings.K8SDM_AUTH_MODES in order; see the module docstring."""

    def authenticate(self, request):
        django_request = request._request
        wait = throttling.auth_failures_wait(django_request)
        if wait is not None:
            self._refuse(django_request, "too_many_failures", "", "too many failed authentications", store=False)
            raise TooManyFailures(wait=wait)
        bearer = bearer_of(django_request)
        untrusted_header = None
        for mode in settings.K8SDM_AUTH_MODES:
            if mode == "header":
                caller = self._header(django_request)
                if isinstance(caller, ApiCaller):
                    return caller, None
                untrusted_header = caller
            elif mode == "token" and bearer.startswith(TOKEN_PREFIX):
                return self._token(django_request, bearer), None
            elif mode == "jwt" and bearer and not bearer.startswith(TOKEN_PREFIX):
                return self._jwt(django_request, bearer), None
        if bearer:
            # A bearer credential no configured mode takes (a token with only jwt mode on, ...).
            self._fail(django_request, "invalid_credentials", "", "bearer credential of a disabled mode")
        if untrusted_header is not None:
            # Someone not the gateway sent an identity: refused like a missing one, but audited.
            self._fail(django_request, "untrusted_identity_header", untrusted_header[:128],
                       f"{settings.K8SDM_USER_HEADER} from a peer that is not a trusted gateway "
                       f"(peer {peer_address(django_request)})", exc=MissingIdentity(self._missing_message()))
        raise MissingIdentity(self._missing_message())

    # --- modes ---

    def _header(self, request) -> ApiCaller | str | None:
        """The caller; None without the header; the claimed id (a str) when the sender is not trusted."""
        header = settings.K8SDM_USER_HEADER
        raw = request.META.get(header_meta_key(header))
        ambiguous = ambiguous_identity_source(request)
        if raw is None and not ambiguous:
            return None
        if not gateway_trusted(request):
            # Not from the gateway: the header means nothing (as if absent), whatever it says.
            return raw or ""
        if ambiguous:
            self._fail(request, "ambiguous_identity", raw or "", ambiguous,
                       exc=AmbiguousIdentity(f"Refused an ambiguous identity: {ambiguous}. Send only {header}."))
        if raw == "":
            return None
        if len(raw) > EXTERNAL_ID_MAX:
            self._fail(request, "invalid_identity", raw[:128], "identity header too long",
                       exc=InvalidIdentity(f"The {header} header must be at most {EXTERNAL_ID_MAX} characters."))
        if not EXTERNAL_ID.match(raw):
            self._fail(request, "invalid_identity", raw[:128], "identity header malformed", exc=InvalidIdentity(
                f"The {header} header must be 1-128 characters of letters, digits and . _ @ : + -"))
        return ApiCaller(external_id=raw, user=user_get_by_external_id(external_id=raw), mode="header")

    def _token(self, request, bearer: str) -> ApiCaller:
        prefix = bearer[len(TOKEN_PREFIX):len(TOKEN_PREFIX) + 8]
        token = token_find_live(digest=token_digest(bearer)) if len(bearer) <= 128 else None
        if token is None:
            self._fail(request, "invalid_credentials", f"token k8sdm_{prefix}...", "unknown, revoked or expired token")
        token_touch(token=token)
        user = token.user
        return ApiCaller(external_id=user.user_external_id, user=user, mode="token")

    def _jwt(self, request, bearer: str) -> ApiCaller:
        try:
            claims = jwks.verify(bearer)
        except jwks.InvalidJwt as exc:
            self._fail(request, "invalid_credentials", jwks.unverified_subject(bearer), str(exc))
        subject = claims.get(settings.K8SDM_JWT_USER_CLAIM)
        if not isinstance(subject, str) or not EXTERNAL_ID.match(subject):
            self._fail(request, "invalid_credentials", str(subject)[:128],
                       f"claim {settings.K8SDM_JWT_USER_CLAIM!r} is not a valid user id")
        return ApiCaller(external_id=subject, user=user_get_by_external_id(external_id=subject), mode="jwt")

    # --- failures ---

    @staticmethod
    def _refuse(request, code: str, claimed: str, reason: str, store: bool = True) -> None:
        audit.refused(
            kind=RefusalKind.AUTHENTICATION, code=code, source_address=client_address(request),
            claimed_identity=claimed, reason=reason, correlation_id=getattr(request, "correlation_id", ""),
            store=store,
        )

    def _fail(self, request, code: str, claimed: str, reason: str, exc: Exception | None = None):
        throttling.auth_failure_count(request)
        self._refuse(request, code, claimed, reason)
        raise exc or InvalidCredentials()

    @staticmethod
    def _missing_message() -> str:
        ways = []
        if "header" in settings.K8SDM_AUTH_MODES:
            ways.append(f"the {settings.K8SDM_USER_HEADER} header through the gateway")
        if "jwt" in settings.K8SDM_AUTH_MODES or "token" in settings.K8SDM_AUTH_MODES:
            ways.append("Authorization: Bearer <credential>")
        return "Authentication required: send " + " or ".join(ways) + "."

    def authenticate_header(self, request) -> str:
        challenges = []
        if "jwt" in settings.K8SDM_AUTH_MODES or "token" in settings.K8SDM_AUTH_MODES:
            challenges.append('Bearer realm="k8sdm"')
        if "header" in settings.K8SDM_AUTH_MODES:
            challenges.append(f'Gateway header="{settings.K8SDM_USER_HEADER}"')
        return ", ".join(challenges)
