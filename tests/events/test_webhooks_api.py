"""/api/v1/webhooks: registering endpoints, the secret shown once, SSRF refusals, other users' 404s."""

from __future__ import annotations

import pytest

from events_app.models import WebhookDelivery, WebhookEndpoint
from tests.api.conftest import *  # noqa: F401,F403 - the API clients

URL = "/api/v1/webhooks"


@pytest.fixture(autouse=True)
def _public_example_host(settings, monkeypatch):
    """hooks.example.test resolves to a public address here (no DNS needed); loopback is not allowed."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "hooks.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", args[0] if args else 443))]
        if host == "rebound.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    settings.K8SDM_WEBHOOK_ALLOWED_NETWORKS = []


def test_it_registers_a_webhook_and_shows_the_secret_only_once(alice):
    response = alice.post(URL, {"url": "https://hooks.example.test/k8sdm", "kinds": ["request.failed"],
                                "identifier": "web"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["status"] == "active" and body["kinds"] == ["request.failed"] and body["identifier"] == "web"
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == body["secret"]
    again = alice.get(f"{URL}/{body['id']}").json()
    assert "secret" not in again and again["url"] == "https://hooks.example.test/k8sdm"
    listed = alice.get(URL).json()["results"]
    assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.0.0.5/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/",
    "http://0.0.0.0/", "https://rebound.example.test/", "ftp://hooks.example.test/", "https://user:pw@hooks.example.test/",
    "not a url", "https:///nohost",
])
def test_it_refuses_urls_that_are_not_public_http(alice, url):
    response = alice.post(URL, {"url": url}, format="json")
    assert response.status_code == 400, url
    assert "url" in response.json()["error"]["fields"]
    assert not WebhookEndpoint.objects.exists()


def test_an_allowed_network_lets_the_operator_reach_an_internal_host(alice, settings):
    settings.K8SDM_WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert alice.post(URL, {"url": "https://rebound.example.test/"}, format="json").status_code == 201
    assert alice.post(URL, {"url": "http://127.0.0.1/"}, format="json").status_code == 400


def test_it_refuses_unknown_kinds_and_bad_identifiers(alice):
    response = alice.post(URL, {"url": "https://hooks.example.test/", "kinds": ["request.exploded"],
                                "identifier": "Not_Valid"}, format="json")
    assert response.status_code == 400
    assert {"kinds[0]", "identifier"} <= set(response.json()["error"]["fields"])


def test_the_number_of_webhooks_per_user_is_bounded(alice, settings):
    settings.K8SDM_WEBHOOK_MAX_PER_USER = 2
    for _ in range(2):
        assert alice.post(URL, {"url": "https://hooks.example.test/"}, format="json").status_code == 201
    response = alice.post(URL, {"url": "https://hooks.example.test/"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "too_many_webhooks"


def test_another_users_webhook_is_404_on_every_endpoint(alice, bob):
    created = alice.post(URL, {"url": "https://hooks.example.test/"}, format="json").json()
    path = f"{URL}/{created['id']}"
    assert bob.get(path).status_code == 404
    assert bob.patch(path, {"active": False}, format="json").status_code == 404
    assert bob.delete(path).status_code == 404
    assert bob.get(f"{path}/deliveries").status_code == 404
    assert bob.get(URL).json()["results"] == []
    assert alice.get(f"{URL}/not-a-uuid").status_code == 404
    assert WebhookEndpoint.objects.get(pk=created["id"]).active


def test_the_owner_changes_pauses_enables_and_deletes_a_webhook(alice):
    created = alice.post(URL, {"url": "https://hooks.example.test/"}, format="json").json()
    path = f"{URL}/{created['id']}"
    paused = alice.patch(path, {"active": False, "kinds": ["deployment.deleted"]}, format="json").json()
    assert paused["status"] == "disabled" and paused["disabled_reason"] == "disabled by its owner"
    assert paused["kinds"] == ["deployment.deleted"]
    assert alice.patch(path, {"url": "http://127.0.0.1/"}, format="json").status_code == 400
    enabled = alice.patch(path, {"active": True}, format="json").json()
    assert enabled["status"] == "active" and enabled["disabled_reason"] == "" and enabled["consecutive_failures"] == 0
    assert alice.delete(path).status_code == 204
    assert alice.get(path).status_code == 404
    assert not WebhookDelivery.objects.exists()
