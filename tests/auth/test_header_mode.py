"""Authentication mode `header`: the identity header counts only when it comes through the gateway."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from deployments_app.models import Deployment
from k8sdm.api.addresses import client_address
from tests.api.conftest import CREATE_URL, config
from users_app.models import User

pytestmark = pytest.mark.django_db

SECRET = "s3cret-only-the-gateway-knows-0123456789"


def assert_ignored(response):
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_identity"
    assert "X-User-Id" in response["WWW-Authenticate"]
    assert not User.objects.exists() and not Deployment.objects.exists()


def test_from_a_trusted_proxy_address_the_header_works_as_before(caller, settings):
    settings.K8SDM_TRUSTED_PROXIES = ["10.20.0.0/16"]
    response = caller("alice@example.com", remote_addr="10.20.3.4").post(CREATE_URL, config(), format="json")
    assert response.status_code == 202
    assert Deployment.objects.get().owner.user_external_id == "alice@example.com"


def test_from_an_untrusted_address_the_header_is_ignored(caller, settings):
    settings.K8SDM_TRUSTED_PROXIES = ["10.20.0.0/16"]
    for address in ("10.21.0.1", "127.0.0.1", "192.168.1.9", "::1"):
        assert_ignored(caller("alice@example.com", remote_addr=address).post(CREATE_URL, config(), format="json"))


def test_with_a_gateway_secret_the_header_needs_the_secret(caller, settings):
    settings.K8SDM_TRUSTED_PROXIES = []
    settings.K8SDM_GATEWAY_SECRET = SECRET
    assert_ignored(caller("alice@example.com", remote_addr="10.0.0.1").post(CREATE_URL, config(), format="json"))
    for wrong in ("", "nope", SECRET[:-1], SECRET + "x", SECRET.upper()):
        client = caller("alice@example.com", remote_addr="10.0.0.1", HTTP_X_GATEWAY_SECRET=wrong)
        assert_ignored(client.post(CREATE_URL, config(), format="json"))
    client = caller("alice@example.com", remote_addr="10.0.0.1", HTTP_X_GATEWAY_SECRET=SECRET)
    assert client.post(CREATE_URL, config(), format="json").status_code == 202


def test_with_both_configured_both_must_hold(caller, settings):
    settings.K8SDM_TRUSTED_PROXIES = ["10.20.0.0/16"]
    settings.K8SDM_GATEWAY_SECRET = SECRET
    settings.K8SDM_GATEWAY_SECRET_HEADER = "X-Proxy-Auth"
    assert_ignored(caller("alice@example.com", remote_addr="10.20.0.5").get("/api/v1/deployments/"))
    assert_ignored(caller("alice@example.com", remote_addr="10.99.0.5", HTTP_X_PROXY_AUTH=SECRET)
                   .get("/api/v1/deployments/"))
    assert caller("alice@example.com", remote_addr="10.20.0.5", HTTP_X_PROXY_AUTH=SECRET) \
        .get("/api/v1/deployments/").status_code == 200


def test_with_neither_configured_the_header_is_never_trusted(caller, settings):
    settings.K8SDM_TRUSTED_PROXIES = []
    settings.K8SDM_GATEWAY_SECRET = ""
    assert_ignored(caller("alice@example.com").post(CREATE_URL, config(), format="json"))


def test_an_identity_header_from_an_untrusted_address_is_audited_on_the_claimed_users_page(caller, settings):
    from users_app.models import Refusal

    settings.K8SDM_TRUSTED_PROXIES = ["10.20.0.0/16"]
    User.objects.create(user_external_id="alice@example.com")
    response = caller("alice@example.com", remote_addr="203.0.113.7").get("/api/v1/deployments/")
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_identity"
    refusal = Refusal.objects.get()
    assert (refusal.user.user_external_id, refusal.code, refusal.source_address) == (
        "alice@example.com", "untrusted_identity_header", "203.0.113.7")


def test_an_untrusted_malformed_header_is_ignored_not_described(caller, settings):
    settings.K8SDM_TRUSTED_PROXIES = ["10.20.0.0/16"]
    response = caller("bad id;", remote_addr="203.0.113.7").get("/api/v1/deployments/")
    assert response.json()["error"]["code"] == "missing_identity"


def test_the_client_address_is_taken_from_x_forwarded_for_only_behind_a_trusted_proxy(settings):
    settings.K8SDM_TRUSTED_PROXIES = ["10.20.0.0/16"]
    rf = RequestFactory()

    def address(remote, forwarded=None):
        extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
        return client_address(rf.get("/", REMOTE_ADDR=remote, **extra))

    assert address("203.0.113.7", "1.2.3.4") == "203.0.113.7"  # a client's own XFF means nothing
    assert address("10.20.0.1", "198.51.100.9") == "198.51.100.9"
    assert address("10.20.0.1", "1.2.3.4, 198.51.100.9") == "198.51.100.9"  # the left part is the client's word
    assert address("10.20.0.1", "198.51.100.9, 10.20.0.7") == "198.51.100.9"  # proxies chained
    assert address("10.20.0.1", "not-an-ip") == "10.20.0.1"
    assert address("10.20.0.1") == "10.20.0.1"


def test_too_many_failed_authentications_from_one_address_get_429(caller, bearer, settings):
    settings.K8SDM_AUTH_MODES = ["header", "token"]
    settings.K8SDM_AUTH_FAILURE_LIMIT = "3/day"
    for _ in range(3):
        assert bearer("k8sdm_guess", remote_addr="127.0.0.5").get("/api/v1/deployments/").status_code == 401
    response = bearer("k8sdm_guess", remote_addr="127.0.0.5").get("/api/v1/deployments/")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    # Even a good credential waits from that address; other addresses are not affected.
    assert caller("alice@example.com", remote_addr="127.0.0.5").get("/api/v1/deployments/").status_code == 429
    assert caller("alice@example.com", remote_addr="127.0.0.6").get("/api/v1/deployments/").status_code == 200
