"""/healthz, /readyz, /metrics, the OpenAPI schema and the docs page."""

from __future__ import annotations

import pytest
import yaml
from django.db import connection

from tests.api.conftest import CREATE_URL, config

pytestmark = pytest.mark.django_db


def test_healthz_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_postgres_and_nats_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "nats": "ok"}}


def test_readyz_is_503_naming_nats_when_it_is_unreachable(client, unreachable_nats):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "not_ready"
    assert "nats" in body["error"]["message"]
    assert list(body["error"]["fields"]) == ["nats"]
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["nats"] != "ok"


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_postgres_when_it_is_unreachable(client, settings):
    connection.close()
    real = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real
    assert response.status_code == 503
    assert "postgres" in response.json()["error"]["fields"]


def test_metrics_count_requests_by_route_and_accepted_requests_by_action(alice, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alice.post(CREATE_URL, config(), format="json")
    alice.get("/api/v1/requests/")
    alice.get("/api/v1/deployments/web")
    text = client.get("/metrics").content.decode()
    assert 'k8sdm_http_requests_total{method="POST",route="/api/v1/deployments/requests/create",status="202"}' in text
    assert 'route="/api/v1/deployments/<str:identifier>"' in text  # the pattern, never the raw path
    assert "k8sdm_http_request_duration_seconds_bucket" in text
    assert 'k8sdm_api_requests_accepted_total{action="CREATE"}' in text


def test_the_schema_describes_every_endpoint_the_identity_header_and_the_error_shape(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    assert set(paths) == {
        "/api/v1/deployments/requests/create", "/api/v1/deployments/requests/{identifier}",
        "/api/v1/requests/", "/api/v1/requests/{request_id}",
        "/api/v1/deployments/", "/api/v1/deployments/{identifier}",
        "/api/v1/tokens/", "/api/v1/tokens/{id}",
        "/api/v1/webhooks", "/api/v1/webhooks/{webhook_id}", "/api/v1/webhooks/{webhook_id}/deliveries",
        "/api/v1/deployments/{identifier}/diagnosis", "/api/v1/deployments/{identifier}/logs",
        "/api/v1/deployments/requests/{identifier}/rollback", "/api/v1/deployments/requests/{identifier}/restart",
        "/api/v1/deployments/{identifier}/revisions", "/api/v1/deployments/{identifier}/revisions/{number}",
        "/api/v1/events",
    }
    assert schema["components"]["securitySchemes"]["GatewayUserId"] == {
        "type": "apiKey", "in": "header", "name": "X-User-Id",
        "description": schema["components"]["securitySchemes"]["GatewayUserId"]["description"],
    }
    assert "Error" in schema["components"]["schemas"]
    create = paths["/api/v1/deployments/requests/create"]["post"]
    assert {"202", "200", "400", "401", "409", "413", "415", "429"} <= set(create["responses"])
    assert create["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert create["security"] == [{"GatewayUserId": []}, {"Bearer": []}]
    for path, operations in paths.items():
        for method, operation in operations.items():
            errors = [code for code in operation["responses"] if code.startswith(("4", "5"))]
            assert errors, (path, method)
            for code in errors:
                ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/Error"), (path, method, code)


def test_the_docs_page_is_served_without_internet(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html
    assert client.get("/api/redoc/").status_code == 200


def test_metrics_in_multiprocess_mode_read_the_shared_directory(client, settings, tmp_path):
    settings.K8SDM_PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
