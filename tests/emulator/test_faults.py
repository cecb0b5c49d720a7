"""Fidelity point 9: fault injection through the Python object and the admin HTTP API."""
import json
import time

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import deployment, rolled_out, wait_for

pytestmark = pytest.mark.timeout(30)


def test_fail_next_fails_exactly_the_next_n_matching_requests(k8s_emulator, apps):
    k8s_emulator.fail_next(2, status=500, verb="create")
    apps.list_namespaced_deployment("default")  # not a create: unaffected
    for _ in range(2):
        with pytest.raises(ApiException) as e:
            apps.create_namespaced_deployment("default", deployment("web"))
        assert e.value.status == 500
        assert json.loads(e.value.body)["reason"] == "InternalError"
    apps.create_namespaced_deployment("default", deployment("web"))
    assert k8s_emulator.faults_injected == 2


def test_429_carries_a_retry_after_header(k8s_emulator, apps):
    # (on a POST: for GETs, urllib3 inside the official client honours Retry-After and retries)
    k8s_emulator.fail_next(1, status=429, retry_after=3)
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", deployment("web"))
    assert e.value.status == 429
    assert e.value.headers["Retry-After"] == "3"
    body = json.loads(e.value.body)
    assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3


def test_the_official_client_transparently_retries_a_get_that_got_429(k8s_emulator, apps):
    k8s_emulator.fail_next(1, status=429, retry_after=1, verb="list")
    t0 = time.monotonic()
    apps.list_namespaced_deployment("default")
    assert time.monotonic() - t0 >= 0.9 and k8s_emulator.faults_injected == 1


def test_an_error_rate_can_target_an_http_method_and_a_path_prefix(k8s_emulator, k8s_api_client):
    k8s_emulator.error_rate(1.0, status=503, verb="GET", path_prefix="/apis/apps")
    with pytest.raises(ApiException) as e:
        client.AppsV1Api(k8s_api_client).list_namespaced_deployment("default")
    assert e.value.status == 503
    assert json.loads(e.value.body)["reason"] == "ServiceUnavailable"
    client.CoreV1Api(k8s_api_client).list_namespace()  # other prefix: fine
    k8s_emulator.clear_faults()
    client.AppsV1Api(k8s_api_client).list_namespaced_deployment("default")


def test_a_partial_error_rate_fails_about_that_fraction(k8s_emulator):
    k8s_emulator.set_faults({"errors": [{"status": 503, "rate": 0.5}], "seed": 7})
    s = requests.Session()
    codes = [s.get(k8s_emulator.url + "/api/v1/namespaces/default", timeout=5).status_code
             for _ in range(200)]
    failed = codes.count(503)
    assert 60 < failed < 140 and codes.count(200) == 200 - failed


def test_added_latency_slows_every_request(k8s_emulator):
    k8s_emulator.set_latency(150)
    t0 = time.monotonic()
    requests.get(k8s_emulator.url + "/api/v1/namespaces", timeout=5)
    assert time.monotonic() - t0 >= 0.15


def test_the_admin_http_api_configures_faults_and_reports_stats(k8s_emulator):
    base = k8s_emulator.url + "/_emulator"
    r = requests.post(base + "/faults", json={"latency_ms": 0, "errors": [
        {"status": 500, "count": 1, "verb": "list"}]}, timeout=5)
    assert r.status_code == 200 and r.json()["errors"][0]["count"] == 1
    assert requests.get(k8s_emulator.url + "/apis/apps/v1/deployments", timeout=5).status_code == 500
    assert requests.get(k8s_emulator.url + "/apis/apps/v1/deployments", timeout=5).status_code == 200
    stats = requests.get(base + "/stats", timeout=5).json()
    assert stats["faults"]["injected"] >= 1
    assert stats["objects"]["namespaces"] >= 3
    assert {"resourceVersion", "event_log", "watches", "requests", "controller"} <= set(stats)
    r = requests.post(base + "/faults", json={"errors": [{"status": 418}]}, timeout=5)
    assert r.status_code == 400
    assert requests.delete(base + "/faults", timeout=5).json()["errors"] == []


def test_the_admin_http_api_pauses_the_controller_compacts_and_resets(k8s_emulator, apps):
    base = k8s_emulator.url + "/_emulator"
    assert requests.post(base + "/controller", json={"paused": True}, timeout=5).json()["paused"]
    apps.create_namespaced_deployment("default", deployment("web"))
    time.sleep(0.15)
    assert apps.read_namespaced_deployment("web", "default").status.observed_generation is None
    requests.post(base + "/controller", json={"paused": False}, timeout=5)
    wait_for(lambda: rolled_out(apps.read_namespaced_deployment("web", "default")),
             message="controller resumed")
    requests.post(base + "/controller", json={"paused": True}, timeout=5)  # no more writes
    compacted = requests.post(base + "/compact", json={}, timeout=5).json()["compactedAt"]
    assert int(compacted) == k8s_emulator.resource_version
    assert requests.post(base + "/drop-watches", timeout=5).json() == {"dropped": 0}
    assert requests.post(base + "/reset", timeout=5).json()["reset"] is True
    assert apps.list_namespaced_deployment("default").items == []


def test_faults_do_not_apply_to_the_admin_endpoints(k8s_emulator):
    k8s_emulator.error_rate(1.0, status=500)
    assert requests.get(k8s_emulator.url + "/_emulator/stats", timeout=5).status_code == 200
    assert requests.get(k8s_emulator.url + "/version", timeout=5).status_code == 500
