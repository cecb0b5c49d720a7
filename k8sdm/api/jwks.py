"""Verifying bearer JWTs (authentication mode `jwt`) with PyJWT.

Keys come from an OIDC JWKS URL (settings.K8SDM_JWT_JWKS_URL) or a PEM public key file
(K8SDM_JWT_PUBLIC_KEY_FILE). Only asymmetric algorithms from K8SDM_JWT_ALGORITHMS are accepted
(settings refuse `none` and HS*), and each key verifies only the algorithms of its own type, so an
HMAC token "signed" with a public key can never verify. Symmetric (`oct`) keys in a JWKS are ignored.

The JWKS is fetched on first use, kept K8SDM_JWT_JWKS_CACHE_SECONDS, and refetched early when a
token names a key id it does not have (the provider rotated its keys), at most once per
K8SDM_JWT_JWKS_MIN_REFETCH_SECONDS: a flood of tokens with made-up key ids costs one fetch.
A failed refetch keeps the keys already known.

`verify(token)` returns the claims or raises InvalidJwt with the reason, for the log only: the
client is told nothing more than "invalid credentials".
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings

logger = logging.getLogger(__name__)

# Which algorithms a key of each type may verify.
FAMILIES = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512", "ES256K"),
    "OKP": ("EdDSA",),
}
MAX_JWKS_BYTES = 256 * 1024
# After a failed fetch, requests go on with the keys already known for this long before the next try.
RETRY_AFTER_FAILURE_SECONDS = 1.0


class InvalidJwt(Exception):
    """Why a token was refused (for the log)."""


@dataclass
class _KeySet:
    url: str
    keys: dict[str, dict] = field(default_factory=dict)  # kid -> JWK (asymmetric only)
    fetched_at: float = 0.0
    failed_at: float = float("-inf")
    last_refetch: float = float("-inf")  # the last early fetch for an unknown key id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _fetch(self) -> None:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=settings.K8SDM_JWT_JWKS_TIMEOUT_SECONDS) as response:
                document = json.loads(response.read(MAX_JWKS_BYTES + 1)[:MAX_JWKS_BYTES])
            keys = {}
            for jwk in document.get("keys", []):
                if isinstance(jwk, dict) and jwk.get("kty") in FAMILIES and jwk.get("use", "sig") == "sig":
                    keys[str(jwk.get("kid", ""))] = jwk
        except Exception as exc:  # noqa: BLE001 - any failure keeps the keys we had
            logger.warning("fetching the JWKS from %s failed: %s", self.url, exc, exc_info=True)
            self.failed_at = time.monotonic()
            return
        self.keys = keys
        self.fetched_at = time.monotonic()

    def key_for(self, kid: str | None) -> dict:
        with self.lock:
            now = time.monotonic()
            stale = not self.fetched_at or now - self.fetched_at > settings.K8SDM_JWT_JWKS_CACHE_SECONDS
            if stale and now - self.failed_at >= RETRY_AFTER_FAILURE_SECONDS:
                self._fetch()
            if kid is None:
                if len(self.keys) == 1:
                    return next(iter(self.keys.values()))
                raise InvalidJwt("the token has no kid and the JWKS has more than one key")
            if kid not in self.keys and now - self.last_refetch >= settings.K8SDM_JWT_JWKS_MIN_REFETCH_SECONDS:
                logger.info("JWT key id %r is unknown: refetching the JWKS", kid)
                self.last_refetch = now
                self._fetch()
            try:
                return self.keys[kid]
            except KeyError:
                raise InvalidJwt(f"unknown key id {kid!r}") from None


_key_sets: dict[str, _KeySet] = {}
_key_sets_lock = threading.Lock()
_file_keys: dict[str, object] = {}


def key_set(url: str) -> _KeySet:
    with _key_sets_lock:
        if url not in _key_sets:
            _key_sets[url] = _KeySet(url)
        return _key_sets[url]


def reset_key_cache() -> None:
    """Forget every fetched JWKS and loaded key file (tests, and after a settings change)."""
    with _key_sets_lock:
        _key_sets.clear()
        _file_keys.clear()


def _file_key(path: str):
    if path not in _file_keys:
        with open(path, "rb") as handle:
            _file_keys[path] = load_pem_public_key(handle.read())
    return _file_keys[path]


def _family_of(public_key) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "OKP"
    return ""


def _key_and_algorithm(header: dict):
    alg = header.get("alg")
    allowed = settings.K8SDM_JWT_ALGORITHMS
    if not isinstance(alg, str) or alg not in allowed:
        raise InvalidJwt(f"algorithm {alg!r} is not allowed (allowed: {', '.join(allowed)})")
    if settings.K8SDM_JWT_JWKS_URL:
        kid = header.get("kid")
        jwk = key_set(settings.K8SDM_JWT_JWKS_URL).key_for(kid if isinstance(kid, str) else None)
        if alg not in FAMILIES[jwk["kty"]] or jwk.get("alg", alg) != alg:
            raise InvalidJwt(f"algorithm {alg!r} does not match the key {kid!r}")
        try:
            return jwt.PyJWK(jwk, algorithm=alg), alg
        except jwt.PyJWKError as exc:
            raise InvalidJwt(f"the JWKS key {kid!r} is unusable: {exc}") from exc
    if settings.K8SDM_JWT_PUBLIC_KEY_FILE:
        public_key = _file_key(settings.K8SDM_JWT_PUBLIC_KEY_FILE)
        if alg not in FAMILIES.get(_family_of(public_key), ()):
            raise InvalidJwt(f"algorithm {alg!r} does not match the public key's type")
        return public_key, alg
    raise InvalidJwt("jwt mode has neither K8SDM_JWT_JWKS_URL nor K8SDM_JWT_PUBLIC_KEY_FILE")


def verify(token: str) -> dict:
    """The verified claims of `token`, or InvalidJwt."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidJwt(f"malformed token: {exc}") from exc
    key, alg = _key_and_algorithm(header)
    required = ["exp", settings.K8SDM_JWT_USER_CLAIM]
    if settings.K8SDM_JWT_ISSUER:
        required.append("iss")
    if settings.K8SDM_JWT_AUDIENCE:
        required.append("aud")
    try:
        return jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            issuer=settings.K8SDM_JWT_ISSUER or None,
            audience=settings.K8SDM_JWT_AUDIENCE or None,
            leeway=settings.K8SDM_JWT_LEEWAY_SECONDS,
            options={"require": required, "verify_aud": bool(settings.K8SDM_JWT_AUDIENCE)},
        )
    except jwt.PyJWTError as exc:
        raise InvalidJwt(f"{type(exc).__name__}: {exc}") from exc


def unverified_subject(token: str) -> str:
    """The user claim the token asserts, unverified, for the audit log of a refused token."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    value = claims.get(settings.K8SDM_JWT_USER_CLAIM) if isinstance(claims, dict) else None
    return value[:128] if isinstance(value, str) else ""
