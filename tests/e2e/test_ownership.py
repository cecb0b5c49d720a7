"""Issue 11: no request ever touches an object k8sdm did not create. Each attack through the HTTP
API, a real worker (and watcher) and the emulator: the foreign object is unchanged or still there,
and the requests say why they failed."""

import pytest
import requests

from deployments_app.models import Deployment, DeploymentStatus
from requests_app.models import DeploymentRequest, RequestStatus
from tests.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

USER = {"X-User-Id": "mallory@example.com"}


def finished(request_id: str) -> DeploymentRequest | None:
    req = DeploymentRequest.objects.get(request_id=request_id)
    return req if req.status != RequestStatus.CREATED else None


def foreign(apps_api, name: str, *, labels=None, annotations=None):
    """A Deployment made with kubectl (straight at the API server), not by k8sdm."""
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": name, "team": "payments"},
                     "annotations": annotations or {"owner": "payments-team"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"serviceAccountName": "payments", "containers": [
                                  {"name": "main", "image": "registry.example.com/payments:7"}]}}},
    }
    if labels:
        body["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": name}
        body["spec"]["template"]["metadata"]["labels"] = dict(labels)
    return apps_api.create_namespaced_deployment("default", body)


def snapshot(obj):
    """What must not change on a foreign object."""
    pod = obj.spec.template.spec
    return {"uid": obj.metadata.uid, "labels": obj.metadata.labels, "annotations": obj.metadata.annotations,
            "replicas": obj.spec.replicas, "images": [c.image for c in pod.containers],
            "service_account": pod.service_account_name, "generation": obj.metadata.generation}


def request_seen_by_user(server: str, request_id: str) -> dict:
    response = requests.get(f"{server}/api/v1/requests/{request_id}", headers=USER, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def deployment_seen_by_user(server: str, identifier: str) -> dict:
    response = requests.get(f"{server}/api/v1/deployments/{identifier}", headers=USER, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


# --- 1. the race: CREATE of a foreign name, then UPDATE or DELETE queued behind it -------------------


@pytest.mark.parametrize("second", ["update", "delete"])
def test_a_request_queued_behind_a_create_of_a_foreign_name_fails_and_leaves_it_alone(
        live_server, stack, cluster, apps_api, second):
    before = snapshot(foreign(apps_api, "victim"))
    api = f"{live_server.url}/api/v1/deployments/requests"
    # Both accepted before any worker runs: the UPDATE/DELETE is queued behind the pending CREATE.
    created = requests.post(f"{api}/create", json={"identifier": "victim", "image": "nginx:1.27"},
                            headers=USER, timeout=30)
    assert created.status_code == 202, created.text
    if second == "update":
        follow = requests.patch(f"{api}/victim", json={"image": "evil.example.com/implant:1", "replicas": 9},
                                headers=USER, timeout=30)
    else:
        follow = requests.delete(f"{api}/victim", headers=USER, timeout=30)
    assert follow.status_code == 202, follow.text
    create_id, follow_id = created.json()["request_id"], follow.json()["request_id"]

    stack.worker()
    wait_until(lambda: finished(create_id) and finished(follow_id), message="both requests to finish")

    create = request_seen_by_user(live_server.url, create_id)
    assert create["status"] == "FAILURE" and "already exists" in create["error"], create
    after = request_seen_by_user(live_server.url, follow_id)
    assert after["status"] == "FAILURE", after
    assert after["error"] == f"the CREATE it followed failed (request {create_id}); nothing was changed"

    assert snapshot(apps_api.read_namespaced_deployment("victim", "default")) == before
    row = Deployment.objects.get(identifier="victim")
    assert (row.status, row.uid, row.image) == (DeploymentStatus.DELETED, "", "")  # never mirrored
    assert "failed" in deployment_seen_by_user(live_server.url, "victim")["status_reason"]


# --- 2. the name swap: the user's object deleted behind k8sdm's back, a stranger takes the name ------


def create_through_the_api(server: str, identifier: str) -> None:
    created = requests.post(f"{server}/api/v1/deployments/requests/create",
                            json={"identifier": identifier, "image": "nginx:1.27", "replicas": 1},
                            headers=USER, timeout=30)
    assert created.status_code == 202, created.text
    wait_until(lambda: finished(created.json()["request_id"]), message="the CREATE to finish")
    assert finished(created.json()["request_id"]).status == RequestStatus.SUCCESS


def swap(apps_api, identifier: str):
    """Delete the user's object outside k8sdm and create a lookalike: the same labels and
    annotations (k8sdm's own included), only its uid differs."""
    mine = apps_api.read_namespaced_deployment(identifier, "default")
    apps_api.delete_namespaced_deployment(identifier, "default")
    wait_until(lambda: not apps_api.list_namespaced_deployment("default", field_selector=f"metadata.name={identifier}").items,
               message="the user's object to be gone")
    stranger = foreign(apps_api, identifier, labels=dict(mine.metadata.labels),
                       annotations=dict(mine.metadata.annotations))
    assert stranger.metadata.uid != mine.metadata.uid
    return snapshot(stranger)


@pytest.mark.parametrize("second", ["update", "delete"])
def test_after_a_name_swap_a_request_fails_and_the_strangers_object_is_untouched(
        live_server, stack, cluster, apps_api, second):
    stack.worker()  # no watcher: the row still believes in the old object when the request arrives
    create_through_the_api(live_server.url, "shop")
    before = swap(apps_api, "shop")

    api = f"{live_server.url}/api/v1/deployments/requests"
    if second == "update":
        follow = requests.patch(f"{api}/shop", json={"image": "evil.example.com/implant:1"}, headers=USER, timeout=30)
    else:
        follow = requests.delete(f"{api}/shop", headers=USER, timeout=30)
    assert follow.status_code == 202, follow.text
    wait_until(lambda: finished(follow.json()["request_id"]), message="the request to finish")

    seen = request_seen_by_user(live_server.url, follow.json()["request_id"])
    assert seen["status"] == "FAILURE", seen
    assert seen["error"].startswith("not owned by k8sdm:") and "replaced outside k8sdm" in seen["error"], seen
    assert snapshot(apps_api.read_namespaced_deployment("shop", "default")) == before
    row = deployment_seen_by_user(live_server.url, "shop")
    assert row["status"] == "DELETED" and "replaced outside k8sdm" in row["status_reason"], row
    assert row["image"] == "nginx:1.27"  # the stranger's image was never mirrored


def test_the_watcher_never_mirrors_a_strangers_object_into_the_users_row(live_server, stack, cluster, apps_api):
    stack.worker()
    stack.watcher().wait_for_log("this watcher is now active")
    create_through_the_api(live_server.url, "shop")
    wait_until(lambda: Deployment.objects.get(identifier="shop").available_replicas == 1,
               message="the deployment to roll out")
    before = swap(apps_api, "shop")
    wait_until(lambda: Deployment.objects.get(identifier="shop").status == DeploymentStatus.DELETED,
               message="the row to let go of the swapped object")
    row = Deployment.objects.get(identifier="shop")
    assert row.image == "nginx:1.27" and row.uid != before["uid"]
    assert row.status_reason  # gone, or not owned: either way never the stranger's
    # A later UPDATE is refused by the API: the deployment the user had is gone.
    refused = requests.patch(f"{live_server.url}/api/v1/deployments/requests/shop", json={"replicas": 5},
                             headers=USER, timeout=30)
    assert refused.status_code in (404, 409), refused.text
    assert snapshot(apps_api.read_namespaced_deployment("shop", "default")) == before
