"""Fixtures for the API tests: a client per caller id, a clean throttle, a valid config."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

CREATE_URL = "/api/v1/deployments/requests/create"


def change_url(identifier: str) -> str:
    return f"/api/v1/deployments/requests/{identifier}"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client_for():
    """client_for("alice") -> an APIClient that sends X-User-Id: alice (None: no header)."""

    def make(user_id: str | None) -> APIClient:
        client = APIClient()
        if user_id is not None:
            client.credentials(HTTP_X_USER_ID=user_id)
        return client

    return make


@pytest.fixture
def alice(client_for, db):
    return client_for("alice@example.com")


@pytest.fixture
def bob(client_for, db):
    return client_for("bob@example.com")


def config(identifier: str = "web", **overrides) -> dict:
    body = {"identifier": identifier, "image": "nginx:1.27"}
    body.update(overrides)
    return body


@pytest.fixture
def created(alice):
    """alice's CREATE of `web`, accepted."""
    response = alice.post(CREATE_URL, config(request_id="create-web"), format="json")
    assert response.status_code == 202, response.json()
    return response.json()


@pytest.fixture
def unreachable_nats(settings):
    """A request publisher to a closed port installed for the test (the real one back after)."""
    from devstack._proc import free_port
    from tests.stack import own_publisher

    url = f"nats://127.0.0.1:{free_port()}"
    settings.K8SDM_NATS_CONNECT_TIMEOUT = 0.5
    with own_publisher(url):
        yield url
