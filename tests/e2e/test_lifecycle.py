"""A user's requests, through the HTTP API, the worker and the watcher, to the cluster and back."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from requests_app.models import DeploymentRequest, RequestStatus
from tests.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

USER = {"X-User-Id": "alice@example.com"}


class RowRecorder:
    """Polls one Deployment row and keeps each distinct (status, health) it passes through."""

    def __init__(self, identifier: str):
        self.identifier = identifier
        self.seen: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        from django.db import connection

        try:
            while not self._stop.is_set():
                state = Deployment.objects.filter(identifier=self.identifier).values_list("status", "health").first()
                if state and (not self.seen or self.seen[-1] != state):
                    self.seen.append(state)
                self._stop.wait(0.005)
        finally:
            connection.close()

    def stop(self):
        self._stop.set()
        self._thread.join()
        return [status for status, _ in self.seen]


def finished(request_id: str) -> DeploymentRequest | None:
    req = DeploymentRequest.objects.get(request_id=request_id)
    return req if req.status != RequestStatus.CREATED else None


def test_create_update_delete_through_the_api_reach_the_cluster_and_the_row(live_server, stack, cluster, apps_api):
    cluster.configure_controller(step_delay=0.3)  # slow enough for every phase to be seen
    stack.worker()
    stack.watcher().wait_for_log("this watcher is now active")
    api = f"{live_server.url}/api/v1/deployments/requests"
    recorder = RowRecorder("shop")

    created = requests.post(f"{api}/create", json={"identifier": "shop", "image": "nginx:1.27", "replicas": 2},
                            headers=USER, timeout=60)
    assert created.status_code == 202, created.text
    wait_until(lambda: finished(created.json()["request_id"]), message="the CREATE to finish")
    assert finished(created.json()["request_id"]).status == RequestStatus.SUCCESS
    live = apps_api.read_namespaced_deployment("shop", "default")
    assert live.metadata.labels["app.kubernetes.io/managed-by"] == "k8s-deployment-manager"
    wait_until(lambda: Deployment.objects.get(identifier="shop").health == DeploymentHealth.HEALTHY,
               message="the new deployment to be healthy")

    updated = requests.patch(f"{api}/shop", json={"image": "nginx:1.28", "replicas": 3}, headers=USER, timeout=60)
    assert updated.status_code == 202, updated.text
    wait_until(lambda: finished(updated.json()["request_id"]), message="the UPDATE to finish")
    assert apps_api.read_namespaced_deployment("shop", "default").spec.template.spec.containers[0].image == "nginx:1.28"
    wait_until(lambda: Deployment.objects.filter(identifier="shop", health=DeploymentHealth.HEALTHY,
                                                 available_replicas=3).exists(),
               message="the update to roll out")
    row = Deployment.objects.get(identifier="shop")
    assert (row.status, row.image, row.replicas, row.drift) == (DeploymentStatus.CREATED, "nginx:1.28", 3, {})

    deleted = requests.delete(f"{api}/shop", headers=USER, timeout=60)
    assert deleted.status_code == 202, deleted.text
    wait_until(lambda: finished(deleted.json()["request_id"]), message="the DELETE to finish")
    assert apps_api.list_namespaced_deployment("default").items == []
    wait_until(lambda: Deployment.objects.get(identifier="shop").status == DeploymentStatus.DELETED,
               message="the row to be DELETED")

    statuses = recorder.stop()
    compact = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
    assert compact == ["INITIATED", "CREATED", "UPDATING", "CREATED", "DELETED"], recorder.seen
    after_update = recorder.seen[recorder.seen.index(("UPDATING", "PROGRESSING")):]
    assert ("CREATED", "HEALTHY") in after_update, recorder.seen

    # The user sees it all through the API too.
    detail = requests.get(f"{live_server.url}/api/v1/deployments/shop", headers=USER, timeout=60)
    assert detail.status_code == 200 and detail.json()["status"] == "DELETED"


def test_ten_concurrent_updates_end_with_the_last_accepted_one_applied_in_order(live_server, stack, cluster, apps_api):
    stack.worker()
    stack.worker()
    api = f"{live_server.url}/api/v1/deployments/requests"
    created = requests.post(f"{api}/create", json={"identifier": "busy", "image": "nginx:1.27", "replicas": 1},
                            headers=USER, timeout=60)
    assert created.status_code == 202, created.text
    cluster.set_latency(10)

    def patch(n):
        return requests.patch(f"{api}/busy", json={"replicas": n, "env": [{"name": "N", "value": str(n)}]},
                              headers=USER, timeout=20)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(patch, range(2, 12)))
    assert [r.status_code for r in responses] == [202] * 10, [r.text for r in responses]
    ids = [r.json()["request_id"] for r in responses]
    wait_until(lambda: all(finished(i) for i in ids), timeout=60, message="all updates to finish")
    rows = list(DeploymentRequest.objects.filter(identifier="busy").order_by("pk"))
    assert [r.status for r in rows] == [RequestStatus.SUCCESS] * 11, [r.error for r in rows]
    for earlier, later in zip(rows, rows[1:]):
        assert earlier.finished_at <= later.started_at
    last = rows[-1]
    live = apps_api.read_namespaced_deployment("busy", "default")
    assert live.spec.replicas == last.config["replicas"]
    assert live.spec.template.spec.containers[0].env[0].value == str(last.config["replicas"])
    assert live.metadata.annotations["k8sdm.io/last-request"] == str(last.pk)
