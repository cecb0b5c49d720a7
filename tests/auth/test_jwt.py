"""Authentication mode `jwt` against a real JWKS endpoint served by the test (RSA and EC keys)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from prometheus_client import REGISTRY

from deployments_app.models import Deployment
from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, config
from tests.auth.conftest import AUDIENCE, ISSUER, SigningKey
from users_app.models import Refusal, User

pytestmark = pytest.mark.django_db

DEPLOYMENTS = "/api/v1/deployments/"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, payload: dict) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


def claims(**extra) -> dict:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory@example.com", "iat": now, "exp": now + 300, **extra}


def assert_refused(response):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body == {"error": {"code": "invalid_credentials", "message": "The credentials are invalid, expired or revoked.",
                              "fields": {}}}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_rsa_token_is_accepted_and_its_first_write_creates_the_user(jwt_mode, rsa_key, bearer):
    response = bearer(rsa_key.sign(sub="alice@example.com")).post(CREATE_URL, config(), format="json")
    assert response.status_code == 202, response.json()
    user = User.objects.get(user_external_id="alice@example.com")
    assert DeploymentRequest.objects.get().user == user


def test_a_valid_ec_token_is_accepted(jwt_mode, ec_key, bearer):
    response = bearer(ec_key.sign(sub="erin@example.com")).post(CREATE_URL, config("ec"), format="json")
    assert response.status_code == 202, response.json()
    assert Deployment.objects.get().owner.user_external_id == "erin@example.com"


def test_the_user_id_comes_from_the_configured_claim(jwt_mode, settings, rsa_key, bearer):
    settings.K8SDM_JWT_USER_CLAIM = "preferred_username"
    token = rsa_key.sign(sub="opaque-uuid", preferred_username="carol")
    assert bearer(token).post(CREATE_URL, config(), format="json").status_code == 202
    assert list(User.objects.values_list("user_external_id", flat=True)) == ["carol"]


@pytest.mark.parametrize(
    "case,overrides",
    [
        ("expired", {"exp": -120}),
        ("not yet valid", {"nbf": 120}),
        ("wrong issuer", {"iss": "https://evil.example.test"}),
        ("wrong audience", {"aud": "another-service"}),
        ("no audience", {"aud": None}),
        ("no expiry", {"exp": None}),
        ("no subject", {"sub": None}),
        ("a subject that is no user id", {"sub": "has space"}),
    ],
)
def test_a_token_that_fails_a_claim_check_is_401_and_stores_nothing(jwt_mode, rsa_key, bearer, case, overrides):
    overrides = dict(overrides)
    sub = overrides.pop("sub", "alice@example.com")
    for claim in ("exp", "nbf"):  # seconds from now, computed when the test runs
        if overrides.get(claim) is not None:
            overrides[claim] += int(time.time())
    response = bearer(rsa_key.sign(sub=sub, **overrides)).post(CREATE_URL, config(), format="json")
    assert_refused(response)
    assert not User.objects.exists() and not Deployment.objects.exists()


def test_expiry_and_not_before_allow_the_configured_leeway(jwt_mode, rsa_key, bearer):
    now = int(time.time())
    assert bearer(rsa_key.sign(exp=now - 10)).get(DEPLOYMENTS).status_code == 200
    assert bearer(rsa_key.sign(nbf=now + 10)).get(DEPLOYMENTS).status_code == 200


def test_a_tampered_signature_or_payload_is_401(jwt_mode, rsa_key, bearer):
    header, payload, signature = rsa_key.sign().split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    assert_refused(bearer(f"{header}.{payload}.{flipped}").get(DEPLOYMENTS))
    other = b64(json.dumps(claims(sub="admin")).encode())
    assert_refused(bearer(f"{header}.{other}.{signature}").get(DEPLOYMENTS))


def test_alg_none_is_401(jwt_mode, rsa_key, bearer):
    for alg in ("none", "None", "NONE"):
        token = unsigned({"alg": alg, "typ": "JWT", "kid": rsa_key.kid}, claims()) + "."
        assert_refused(bearer(token).post(CREATE_URL, config(), format="json"))
    assert not User.objects.exists()


def test_an_hmac_token_signed_with_the_public_key_is_401(jwt_mode, settings, rsa_key, bearer, tmp_path):
    for kid in (rsa_key.kid, None):
        header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
        signing_input = unsigned(header, claims())
        for secret in (rsa_key.public_pem(), json.dumps(rsa_key.jwk).encode()):
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            assert_refused(bearer(f"{signing_input}.{b64(mac)}").get(DEPLOYMENTS))
    # The same with a PEM public key file instead of a JWKS.
    key_file = tmp_path / "public.pem"
    key_file.write_bytes(rsa_key.public_pem())
    settings.K8SDM_JWT_JWKS_URL = ""
    settings.K8SDM_JWT_PUBLIC_KEY_FILE = str(key_file)
    signing_input = unsigned({"alg": "HS256", "typ": "JWT"}, claims())
    mac = hmac.new(rsa_key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    assert_refused(bearer(f"{signing_input}.{b64(mac)}").get(DEPLOYMENTS))
    assert bearer(rsa_key.sign(kid=None)).get(DEPLOYMENTS).status_code == 200


def test_an_algorithm_outside_the_allow_list_is_401_even_with_a_good_signature(jwt_mode, settings, ec_key, bearer):
    settings.K8SDM_JWT_ALGORITHMS = ["RS256"]
    assert_refused(bearer(ec_key.sign()).get(DEPLOYMENTS))


def test_a_key_cannot_verify_another_key_types_algorithm(jwt_mode, rsa_key, ec_key, bearer):
    # An EC signature presented under the RSA key's kid.
    token = ec_key.sign(kid=rsa_key.kid)
    assert_refused(bearer(token).get(DEPLOYMENTS))


def test_an_unknown_kid_refetches_the_jwks_once_then_is_401(jwt_mode, rsa_key, bearer):
    assert bearer(rsa_key.sign()).get(DEPLOYMENTS).status_code == 200
    assert jwt_mode.hits == 1
    stranger = SigningKey("RSA", "not-published")
    assert_refused(bearer(stranger.sign()).get(DEPLOYMENTS))
    assert jwt_mode.hits == 2
    # More made-up kids within K8SDM_JWT_JWKS_MIN_REFETCH_SECONDS cost no fetch at all.
    for i in range(5):
        assert_refused(bearer(stranger.sign(kid=f"made-up-{i}")).get(DEPLOYMENTS))
    assert jwt_mode.hits == 2
    # Known keys are still served from the cache.
    assert bearer(rsa_key.sign()).get(DEPLOYMENTS).status_code == 200
    assert jwt_mode.hits == 2


def test_key_rotation_new_key_accepted_after_one_refetch_and_the_retired_key_refused(jwt_mode, rsa_key, bearer):
    assert bearer(rsa_key.sign()).get(DEPLOYMENTS).status_code == 200
    new_key = SigningKey("RSA", "rsa-2")
    jwt_mode.serve(new_key)  # the provider rotates: rsa-1 retired, rsa-2 published
    assert bearer(new_key.sign(sub="after-rotation")).post(CREATE_URL, config(), format="json").status_code == 202
    assert jwt_mode.hits == 2
    # The refetch replaced the key set: the retired key no longer verifies anything.
    assert_refused(bearer(rsa_key.sign()).get(DEPLOYMENTS))
    assert jwt_mode.hits == 2


def test_the_jwks_is_refetched_when_its_cache_time_is_over(jwt_mode, settings, rsa_key, bearer):
    settings.K8SDM_JWT_JWKS_CACHE_SECONDS = 0
    assert bearer(rsa_key.sign()).get(DEPLOYMENTS).status_code == 200
    jwt_mode.serve()  # every key withdrawn
    assert_refused(bearer(rsa_key.sign()).get(DEPLOYMENTS))


def test_an_unreachable_jwks_endpoint_is_401_not_500(jwt_mode, settings, rsa_key, bearer):
    jwt_mode.stop()
    assert_refused(bearer(rsa_key.sign()).get(DEPLOYMENTS))


def test_a_refused_token_is_audited_with_the_claimed_identity_and_address(jwt_mode, rsa_key, bearer):
    User.objects.create(user_external_id="victim@example.com")
    before = REGISTRY.get_sample_value(
        "k8sdm_api_refusals_total", {"kind": "authentication", "code": "invalid_credentials"}) or 0
    assert_refused(bearer(rsa_key.sign(sub="victim@example.com", aud="x"), remote_addr="127.0.0.9").get(DEPLOYMENTS))
    refusal = Refusal.objects.get()
    assert refusal.user.user_external_id == "victim@example.com"
    assert (refusal.kind, refusal.code, refusal.source_address) == ("authentication", "invalid_credentials",
                                                                   "127.0.0.9")
    assert "audience" in refusal.detail.lower()
    assert REGISTRY.get_sample_value(
        "k8sdm_api_refusals_total", {"kind": "authentication", "code": "invalid_credentials"}) == before + 1


def test_header_mode_is_off_when_only_jwt_is_configured(jwt_mode, caller):
    response = caller("alice@example.com").get(DEPLOYMENTS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_identity"
