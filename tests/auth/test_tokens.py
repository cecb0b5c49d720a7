"""Authentication mode `token`: personal API tokens, created by users (API) and staff (admin)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import User as StaffUser
from django.utils import timezone

from tests.api.conftest import CREATE_URL, config
from users_app.models import ApiToken, User
from users_app.services import token_create

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/tokens/"
DEPLOYMENTS = "/api/v1/deployments/"


@pytest.fixture(autouse=True)
def token_mode(settings):
    settings.K8SDM_AUTH_MODES = ["header", "token"]


def create_token(client, name="ci", **extra):
    response = client.post(TOKENS, {"name": name, **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_creation_shows_the_secret_once_and_the_database_holds_only_its_hash(caller):
    alice = caller("alice@example.com")
    created = create_token(alice, expires_in_days=30)
    secret = created["token"]
    assert secret.startswith("k8sdm_") and len(secret) > 40
    assert created["token_prefix"] == secret[:14]
    row = ApiToken.objects.get()
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(getattr(row, f.attname)) for f in ApiToken._meta.concrete_fields)
    assert secret not in stored and secret[6:] not in stored
    assert timedelta(days=29) < row.expires_at - timezone.now() <= timedelta(days=30)
    listed = alice.get(TOKENS).json()["results"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0] and secret not in str(listed)


def test_a_token_authenticates_its_user_and_records_its_use_cheaply(caller, bearer, settings):
    secret = create_token(caller("alice@example.com"))["token"]
    client = bearer(secret)
    response = client.post(CREATE_URL, config(), format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["links"]["self"].startswith("/api/v1/requests/")
    first_use = ApiToken.objects.get().last_used_at
    assert first_use is not None
    assert client.get(DEPLOYMENTS).json()["results"][0]["identifier"] == "web"
    assert ApiToken.objects.get().last_used_at == first_use  # within K8SDM_TOKEN_TOUCH_SECONDS: no write
    settings.K8SDM_TOKEN_TOUCH_SECONDS = 0
    client.get(DEPLOYMENTS)
    assert ApiToken.objects.get().last_used_at > first_use


def assert_401(response):
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "invalid_credentials",
                                         "message": "The credentials are invalid, expired or revoked.", "fields": {}}}
    assert "Bearer" in response["WWW-Authenticate"]


def test_a_revoked_token_is_401(caller, bearer):
    alice = caller("alice@example.com")
    created = create_token(alice)
    assert bearer(created["token"]).get(DEPLOYMENTS).status_code == 200
    assert alice.delete(f"{TOKENS}{created['id']}").status_code == 204
    assert_401(bearer(created["token"]).get(DEPLOYMENTS))
    assert alice.get(TOKENS).json()["results"][0]["revoked"] is True


def test_an_expired_token_is_401(bearer):
    user = User.objects.create(user_external_id="alice@example.com")
    issued = token_create(user=user, name="old", expires_at=timezone.now() - timedelta(seconds=1), created_by="t")
    assert_401(bearer(issued.secret).get(DEPLOYMENTS))


@pytest.mark.parametrize("secret", ["k8sdm_", "k8sdm_nope", "k8sdm_" + "A" * 43, "k8sdm_" + "x" * 5000])
def test_unknown_tokens_are_401(bearer, secret):
    assert_401(bearer(secret).get(DEPLOYMENTS))


def test_one_user_cannot_list_or_revoke_anothers_token(caller, bearer):
    alice, bob = caller("alice@example.com"), caller("bob@example.com")
    created = create_token(alice)
    create_token(bob, name="bobs")
    assert [t["name"] for t in bob.get(TOKENS).json()["results"]] == ["bobs"]
    response = bob.delete(f"{TOKENS}{created['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert bearer(created["token"]).get(DEPLOYMENTS).status_code == 200
    assert caller("carol@example.com").delete(f"{TOKENS}{created['id']}").status_code == 404
    response = caller("carol@example.com").delete(f"{TOKENS}nonsense")
    assert response.status_code == 400 and "id" in response.json()["error"]["fields"]


def test_a_token_cannot_create_tokens(caller, bearer):
    secret = create_token(caller("alice@example.com"))["token"]
    response = bearer(secret).post(TOKENS, {"name": "child"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "token_cannot_create_tokens"
    assert ApiToken.objects.count() == 1


def test_token_input_is_validated_and_the_live_count_is_bounded(caller, settings):
    alice = caller("alice@example.com")
    for body, field in [({}, "name"), ({"name": "x" * 101}, "name"), ({"name": "ok", "expires_in_days": 0},
                        "expires_in_days"), ({"name": "ok", "expires_in_days": 100000}, "expires_in_days"),
                        ({"name": "ok", "secret": "mine"}, "secret"), ({"name": 0}, "name"),
                        ({"name": "ok", "expires_in_days": "3"}, "expires_in_days")]:
        response = alice.post(TOKENS, body, format="json")
        assert response.status_code == 400, body
        assert field in response.json()["error"]["fields"], response.json()
    settings.K8SDM_TOKEN_MAX_PER_USER = 2
    create_token(alice, "a")
    create_token(alice, "b")
    response = alice.post(TOKENS, {"name": "c"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "too_many_tokens"


def test_a_token_of_a_disabled_mode_is_401(settings, caller, bearer):
    secret = create_token(caller("alice@example.com"))["token"]
    settings.K8SDM_AUTH_MODES = ["header"]
    response = bearer(secret).get(DEPLOYMENTS)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_credentials"
    assert response["WWW-Authenticate"] == 'Gateway header="X-User-Id"'


def test_staff_create_a_token_in_the_admin_see_it_once_and_revoke_it(client, bearer):
    staff = StaffUser.objects.create_superuser("ops", "ops@example.com", "pw-ops-123456")
    client.force_login(staff)
    user = User.objects.create(user_external_id="dave@example.com")
    response = client.post("/admin/users_app/apitoken/add/", {"user": user.pk, "name": "deploy-bot"}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    secret = next(m.split(": ", 1)[1] for m in shown if "k8sdm_" in m)
    token = ApiToken.objects.get()
    assert token.created_by == "ops" and token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert bearer(secret).get(DEPLOYMENTS).status_code == 200
    page = client.get(f"/admin/users_app/apitoken/{token.pk}/change/").content.decode()
    assert secret not in page and f"k8sdm_{token.prefix}" in page
    response = client.post("/admin/users_app/apitoken/", {"action": "revoke", "_selected_action": [token.pk]},
                           follow=True)
    assert response.status_code == 200
    assert_401(bearer(secret).get(DEPLOYMENTS))
