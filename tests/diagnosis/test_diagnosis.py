"""GET /api/v1/deployments/{identifier}/diagnosis through the API and the emulator."""

from __future__ import annotations

import pytest

URL = "/api/v1/deployments/{}/diagnosis"
pytestmark = pytest.mark.django_db(transaction=True)


def pods_with(result: dict, reason: str) -> list[dict]:
    return [p for p in result["pods"] if any(c["reason"] == reason for c in p["containers"])]


def test_image_pull_failure(run, alice):
    run("web", image="nginx:fail", replicas=3, until=lambda d: len(pods_with(d, "ImagePullBackOff")) == 3
        and any(e["reason"] == "Failed" for e in d["events"]))
    response = alice.get(URL.format("web"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["summary"] == "3 of 3 pods cannot pull image nginx:fail: ImagePullBackOff"
    assert body["replicaset"]["name"].startswith("web-")
    for pod in body["pods"]:
        assert pod["phase"] == "Pending" and pod["ready"] is False
        (container,) = pod["containers"]
        assert container["state"] == "waiting" and container["reason"] == "ImagePullBackOff"
        assert container["image"] == "nginx:fail"
    assert all(e["object"].startswith(("Pod/web-", "ReplicaSet/web-", "Deployment/web")) for e in body["events"])
    assert body["events"] == sorted(body["events"], key=lambda e: e["last_seen"], reverse=True)
    keys = [(e["object"], e["reason"], e["message"]) for e in body["events"]]
    assert len(keys) == len(set(keys))  # deduplicated


def test_crash_loop_with_exit_code(run, alice):
    run("cr", image="busybox:crash-137", replicas=2,
        until=lambda d: len(pods_with(d, "CrashLoopBackOff")) == 2)
    body = alice.get(URL.format("cr")).json()
    assert body["summary"] == "2 of 2 pods crash (container app exits with code 137): CrashLoopBackOff"
    for pod in body["pods"]:
        (container,) = pod["containers"]
        assert container["reason"] == "CrashLoopBackOff"
        assert container["last_termination"]["exit_code"] == 137
        assert container["restarts"] >= 1
    assert any(e["reason"] == "BackOff" and e["object"].startswith("Pod/cr-") for e in body["events"])


def test_quota_failed_create(cluster, run, alice):
    from kubernetes import client as k

    k.CoreV1Api(cluster.api_client()).create_namespaced_resource_quota(
        "default", {"metadata": {"name": "two-pods"}, "spec": {"hard": {"pods": "1"}}})
    run("q", replicas=3, until=lambda d: any(e["reason"] == "FailedCreate" for e in d["events"]))
    body = alice.get(URL.format("q")).json()
    assert body["summary"].startswith("2 of 3 pods cannot be created: FailedCreate: Error creating: pods ")
    assert "exceeded quota: two-pods" in body["summary"]
    assert len(body["pods"]) == 1
    event = next(e for e in body["events"] if e["reason"] == "FailedCreate")
    assert event["object"].startswith("ReplicaSet/q-")


def test_unschedulable(run, alice):
    run("big", replicas=2, resources={"requests": {"cpu": "64"}},
        until=lambda d: len(d["pods"]) == 2 and all(p["unschedulable"] for p in d["pods"]))
    body = alice.get(URL.format("big")).json()
    assert body["summary"].startswith("2 of 2 pods cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu")
    assert all(p["phase"] == "Pending" and p["node"] == "" for p in body["pods"])


def test_healthy(run, alice):
    run("ok", replicas=2, until=lambda d: sum(p["ready"] for p in d["pods"]) == 2)
    body = alice.get(URL.format("ok")).json()
    assert body["summary"] == "2 of 2 pods ready"
    assert body["events"] == []
    assert {c["type"] for c in body["conditions"]} >= {"Available", "Progressing"}


def test_other_users_deployment_is_404(run, alice, bob):
    run("web", replicas=1)
    response = bob.get(URL.format("web"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "deployment_not_found"
    assert alice.get(URL.format("nope")).status_code == 404
    assert alice.get(URL.format("Bad_Name")).status_code == 400


def test_cached_a_few_seconds(run, alice, cluster):
    run("web", replicas=1, until=lambda d: len(d["pods"]) == 1)
    first = alice.get(URL.format("web")).json()
    before = cluster.stats()
    second = alice.get(URL.format("web")).json()
    assert first == second
    assert cluster.stats()["requests"]["by_verb"] == before["requests"]["by_verb"]  # no call to the API server


def test_slow_api_server_is_a_quick_503(run, alice, cluster, settings):
    run("web", replicas=1)
    settings.K8SDM_DIAGNOSIS_TIMEOUT_SECONDS = 0.3
    cluster.set_latency(2000)
    try:
        response = alice.get(URL.format("web"))
    finally:
        cluster.set_latency(0)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dependency_unavailable"
    assert response.headers["Retry-After"] == "5"


def test_api_server_down_is_503(run, alice, cluster):
    run("web", replicas=1)
    cluster.fail_next(count=50, status=503)
    response = alice.get(URL.format("web"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dependency_unavailable"
    assert "Retry-After" in response.headers


def test_the_schema_documents_diagnosis_and_logs(client):
    import yaml

    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    diagnosis = paths["/api/v1/deployments/{identifier}/diagnosis"]["get"]
    assert {"200", "404", "503"} <= set(diagnosis["responses"])
    logs = paths["/api/v1/deployments/{identifier}/logs"]["get"]
    assert {p["name"] for p in logs["parameters"]} >= {"identifier", "pod", "container", "tail", "since", "previous"}


def test_the_list_carries_the_stored_health_reason(run, alice):
    from deployments_app.models import Deployment

    Deployment.objects.filter(identifier="web").delete()
    run("web", replicas=1)
    Deployment.objects.filter(identifier="web").update(health="DEGRADED", health_reason="ProgressDeadlineExceeded: x")
    (row,) = alice.get("/api/v1/deployments/").json()["results"]
    assert row["health_reason"] == "ProgressDeadlineExceeded: x"


def test_only_its_own_pods_and_replicaset_events_never_a_neighbours_or_a_lookalikes(cluster, run, alice):
    """The api reads no Deployment or ReplicaSet: a pod counts only with all of k8sdm's labels for
    this deployment and a `<identifier>-<pod-template-hash>` ReplicaSet as its controller. A
    neighbour whose name extends this one ("web-b": ReplicaSet "web-b-<hash>") and a bare pod with
    copied labels (made by a cluster user, not through k8sdm) never show in "web"'s diagnosis."""
    from kubernetes import client as k

    core = k.CoreV1Api(cluster.api_client())
    core.create_namespaced_resource_quota("default", {"metadata": {"name": "two-pods"}, "spec": {"hard": {"pods": "2"}}})
    web = run("web", replicas=1, until=lambda d: sum(p["ready"] for p in d["pods"]) == 1)
    (real,) = core.list_namespaced_pod("default", label_selector="app.kubernetes.io/name=web").items
    core.create_namespaced_pod("default", {
        "metadata": {"name": "web-lookalike", "labels": real.metadata.labels},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    })
    run("web-b", replicas=2, until=lambda d: any(e["reason"] == "FailedCreate" for e in d["events"]))
    neighbour = alice.get(URL.format("web-b")).json()
    assert neighbour["summary"].startswith("2 of 2 pods cannot be created: FailedCreate")
    assert neighbour["replicaset"]["name"].startswith("web-b-") and neighbour["pods"] == []
    body = alice.get(URL.format("web")).json()
    assert [p["name"] for p in body["pods"]] == [real.metadata.name]
    assert body["events"] == []
    assert body["summary"] == "1 of 1 pods ready"
    assert body["replicaset"]["name"] == real.metadata.owner_references[0].name
    assert web.uid and body["exists"] is True
