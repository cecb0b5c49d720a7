"""One JSON error shape everywhere under /api/, /healthz, /readyz and /metrics."""

from __future__ import annotations

import pytest

from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, config

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    if code:
        assert error["code"] == code, error
    return error


def test_unknown_api_path_is_json_404(alice):
    assert_error_shape(alice.get("/api/v1/no/such/thing"), 404, "not_found")
    assert_error_shape(alice.get("/api/nothing"), 404, "not_found")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api", "/api/"])
def test_the_api_root_is_a_json_404_that_points_at_the_index(client, settings, debug, path):
    settings.DEBUG = debug
    error = assert_error_shape(client.get(path), 404, "not_found")
    assert "/api/v1/" in error["message"] and "/api/schema/" in error["message"], error


def test_unknown_path_with_debug_on_is_still_json(alice, settings):
    settings.DEBUG = True
    assert_error_shape(alice.get("/api/v1/no/such/thing"), 404, "not_found")


def test_wrong_method_is_json_405_with_allow(alice):
    response = alice.put(CREATE_URL, config(), format="json")
    assert_error_shape(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]
    assert_error_shape(alice.post("/api/v1/requests/", {}, format="json"), 405)


def test_health_paths_answer_json_405(client):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert_error_shape(client.post(path), 405, "method_not_allowed")


def test_a_body_over_the_limit_is_413_before_parsing(alice, settings):
    settings.K8SDM_MAX_BODY_BYTES = 1024
    response = alice.post(CREATE_URL, config(annotations={"a": "x" * 2000}), format="json")
    error = assert_error_shape(response, 413, "payload_too_large")
    assert "1024" in error["message"]
    assert not DeploymentRequest.objects.exists()


def test_a_body_that_is_not_json_is_415(alice):
    response = alice.post(CREATE_URL, "identifier=web", content_type="application/x-www-form-urlencoded")
    assert_error_shape(response, 415, "unsupported_media_type")
    assert not DeploymentRequest.objects.exists()


def test_asking_for_html_is_406(alice):
    response = alice.get("/api/v1/requests/", HTTP_ACCEPT="text/html")
    assert_error_shape(response, 406, "not_acceptable")


def test_malformed_json_is_400(alice):
    assert_error_shape(alice.post(CREATE_URL, "{", content_type="application/json"), 400, "malformed")


def test_missing_identity_is_401(client):
    assert_error_shape(client.get("/api/v1/requests/"), 401, "missing_identity")


def test_the_rate_limit_is_429_with_retry_after(alice, bob, settings):
    settings.K8SDM_RATE_LIMIT = "3/min"
    for _ in range(3):
        assert alice.get("/api/v1/requests/").status_code == 200
    response = alice.get("/api/v1/requests/")
    assert_error_shape(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    # per user: bob is not limited by alice's calls
    assert bob.get("/api/v1/requests/").status_code == 200
    # writes count too, and a refused write stores nothing
    assert_error_shape(alice.post(CREATE_URL, config(), format="json"), 429)
    assert not DeploymentRequest.objects.exists()


def test_the_rate_limit_can_be_switched_off(alice, settings):
    settings.K8SDM_RATE_LIMIT = ""
    for _ in range(5):
        assert alice.get("/api/v1/requests/").status_code == 200


@pytest.mark.urls("tests.api.crash_urls")
def test_a_crash_in_a_drf_view_is_a_json_500_and_logged(client, caplog):
    response = client.get("/api/v1/crash/drf")
    error = assert_error_shape(response, 500, "internal_error")
    assert "boom" not in error["message"]  # no internals leak
    assert any(r.exc_info and "boom in a DRF view" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.urls("tests.api.crash_urls")
def test_a_crash_in_a_django_view_is_a_json_500(client):
    assert_error_shape(client.get("/api/v1/crash/django"), 500, "internal_error")


def test_non_api_paths_keep_djangos_pages(client):
    response = client.get("/not-api/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_every_response_carries_a_correlation_id(alice, client):
    assert len(alice.get("/api/v1/requests/")["X-Correlation-Id"]) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-1")["X-Correlation-Id"] == "abc-1"
    assert client.get("/api/v1/nothing", HTTP_X_CORRELATION_ID="abc-2")["X-Correlation-Id"] == "abc-2"
