"""What an operator reads: correlated JSON logs across processes, and the worker's metrics."""

import json
import sys

import pytest
import requests

from devstack._proc import free_port
from requests_app.models import DeploymentRequest, RequestStatus
from tests.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_the_api_and_the_worker_log_the_same_correlation_id_for_one_request(stack, cluster):
    stack.env["LOG_FORMAT"] = "json"
    worker = stack.worker()
    api, base = stack.api()
    response = requests.post(f"{base}/api/v1/deployments/requests/create",
                             json={"identifier": "traced", "image": "nginx:1.27"},
                             headers={"X-User-Id": "alice", "X-Correlation-Id": "trace-0042"}, timeout=60)
    assert response.status_code == 202, response.text
    assert response.headers["X-Correlation-Id"] == "trace-0042"
    wait_until(lambda: DeploymentRequest.objects.filter(request_id=response.json()["request_id"])
               .exclude(status=RequestStatus.CREATED).exists(), message="the request to be applied")
    # The worker logs its result line just after it commits the result: wait for the line itself.
    worker.wait_for_log("applied request")
    api_lines = [r for r in json_lines(api.log()) if r.get("correlation_id") == "trace-0042"]
    worker_lines = [r for r in json_lines(worker.log()) if r.get("correlation_id") == "trace-0042"]
    assert api_lines, api.log()[-2000:]
    assert worker_lines, worker.log()[-2000:]
    applied = next(r for r in worker_lines if r["message"].startswith("applied request"))
    assert (applied["identifier"], applied["action"], applied["outcome"]) == ("traced", "CREATE", "SUCCESS")
    row = DeploymentRequest.objects.get(request_id=response.json()["request_id"])
    assert (applied["request_id"], applied["request_pk"], applied["attempts"]) == (row.request_id, row.pk, row.attempts)
    assert applied["duration_ms"] > 0


def test_the_worker_exposes_prometheus_metrics_for_what_it_applied(stack, cluster):
    port = free_port()
    worker = stack._spawn("worker", [sys.executable, "manage.py", "runworker", "--metrics-port", str(port)])
    worker.wait_for_log("worker ready")
    from requests_app.outbox import message_for
    from requests_app.publishing import publish_now
    from tests.factories import DeploymentRequestFactory

    req = DeploymentRequestFactory()
    publish_now(message_for(req))
    wait_until(lambda: DeploymentRequest.objects.get(pk=req.pk).status == RequestStatus.SUCCESS,
               message="the request to be applied")
    # The worker counts a request just after it commits its result: wait for the count to appear.
    applied = 'k8sdm_requests_applied_total{action="CREATE",outcome="SUCCESS"} 1.0'

    def counted():
        body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        return body if applied in body else None

    text = wait_until(counted, message="the applied request to be counted")
    assert "k8sdm_request_apply_seconds_bucket" in text
    assert 'k8sdm_k8s_call_seconds_count{verb="create"} 1.0' in text
    assert "k8sdm_outbox_backlog" in text
