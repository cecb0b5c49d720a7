"""CREATE, UPDATE and DELETE requests: status, body, and the rows in Postgres."""

from __future__ import annotations

import pytest

from deployments_app.models import Deployment, DeploymentStatus
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from tests import factories
from tests.api.conftest import CREATE_URL, change_url, config

pytestmark = pytest.mark.django_db

FULL_CONFIG = {
    "identifier": "web",
    "namespace": "default",
    "image": "registry.example.com/team/web:1.2.3",
    "replicas": 2,
    "labels": {"tier": "frontend", "example.com/team": "a"},
    "annotations": {"description": "the web tier"},
    "env": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY"}],
    "ports": [{"name": "http", "container_port": 8080}, {"container_port": 53, "protocol": "UDP"}],
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "command": ["/bin/web"],
    "args": ["--port", "8080"],
}

EXPECTED_FULL = {
    **FULL_CONFIG,
    "env": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY", "value": ""}],
    "ports": [
        {"name": "http", "container_port": 8080, "protocol": "TCP"},
        {"name": "", "container_port": 53, "protocol": "UDP"},
    ],
}

DEFAULTS = {
    "namespace": "default", "replicas": 1, "labels": {}, "annotations": {}, "env": [], "ports": [],
    "resources": {}, "command": [], "args": [],
}


# --- CREATE ------------------------------------------------------------------------------------


def test_create_answers_202_with_the_request_and_stores_it_with_an_initiated_deployment(alice):
    response = alice.post(CREATE_URL, {**FULL_CONFIG, "request_id": "r-1"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["request_id"] == "r-1"
    assert body["action"] == "CREATE"
    assert body["status"] == "CREATED"
    assert body["config"] == EXPECTED_FULL
    assert body["links"] == {"self": "/api/v1/requests/r-1", "deployment": "/api/v1/deployments/web"}
    assert response["X-Correlation-Id"] == body["correlation_id"]

    req = DeploymentRequest.objects.get()
    assert req.pk == body["id"]
    assert (req.action, req.status, req.identifier, req.namespace) == ("CREATE", "CREATED", "web", "default")
    assert req.config == EXPECTED_FULL
    assert req.payload == FULL_CONFIG  # what the client sent, request_id aside
    assert req.published_at is None  # in the outbox until JetStream acks
    assert len(req.payload_hash) == 64
    deployment = Deployment.objects.get()
    assert deployment.status == DeploymentStatus.INITIATED
    assert deployment.desired_config == EXPECTED_FULL
    assert req.deployment == deployment
    assert deployment.owner.user_external_id == "alice@example.com"


def test_create_fills_the_defaults(alice):
    response = alice.post(CREATE_URL, config(), format="json")
    assert response.status_code == 202
    assert response.json()["config"] == {"identifier": "web", "image": "nginx:1.27", **DEFAULTS}
    assert Deployment.objects.get().desired_config == response.json()["config"]


def test_create_uses_the_configured_default_namespace(alice, settings):
    settings.K8SDM_DEFAULT_NAMESPACE = "apps"
    settings.K8SDM_ALLOWED_NAMESPACES = ["default", "apps"]
    response = alice.post(CREATE_URL, config(), format="json")
    assert response.json()["config"]["namespace"] == "apps"
    assert Deployment.objects.get().namespace == "apps"


def test_create_generates_a_request_id_when_none_is_given(alice):
    body = alice.post(CREATE_URL, config(), format="json").json()
    assert len(body["request_id"]) == 32
    int(body["request_id"], 16)


def test_create_takes_the_request_id_from_the_idempotency_key_header(alice):
    response = alice.post(CREATE_URL, config(), format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert response.json()["request_id"] == "key-1"


def test_create_refuses_a_body_request_id_that_differs_from_the_header(alice):
    response = alice.post(CREATE_URL, config(request_id="a"), format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "request_id_mismatch"
    assert "request_id" in response.json()["error"]["fields"]
    assert not DeploymentRequest.objects.exists()


def test_create_refuses_a_malformed_idempotency_key(alice):
    response = alice.post(CREATE_URL, config(), format="json", HTTP_IDEMPOTENCY_KEY="no spaces")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]


def test_create_of_an_existing_identifier_is_409_for_anyone(alice, bob, created):
    for client in (alice, bob):
        response = client.post(CREATE_URL, config(), format="json")
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "identifier_taken"
        assert "web" in error["message"]
        assert error["fields"] == {"identifier": ["already exists"]}
    assert DeploymentRequest.objects.count() == 1
    assert Deployment.objects.count() == 1


def test_create_reuses_the_row_of_a_deleted_deployment(alice, bob):
    old = factories.DeploymentFactory(
        identifier="web", status=DeploymentStatus.DELETED, replicas=3, available_replicas=0,
        resource_version="77", drift={"image": {"desired": "a", "live": "b"}},
    )
    response = bob.post(CREATE_URL, config(replicas=2), format="json")
    assert response.status_code == 202
    deployment = Deployment.objects.get()
    assert deployment.pk == old.pk
    assert deployment.owner.user_external_id == "bob@example.com"
    assert deployment.status == DeploymentStatus.INITIATED
    assert deployment.desired_config["replicas"] == 2
    assert (deployment.resource_version, deployment.drift, deployment.replicas) == ("", {}, None)
    assert deployment.created_at > old.created_at
    # The old owner no longer sees it; the new one does.
    assert bob.get("/api/v1/deployments/web").status_code == 200


def test_identifier_create_is_reserved(alice):
    response = alice.post(CREATE_URL, config("create"), format="json")
    assert response.status_code == 400
    assert "identifier" in response.json()["error"]["fields"]


def test_one_line_is_logged_per_accepted_request_with_its_correlation_id(alice, caplog, django_capture_on_commit_callbacks):
    with caplog.at_level("INFO", logger="requests_app.services"):
        with django_capture_on_commit_callbacks(execute=True):
            response = alice.post(CREATE_URL, config(request_id="r-log"), format="json", HTTP_X_REQUEST_ID="corr-123")
    assert response["X-Correlation-Id"] == "corr-123"
    assert DeploymentRequest.objects.get().correlation_id == "corr-123"
    records = [r for r in caplog.records if r.name == "requests_app.services"]
    assert len(records) == 1
    assert records[0].correlation_id == "corr-123"
    assert records[0].request_id == "r-log"


def test_a_malformed_correlation_id_is_replaced_by_a_generated_one(alice):
    response = alice.post(CREATE_URL, config(), format="json", HTTP_X_CORRELATION_ID="bad id!" * 20)
    generated = response["X-Correlation-Id"]
    assert len(generated) == 32
    assert DeploymentRequest.objects.get().correlation_id == generated


# --- UPDATE ------------------------------------------------------------------------------------


def test_update_merges_the_patch_onto_the_desired_config(alice, created):
    response = alice.patch(change_url("web"), {"replicas": 3, "labels": {"tier": "web"}}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["action"] == "UPDATE"
    assert body["payload"] == {"replicas": 3, "labels": {"tier": "web"}}
    expected = {**created["config"], "replicas": 3, "labels": {"tier": "web"}}
    assert body["config"] == expected
    req = DeploymentRequest.objects.get(pk=body["id"])
    assert (req.payload, req.config, req.action) == (body["payload"], expected, RequestAction.UPDATE)
    assert Deployment.objects.get().desired_config == expected


def test_update_replaces_maps_and_lists_whole(alice):
    alice.post(CREATE_URL, config(labels={"a": "1", "b": "2"}, env=[{"name": "X", "value": "1"}]), format="json")
    body = alice.patch(change_url("web"), {"labels": {"c": "3"}, "env": []}, format="json").json()
    assert body["config"]["labels"] == {"c": "3"}
    assert body["config"]["env"] == []


def test_successive_updates_build_on_each_other(alice, created):
    alice.patch(change_url("web"), {"replicas": 3}, format="json")
    body = alice.patch(change_url("web"), {"image": "nginx:1.28"}, format="json").json()
    assert body["config"]["replicas"] == 3
    assert body["config"]["image"] == "nginx:1.28"


@pytest.mark.parametrize("patch", [{}, {"request_id": "only-an-id"}, {"replicas": 1}, {"image": "nginx:1.27"}])
def test_update_with_nothing_to_change_is_400_and_stores_nothing(alice, created, patch):
    response = alice.patch(change_url("web"), patch, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nothing_to_change"
    assert DeploymentRequest.objects.count() == 1


def test_update_cannot_change_the_namespace(alice, created, settings):
    settings.K8SDM_ALLOWED_NAMESPACES = ["default", "apps"]
    response = alice.patch(change_url("web"), {"namespace": "apps"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "namespace_immutable"
    assert response.json()["error"]["fields"] == {"namespace": ["cannot be changed"]}
    # Naming the current namespace is not a change
    assert alice.patch(change_url("web"), {"namespace": "default", "replicas": 4}, format="json").status_code == 202


def test_update_cannot_rename(alice, created):
    response = alice.patch(change_url("web"), {"identifier": "other"}, format="json")
    assert response.status_code == 400
    assert "identifier" in response.json()["error"]["fields"]


def test_update_of_a_deleted_deployment_is_409(alice, user):
    factories.DeploymentFactory(identifier="gone", owner=factories.UserFactory(user_external_id="alice@example.com"),
                                status=DeploymentStatus.DELETED)
    response = alice.patch(change_url("gone"), {"replicas": 2}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "deployment_deleted"
    assert not DeploymentRequest.objects.exists()


def test_update_while_a_delete_is_pending_is_409(alice, created):
    assert alice.delete(change_url("web")).status_code == 202
    response = alice.patch(change_url("web"), {"replicas": 2}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "delete_pending"
    assert DeploymentRequest.objects.count() == 2


def test_update_of_a_missing_deployment_is_404(alice):
    response = alice.patch(change_url("nope"), {"replicas": 2}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "deployment_not_found"


# --- DELETE ------------------------------------------------------------------------------------


def test_delete_answers_202_and_keeps_the_config(alice, created):
    response = alice.delete(change_url("web"), {"request_id": "del-1"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["action"], body["status"], body["request_id"]) == ("DELETE", "CREATED", "del-1")
    assert body["config"] == created["config"]
    req = DeploymentRequest.objects.get(request_id="del-1")
    assert req.action == RequestAction.DELETE and req.status == RequestStatus.CREATED and req.payload == {}


def test_delete_without_a_body_works(alice, created):
    assert alice.delete(change_url("web")).status_code == 202


def test_delete_twice_is_409_while_pending(alice, created):
    alice.delete(change_url("web"))
    response = alice.delete(change_url("web"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "delete_pending"
    assert DeploymentRequest.objects.filter(action="DELETE").count() == 1


def test_delete_of_a_deleted_deployment_is_409(alice, created):
    Deployment.objects.update(status=DeploymentStatus.DELETED)
    response = alice.delete(change_url("web"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_deleted"


def test_delete_after_a_finished_delete_and_a_new_create_works(alice, created):
    alice.delete(change_url("web"))
    DeploymentRequest.objects.filter(action="DELETE").update(status=RequestStatus.SUCCESS, finished_at="2025-01-01T00:00Z")
    Deployment.objects.update(status=DeploymentStatus.DELETED)
    assert alice.post(CREATE_URL, config(), format="json").status_code == 202
    assert alice.delete(change_url("web")).status_code == 202


# --- another user's deployment -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_another_users_deployment_is_404_with_the_same_body_as_a_missing_one(alice, bob, created, method):
    kwargs = {"data": {"replicas": 5}, "format": "json"} if method == "patch" else {}
    theirs = getattr(bob, method)(change_url("web"), **kwargs)
    missing = getattr(bob, method)(change_url("nothing-here"), **kwargs)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"]
    assert theirs.json()["error"]["fields"] == missing.json()["error"]["fields"] == {}
    assert DeploymentRequest.objects.count() == 1
    assert Deployment.objects.get().desired_config == created["config"]
