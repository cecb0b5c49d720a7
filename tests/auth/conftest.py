"""Fixtures of the authentication tests: a real JWKS endpoint (RSA and EC keys made here),
JWT minting, clients with a chosen peer address, a clean rate-limit cache."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.cache import cache
from rest_framework.test import APIClient

from k8sdm.api import jwks
from tests.auth.jwks_server import JwksServer

ISSUER = "https://idp.example.test/realms/k8sdm"
AUDIENCE = "k8sdm-api"
_OWN_KID = object()


class SigningKey:
    def __init__(self, kind: str, kid: str):
        self.kind, self.kid = kind, kid
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            self.jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk.update(kid=kid, use="sig", alg=self.alg)

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, *, sub: str | None = "alice@example.com", kid=_OWN_KID, headers: dict | None = None,
             **claims) -> str:
        """A JWT signed by this key; claims given as None are left out, kid=None leaves out the kid."""
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
        if sub is not None:
            payload["sub"] = sub
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        header = dict(headers or {})
        kid = self.kid if kid is _OWN_KID else kid
        if kid is not None:
            header["kid"] = kid
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=header)


@pytest.fixture(scope="session")
def rsa_key():
    return SigningKey("RSA", "rsa-1")


@pytest.fixture(scope="session")
def ec_key():
    return SigningKey("EC", "ec-1")


@pytest.fixture
def jwks_server(rsa_key, ec_key):
    server = JwksServer().start()
    server.serve(rsa_key, ec_key)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean_auth_state():
    cache.clear()
    jwks.reset_key_cache()
    yield
    cache.clear()
    jwks.reset_key_cache()


@pytest.fixture
def jwt_mode(settings, jwks_server):
    settings.K8SDM_AUTH_MODES = ["jwt"]
    settings.K8SDM_JWT_JWKS_URL = jwks_server.url
    settings.K8SDM_JWT_ISSUER = ISSUER
    settings.K8SDM_JWT_AUDIENCE = AUDIENCE
    settings.K8SDM_JWT_ALGORITHMS = ["RS256", "ES256"]
    settings.K8SDM_JWT_LEEWAY_SECONDS = 30
    settings.K8SDM_JWT_JWKS_MIN_REFETCH_SECONDS = 300
    return jwks_server


@pytest.fixture
def bearer():
    """bearer(credential, remote_addr=...) -> an APIClient sending Authorization: Bearer <credential>."""

    def make(credential: str, remote_addr: str = "127.0.0.1") -> APIClient:
        client = APIClient(REMOTE_ADDR=remote_addr)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
        return client

    return make


@pytest.fixture
def caller():
    """caller(user_id, remote_addr=..., **headers) -> an APIClient sending X-User-Id from that address."""

    def make(user_id: str | None, remote_addr: str = "127.0.0.1", **extra) -> APIClient:
        client = APIClient(REMOTE_ADDR=remote_addr)
        headers = dict(extra)
        if user_id is not None:
            headers["HTTP_X_USER_ID"] = user_id
        client.credentials(**headers)
        return client

    return make
