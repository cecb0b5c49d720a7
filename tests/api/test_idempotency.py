"""request_id: a replay returns the original, a different body under the same id is a conflict,
and two identical requests racing each other store one request."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from deployments_app.models import Deployment
from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, change_url, config


@pytest.mark.django_db
def test_a_replayed_create_returns_200_with_the_original_and_creates_nothing(alice, created):
    response = alice.post(CREATE_URL, config(request_id="create-web"), format="json")
    assert response.status_code == 200
    assert response.json() == created | {"correlation_id": created["correlation_id"]}
    assert DeploymentRequest.objects.count() == 1
    assert Deployment.objects.count() == 1


@pytest.mark.django_db
def test_a_replay_that_spells_out_the_defaults_is_the_same_request(alice, created):
    response = alice.post(
        CREATE_URL, config(request_id="create-web", replicas=1, namespace="default", labels={}), format="json"
    )
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


@pytest.mark.django_db
def test_a_replay_via_the_idempotency_key_header_matches_the_body_id(alice, created):
    response = alice.post(CREATE_URL, config(), format="json", HTTP_IDEMPOTENCY_KEY="create-web")
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


@pytest.mark.django_db
def test_the_same_request_id_with_a_different_body_is_409(alice, created):
    response = alice.post(CREATE_URL, config(request_id="create-web", replicas=5), format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "request_id_reused"
    assert "create-web" in error["message"]
    assert error["fields"] == {"request_id": ["already used with a different body"]}
    assert DeploymentRequest.objects.count() == 1


@pytest.mark.django_db
def test_the_same_request_id_for_another_action_is_409(alice, created):
    response = alice.patch(change_url("web"), {"replicas": 3, "request_id": "create-web"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "request_id_reused"


@pytest.mark.django_db
def test_request_ids_are_per_user(alice, bob, created):
    response = bob.post(CREATE_URL, config("other", request_id="create-web"), format="json")
    assert response.status_code == 202
    assert DeploymentRequest.objects.filter(request_id="create-web").count() == 2


@pytest.mark.django_db
def test_a_replayed_update_returns_the_original_even_when_nothing_would_change_now(alice, created):
    first = alice.patch(change_url("web"), {"replicas": 3, "request_id": "u-1"}, format="json")
    again = alice.patch(change_url("web"), {"replicas": 3, "request_id": "u-1"}, format="json")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert DeploymentRequest.objects.filter(action="UPDATE").count() == 1


@pytest.mark.django_db
def test_a_replayed_delete_returns_the_original_instead_of_409(alice, created):
    first = alice.delete(change_url("web"), {"request_id": "d-1"}, format="json")
    again = alice.delete(change_url("web"), {"request_id": "d-1"}, format="json")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]


# --- races (real concurrent transactions) -------------------------------------------------------


def _race(n: int, call) -> list:
    """Run call(i) in n threads released at once; each thread closes its DB connection."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait(5)
            results[i] = call(i)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_identical_concurrent_creates_store_one_request_and_the_rest_replay(client_for):
    def call(i):
        response = client_for("racer").post(CREATE_URL, config("race", request_id="same"), format="json")
        return response.status_code, response.json()

    results = _race(8, call)
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * 7 + [202], results
    assert len({body["id"] for _, body in results}) == 1
    assert DeploymentRequest.objects.count() == 1
    assert Deployment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_identifier_one_wins_the_others_get_409(client_for):
    def call(i):
        response = client_for(f"user-{i}").post(CREATE_URL, config("contested"), format="json")
        return response.status_code, response.json()

    results = _race(8, call)
    statuses = sorted(s for s, _ in results)
    assert statuses == [202] + [409] * 7, results
    assert {b["error"]["code"] for s, b in results if s == 409} == {"identifier_taken"}
    assert DeploymentRequest.objects.count() == 1
    deployment = Deployment.objects.get()
    winner = next(b for s, b in results if s == 202)
    assert deployment.requests.get().pk == winner["id"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_of_one_deployment_are_all_merged(client_for):
    owner = client_for("owner")
    assert owner.post(CREATE_URL, config("merge"), format="json").status_code == 202

    def call(i):
        return client_for("owner").patch(change_url("merge"), {"labels": {f"k{i}": "v"}}, format="json").status_code

    results = _race(6, call)
    assert results == [202] * 6
    # Each request's merged config is the previous one plus its patch: the last one has all the
    # labels it was given, and the deployment's desired config is the newest request's config.
    newest = DeploymentRequest.objects.filter(action="UPDATE").order_by("-id").first()
    assert Deployment.objects.get().desired_config == newest.config


@pytest.mark.django_db(transaction=True)
def test_concurrent_deletes_one_is_accepted(client_for):
    owner = client_for("owner")
    assert owner.post(CREATE_URL, config("bye"), format="json").status_code == 202

    results = _race(6, lambda i: client_for("owner").delete(change_url("bye")).status_code)
    assert sorted(results) == [202] + [409] * 5
    assert DeploymentRequest.objects.filter(action="DELETE").count() == 1
