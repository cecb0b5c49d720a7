"""Revision history, rollback, restart and rollout wait, through the HTTP API, the worker, the
watcher and the emulator (issue 13)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from deployments_app.models import Deployment, DeploymentHealth
from requests_app.models import DeploymentRequest, RequestStatus, Revision
from tests.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

ALICE = {"X-User-Id": "alice@example.com"}
FAST_ROLLOUT_TIMER = {"K8SDM_ROLLOUT_SCAN_SECONDS": "0.2"}


@pytest.fixture
def api(live_server):
    base = f"{live_server.url}/api/v1"

    class Api:
        def create(self, body, **kw):
            return requests.post(f"{base}/deployments/requests/create", json=body, headers=ALICE, timeout=60, **kw)

        def update(self, identifier, body):
            return requests.patch(f"{base}/deployments/requests/{identifier}", json=body, headers=ALICE, timeout=60)

        def rollback(self, identifier, body):
            return requests.post(f"{base}/deployments/requests/{identifier}/rollback", json=body, headers=ALICE,
                                 timeout=60)

        def restart(self, identifier, body=None):
            return requests.post(f"{base}/deployments/requests/{identifier}/restart", json=body or {},
                                 headers=ALICE, timeout=60)

        def get(self, path):
            response = requests.get(f"{base}/{path}", headers=ALICE, timeout=60)
            assert response.status_code == 200, response.text
            return response.json()

    return Api()


def accepted(response) -> str:
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


def finished(request_id: str) -> DeploymentRequest:
    def done():
        req = DeploymentRequest.objects.get(request_id=request_id)
        return req if req.status != RequestStatus.CREATED else None

    req = wait_until(done, message=f"request {request_id} to finish")
    assert req.status == RequestStatus.SUCCESS, req.error
    return req


def rollout_ended(request_id: str, timeout: float = 90) -> DeploymentRequest:
    def ended():
        req = DeploymentRequest.objects.get(request_id=request_id)
        return req if req.rollout in ("COMPLETE", "FAILED") else None

    return wait_until(ended, timeout=timeout, message=f"the rollout of {request_id} to end")


def healthy(identifier: str, **fields) -> Deployment:
    return wait_until(lambda: Deployment.objects.filter(identifier=identifier, health=DeploymentHealth.HEALTHY,
                                                        **fields).first(),
                      message=f"{identifier} to be HEALTHY with {fields}")


def test_history_after_create_updates_restart_and_rollback(api, stack):
    stack.worker()
    stack.watcher()
    finished(accepted(api.create({"identifier": "hist", "image": "nginx:1.27", "message": "first release"})))
    finished(accepted(api.update("hist", {"image": "nginx:1.28", "message": "bump"})))
    finished(accepted(api.update("hist", {"replicas": 2})))
    finished(accepted(api.restart("hist", {"message": "rotate"})))
    rollback = finished(accepted(api.rollback("hist", {"to_revision": 1, "message": "undo"})))
    assert rollback.rollback_of == 1

    page = api.get("deployments/hist/revisions")["results"]
    assert [(r["number"], r["kind"]) for r in page] == [
        (5, "rollback"), (4, "restart"), (3, "update"), (2, "update"), (1, "create")]
    assert [r["message"] for r in page] == ["undo", "rotate", "", "bump", "first release"]
    assert {r["user"] for r in page} == {"alice@example.com"}
    assert page[3]["diff"] == {"image": {"from": "nginx:1.27", "to": "nginx:1.28"}}
    assert page[2]["diff"] == {"replicas": {"from": 1, "to": 2}}
    assert list(page[1]["diff"]) == ["restarted_at"]
    assert page[0]["rollback_of"] == 1
    assert page[0]["diff"] == {"image": {"from": "nginx:1.28", "to": "nginx:1.27"}, "replicas": {"from": 2, "to": 1}}
    assert page[0]["config"]["restarted_at"] == page[1]["config"]["restarted_at"]  # a rollback keeps the restart

    detail = api.get("deployments/hist/revisions/2")
    assert detail["request_id"] == page[3]["request_id"] and detail["diff"] == page[3]["diff"]
    assert api.get(f"requests/{rollback.request_id}")["rollback_of"] == 1


def test_rollback_to_a_named_revision_restores_every_config_field(api, stack, apps_api):
    stack.worker()
    stack.watcher()
    first = {
        "image": "nginx:1.27", "replicas": 2, "env": [{"name": "MODE", "value": "blue"}],
        "ports": [{"name": "http", "container_port": 80}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "labels": {"tier": "web"}, "command": ["nginx"], "args": ["-g", "daemon off;"],
    }
    second = {
        "image": "nginx:1.28", "replicas": 3, "env": [{"name": "MODE", "value": "green"}, {"name": "X", "value": "1"}],
        "ports": [{"name": "alt", "container_port": 8080}],
        "resources": {"limits": {"cpu": "1", "memory": "256Mi"}},
        "labels": {"tier": "api"}, "command": ["/bin/server"], "args": ["--fast"],
    }
    finished(accepted(api.create({"identifier": "full", **first})))
    finished(accepted(api.update("full", second)))
    healthy("full", replicas=3, available_replicas=3)

    finished(accepted(api.rollback("full", {"to_revision": 1})))
    row = healthy("full", replicas=2, available_replicas=2)
    live = apps_api.read_namespaced_deployment("full", "default")
    container = live.spec.template.spec.containers[0]
    assert container.image == "nginx:1.27"
    assert live.spec.replicas == 2
    assert [(e.name, e.value) for e in container.env] == [("MODE", "blue")]
    assert [(p.name, p.container_port) for p in container.ports] == [("http", 80)]
    assert container.resources.requests == {"cpu": "100m", "memory": "64Mi"}
    assert container.resources.limits == {"memory": "128Mi"}
    assert live.metadata.labels["tier"] == "web"
    assert container.command == ["nginx"] and container.args == ["-g", "daemon off;"]
    revision_1 = Revision.objects.get(deployment=row, number=1).config
    assert row.desired_config == revision_1 and row.applied_config == revision_1
    assert row.drift == {}


def test_restart_rolls_pods_without_drift(api, stack, apps_api, cluster):
    from kubernetes import client

    core = client.CoreV1Api(cluster.api_client())
    stack.worker()
    stack.watcher()
    finished(accepted(api.create({"identifier": "rr", "image": "nginx:1.27", "replicas": 2})))
    healthy("rr", available_replicas=2)

    def pods():
        items = core.list_namespaced_pod("default", label_selector="app.kubernetes.io/name=rr").items
        return {p.metadata.name for p in items if p.metadata.deletion_timestamp is None}

    before = wait_until(lambda: pods() if len(pods()) == 2 else None, message="two pods")
    restart = finished(accepted(api.restart("rr", {"wait": {"timeout_seconds": 120}})))
    assert rollout_ended(restart.request_id).rollout == "COMPLETE"
    after = wait_until(lambda: pods() if len(pods()) == 2 and not (pods() & before) else None,
                       message="every pod replaced")
    assert not (after & before)
    live = apps_api.read_namespaced_deployment("rr", "default")
    assert live.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == restart.config["restarted_at"]
    row = healthy("rr", available_replicas=2)
    assert row.drift == {} and api.get("deployments/rr")["drift"] == {}
    assert Revision.objects.filter(deployment=row).order_by("-number").first().kind == "restart"


def test_a_wait_that_completes(api, stack):
    stack.worker()
    stack.watcher()
    create = api.create({"identifier": "ok", "image": "nginx:1.27", "wait": {"timeout_seconds": 120}})
    assert create.json()["rollout"]["state"] == "PENDING"
    finished(create.json()["request_id"])
    update = accepted(api.update("ok", {"image": "nginx:1.28", "wait": {"timeout_seconds": 120}}))
    req = rollout_ended(update)
    assert req.rollout == "COMPLETE", req.rollout_reason
    body = api.get(f"requests/{update}")
    assert body["rollout"]["state"] == "COMPLETE" and body["rolled_back_by"] is None
    assert api.get("deployments/ok/revisions")["results"][0]["rollout"] == "COMPLETE"


def test_a_failed_rollout_rolls_back_to_the_last_good_revision(api, stack):
    stack.worker()
    stack.watcher()
    finished(accepted(api.create({"identifier": "atomic", "image": "nginx:1.27", "replicas": 2})))
    healthy("atomic", available_replicas=2)
    good = finished(accepted(api.update("atomic", {"replicas": 3, "wait": {"timeout_seconds": 120}})))
    # Revision 2 is the last good one only once its rollout completed: wait for that before breaking it.
    assert rollout_ended(good.request_id).rollout == "COMPLETE"
    bad = accepted(api.update("atomic", {"image": "nginx:fail", "message": "try the broken build",
                                         "wait": {"timeout_seconds": 120, "rollback_on_failure": True}}))
    failed = rollout_ended(bad)
    assert failed.rollout == "FAILED"
    assert "ProgressDeadlineExceeded" in failed.rollout_reason
    assert failed.rolled_back_by is not None
    rollback = failed.rolled_back_by
    assert rollback.rollback_for_id == failed.pk and rollback.rollback_of == 2  # the last revision that completed
    assert rollout_ended(rollback.request_id).rollout == "COMPLETE"
    row = healthy("atomic", image="nginx:1.27", available_replicas=3)
    assert row.desired_config["image"] == "nginx:1.27" and row.drift == {}

    shown_failed, shown_rollback = api.get(f"requests/{bad}"), api.get(f"requests/{rollback.request_id}")
    assert shown_failed["rolled_back_by"] == rollback.request_id
    assert shown_rollback["rollback_for"] == bad and shown_rollback["action"] == "ROLLBACK"
    kinds = [(r["number"], r["kind"], r["rollout"]) for r in api.get("deployments/atomic/revisions")["results"]]
    assert kinds == [(4, "rollback", "COMPLETE"), (3, "update", "FAILED"), (2, "update", "COMPLETE"),
                     (1, "create", "COMPLETE")]


def test_a_rollout_that_does_not_finish_in_time_times_out(api, stack, cluster):
    stack.env.update(FAST_ROLLOUT_TIMER)
    stack.worker()
    stack.watcher()
    finished(accepted(api.create({"identifier": "slow", "image": "nginx:1.27"})))
    healthy("slow")
    cluster.pause_controller()  # the new generation is never rolled out
    update = accepted(api.update("slow", {"image": "nginx:1.28", "wait": {"timeout_seconds": 1}}))
    req = rollout_ended(update)
    assert req.rollout == "FAILED" and req.rollout_reason.startswith("timed out after 1s"), req.rollout_reason
    assert req.rolled_back_by is None


def test_a_worker_killed_while_a_wait_is_pending_still_finishes_it(api, stack, cluster):
    stack.env.update(FAST_ROLLOUT_TIMER)
    worker = stack.worker()
    stack.watcher()
    finished(accepted(api.create({"identifier": "phoenix", "image": "nginx:1.27"})))
    healthy("phoenix")
    cluster.pause_controller()
    update = accepted(api.update("phoenix", {"image": "nginx:1.28", "wait": {"timeout_seconds": 300}}))
    finished(update)
    worker.kill()  # kill -9 while the rollout is pending
    assert DeploymentRequest.objects.get(request_id=update).rollout == "PENDING"
    cluster.resume_controller()
    stack.worker()
    req = rollout_ended(update)
    assert req.rollout == "COMPLETE", req.rollout_reason


def test_a_rollback_racing_an_update_stays_ordered(api, stack, cluster, apps_api):
    stack.worker()
    stack.worker()
    stack.watcher()
    finished(accepted(api.create({"identifier": "race", "image": "nginx:1.27"})))
    finished(accepted(api.update("race", {"image": "nginx:1.28"})))
    cluster.set_latency(10)

    def send(n):
        if n % 2:
            return api.rollback("race", {"to_revision": 1, "request_id": f"rb-{n}"})
        return api.update("race", {"image": f"nginx:1.{30 + n}", "request_id": f"up-{n}"})

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(send, range(6)))
    refused = [r for r in responses if r.status_code != 202]
    # A rollback accepted right after another rollback has nothing to change: refused, not queued.
    assert all(r.status_code == 400 and r.json()["error"]["code"] == "rollback_to_current" for r in refused), \
        [r.text for r in refused]
    ids = [r.json()["request_id"] for r in responses if r.status_code == 202]
    for request_id in ids:
        finished(request_id)
    rows = list(DeploymentRequest.objects.filter(identifier="race").order_by("pk"))
    for earlier, later in zip(rows, rows[1:]):
        assert earlier.finished_at <= later.started_at
    revisions = list(Revision.objects.filter(deployment__identifier="race").order_by("number"))
    assert [r.request_id for r in revisions] == [r.pk for r in rows]  # one revision per request, in order
    last = rows[-1]
    live = apps_api.read_namespaced_deployment("race", "default")
    assert live.spec.template.spec.containers[0].image == last.config["image"]
    assert Deployment.objects.get(identifier="race").desired_config == last.config
