"""The identity header: who may call, and what an unknown or malformed id gets."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections

from deployments_app.models import Deployment
from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, config
from users_app.models import User

ENDPOINTS = [
    ("post", CREATE_URL),
    ("patch", "/api/v1/deployments/requests/web"),
    ("delete", "/api/v1/deployments/requests/web"),
    ("get", "/api/v1/requests/"),
    ("get", "/api/v1/requests/some-id"),
    ("get", "/api/v1/deployments/"),
    ("get", "/api/v1/deployments/web"),
]


def _call(client, method, url):
    if method in ("post", "patch"):
        return getattr(client, method)(url, config(), format="json")
    return getattr(client, method)(url)


@pytest.mark.django_db
@pytest.mark.parametrize("method,url", ENDPOINTS)
def test_every_endpoint_refuses_a_caller_without_the_header(client_for, method, url):
    response = _call(client_for(None), method, url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_identity"
    assert "X-User-Id" in response.json()["error"]["message"]
    assert response.json()["error"]["fields"] == {}
    assert response.has_header("WWW-Authenticate")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "user_id,code",
    [
        ("", "missing_identity"),
        ("x" * 129, "invalid_identity"),
        ("has space", "invalid_identity"),
        ("semi;colon", "invalid_identity"),
        ("quote'", "invalid_identity"),
        ("slash/", "invalid_identity"),
        ("ünïcode", "invalid_identity"),
    ],
)
def test_a_malformed_id_is_401_and_nothing_is_stored(client_for, user_id, code):
    response = client_for(user_id).post(CREATE_URL, config(), format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert User.objects.count() == 0
    assert Deployment.objects.count() == 0
    assert DeploymentRequest.objects.count() == 0


@pytest.mark.django_db
def test_the_longest_id_and_all_allowed_characters_are_accepted(client_for):
    user_id = ("aZ0._@:+-" * 15)[:128]
    response = client_for(user_id).post(CREATE_URL, config(), format="json")
    assert response.status_code == 202
    assert User.objects.get().user_external_id == user_id


@pytest.mark.django_db
def test_a_first_write_creates_the_user_in_the_same_transaction(alice):
    assert not User.objects.exists()
    response = alice.post(CREATE_URL, config(), format="json")
    assert response.status_code == 202
    user = User.objects.get(user_external_id="alice@example.com")
    assert DeploymentRequest.objects.get().user == user
    assert Deployment.objects.get().owner == user


@pytest.mark.django_db
def test_reads_by_an_unknown_user_are_empty_and_create_no_user(alice):
    assert alice.get("/api/v1/requests/").json()["results"] == []
    assert alice.get("/api/v1/deployments/").json()["results"] == []
    assert alice.get("/api/v1/deployments/web").status_code == 404
    assert alice.get("/api/v1/requests/nope").status_code == 404
    assert not User.objects.exists()


@pytest.mark.django_db
def test_a_refused_first_write_leaves_no_user_behind(alice, bob):
    assert alice.post(CREATE_URL, config(), format="json").status_code == 202
    response = bob.post(CREATE_URL, config(), format="json")  # identifier taken
    assert response.status_code == 409
    assert not User.objects.filter(user_external_id="bob@example.com").exists()


# --- the underscore variant (X_User_Id) ---------------------------------------------------------


@pytest.mark.django_db
def test_an_underscore_header_a_server_kept_under_its_own_key_is_refused(client):
    # A server that keeps underscore headers under their raw spelling: HTTP_X_User_Id beside the
    # gateway's HTTP_X_USER_ID. We cannot tell which one the gateway set, so neither is trusted.
    response = client.post(
        CREATE_URL, config(), content_type="application/json",
        HTTP_X_USER_ID="alice@example.com", **{"HTTP_X_User_Id": "mallory"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ambiguous_identity"
    assert not DeploymentRequest.objects.exists()


@pytest.mark.django_db
def test_an_underscore_header_joined_with_the_real_one_is_refused(client):
    # What gunicorn --header-map dangerous (and any CGI-style server) does with X-User-Id plus
    # X_User_Id: one META key, both values joined with a comma.
    response = client.get("/api/v1/requests/", HTTP_X_USER_ID="alice@example.com,mallory")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ambiguous_identity"


@pytest.mark.django_db
def test_the_header_repeated_is_refused(client):
    response = client.get("/api/v1/requests/", HTTP_X_USER_ID="alice, alice")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ambiguous_identity"


def _asgi_get(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict]:
    """One GET through Django's ASGI handler with the raw header names an ASGI server passes."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }
    sent = []
    received = []

    async def receive():
        if received:  # the client stays connected until the response is sent
            await asyncio.Event().wait()
        received.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    # As Django's test clients do: keep the test's transaction (and its connection) open.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        async_to_sync(ASGIHandler())(scope, receive, send)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


@pytest.mark.django_db
def test_under_asgi_an_underscore_header_is_refused_by_its_raw_name():
    status, body = _asgi_get("/api/v1/requests/", [(b"host", b"testserver"), (b"x_user_id", b"mallory")])
    assert status == 401
    assert body["error"]["code"] == "ambiguous_identity"


@pytest.mark.django_db
def test_under_asgi_the_dash_header_works():
    status, body = _asgi_get("/api/v1/requests/", [(b"host", b"testserver"), (b"x-user-id", b"alice")])
    assert status == 200
    assert body["results"] == []


@pytest.mark.django_db
def test_the_header_name_is_configurable(client_for, client, settings):
    settings.K8SDM_USER_HEADER = "X-Forwarded-User"
    assert client_for("alice").get("/api/v1/requests/").status_code == 401
    assert client.get("/api/v1/requests/", HTTP_X_FORWARDED_USER="alice").status_code == 200
