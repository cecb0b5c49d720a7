"""GET /api/v1/deployments/{identifier}/logs: bounded, validated, isolated per user and per deployment."""

from __future__ import annotations

import pytest

from tests.diagnosis.conftest import BOB

URL = "/api/v1/deployments/{}/logs"
pytestmark = pytest.mark.django_db(transaction=True)


def ready(n: int):
    return lambda d: sum(p["ready"] for p in d["pods"]) == n


def test_the_last_lines_of_the_first_pod(run, alice):
    run("web", replicas=2, until=ready(2))
    response = alice.get(URL.format("web"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["pod"].startswith("web-") and body["container"] == "app"
    assert any("starting container app (image nginx:1.27)" in line for line in body["lines"])
    assert body["truncated"] is False


def test_tail_and_a_named_pod(run, alice):
    run("web", replicas=2, until=ready(2))
    pods = alice.get("/api/v1/deployments/web/diagnosis").json()["pods"]
    response = alice.get(URL.format("web"), {"pod": pods[1]["name"], "tail": "1", "container": "app"})
    assert response.status_code == 200, response.json()
    assert response.json()["pod"] == pods[1]["name"]
    assert len(response.json()["lines"]) == 1


def test_bounded_by_the_byte_setting(run, alice, settings):
    run("web", replicas=1, until=ready(1))
    settings.K8SDM_LOGS_MAX_BYTES = 60
    body = alice.get(URL.format("web")).json()
    assert sum(len(line.encode()) + 1 for line in body["lines"]) <= 60
    assert body["truncated"] is True


def test_tail_above_the_maximum_is_a_400(run, alice, settings):
    run("web", replicas=1)
    settings.K8SDM_LOGS_MAX_LINES = 50
    response = alice.get(URL.format("web"), {"tail": "51"})
    assert response.status_code == 400
    assert "tail" in response.json()["error"]["fields"]


@pytest.mark.parametrize("params,field", [
    ({"tail": "0"}, "tail"), ({"tail": "x"}, "tail"), ({"since": "-1"}, "since"),
    ({"previous": "maybe"}, "previous"), ({"pod": "../etc"}, "pod"), ({"container": "A B"}, "container"),
    ({"follow": "true"}, "follow"),
])
def test_every_parameter_is_checked(run, alice, params, field):
    run("web", replicas=1)
    response = alice.get(URL.format("web"), params)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]


def test_previous_run_of_a_crashed_container(run, alice):
    run("cr", image="busybox:crash-3", replicas=1,
        until=lambda d: any(c["last_termination"] for p in d["pods"] for c in p["containers"]))
    body = alice.get(URL.format("cr"), {"previous": "true"}).json()
    assert body["lines"][-1] == "app: exiting with code 3"


def test_unknown_container_is_a_400(run, alice):
    run("web", replicas=1, until=ready(1))
    response = alice.get(URL.format("web"), {"container": "sidecar"})
    assert response.status_code == 400
    assert "container" in response.json()["error"]["fields"]


def test_another_users_deployment_or_pod_is_404(run, alice, bob):
    run("web", replicas=1, until=ready(1))
    run("theirs", owner=BOB, replicas=1, until=ready(1))
    assert bob.get(URL.format("web")).status_code == 404
    their_pod = bob.get("/api/v1/deployments/theirs/diagnosis").json()["pods"][0]["name"]
    response = alice.get(URL.format("web"), {"pod": their_pod})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "pod_not_found"
    # alice's own second deployment's pod through the wrong deployment: 404 too
    run("other", replicas=1, until=ready(1))
    other_pod = alice.get("/api/v1/deployments/other/diagnosis").json()["pods"][0]["name"]
    assert alice.get(URL.format("web"), {"pod": other_pod}).status_code == 404


def test_api_server_down_is_503(run, alice, cluster):
    run("web", replicas=1, until=ready(1))
    cluster.fail_next(count=50, status=503)
    response = alice.get(URL.format("web"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dependency_unavailable"
