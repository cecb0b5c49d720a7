"""The reliability contract (docs/architecture.md, Reliability rules) with real worker processes."""

import os
import signal

import pytest

from deployments_app.models import Deployment
from devstack._proc import free_port
from devstack.nats import NatsServer
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from requests_app.outbox import message_for
from requests_app.publishing import publish_now
from tests.factories import DeploymentFactory, DeploymentRequestFactory
from tests.stack import make_stack, own_publisher, submit, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]



def status_of(req: DeploymentRequest) -> str:
    return DeploymentRequest.objects.values_list("status", flat=True).get(pk=req.pk)


def all_finished(reqs) -> bool:
    return not DeploymentRequest.objects.filter(pk__in=[r.pk for r in reqs], status=RequestStatus.CREATED).exists()


def updates(deployment: Deployment, count: int) -> list[DeploymentRequest]:
    out = []
    for replicas in range(1, count + 1):
        config = {**deployment.desired_config, "replicas": replicas}
        out.append(DeploymentRequestFactory(deployment=deployment, user=deployment.owner, action=RequestAction.UPDATE,
                                            config=config, payload={"replicas": replicas}))
    return out


def test_two_workers_never_apply_requests_of_one_deployment_at_the_same_time(stack, cluster, apps_api):
    first, second = DeploymentFactory(identifier="alpha"), DeploymentFactory(identifier="beta")
    creates = [DeploymentRequestFactory(deployment=d, user=d.owner) for d in (first, second)]
    reqs = creates + updates(first, 8) + updates(second, 8)
    cluster.set_latency(25)
    creates_before = cluster.stats()["requests"]["by_verb"].get("create", 0)
    workers = [stack.worker(), stack.worker()]
    for req in sorted(reqs, key=lambda r: -r.pk):  # newest first: the worker must still apply oldest first
        publish_now(message_for(req))
    wait_until(lambda: all_finished(reqs), timeout=60, message="every request to finish")
    for deployment in (first, second):
        rows = list(DeploymentRequest.objects.filter(deployment=deployment).order_by("pk"))
        assert {r.status for r in rows} == {RequestStatus.SUCCESS}, [r.error for r in rows]
        for earlier, later in zip(rows, rows[1:]):
            # one at a time, in acceptance order
            assert earlier.finished_at <= later.started_at, (earlier.request_id, later.request_id)
        live = apps_api.read_namespaced_deployment(deployment.identifier, "default")
        assert live.spec.replicas == rows[-1].config["replicas"] == 8
    # Each request applied exactly once across both processes: one attempt each (counted in the
    # row by whichever worker applied it), and one create call per deployment reached the cluster.
    assert sorted(DeploymentRequest.objects.filter(pk__in=[r.pk for r in reqs]).values_list("attempts", flat=True)) \
        == [1] * len(reqs)
    assert cluster.stats()["requests"]["by_verb"].get("create", 0) - creates_before == 2
    assert all(w.proc.poll() is None for w in workers)


def test_kill_9_of_a_worker_in_the_middle_of_a_request_loses_nothing(stack, cluster, apps_api):
    victim = stack.worker()
    cluster.set_latency(1500)
    creates = cluster.stats()["requests"]["by_verb"].get("create", 0)
    req = submit()
    wait_until(lambda: cluster.stats()["requests"]["by_verb"].get("create", 0) > creates,
               message="the create call to reach the cluster")
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait()
    cluster.set_latency(0)
    assert status_of(req) == RequestStatus.CREATED
    stack.worker()
    wait_until(lambda: status_of(req) != RequestStatus.CREATED, timeout=30, message="the redelivered request")
    req.refresh_from_db()
    assert req.status == RequestStatus.SUCCESS, req.error
    items = apps_api.list_namespaced_deployment("default").items
    assert [d.metadata.name for d in items] == [req.identifier]
    assert items[0].metadata.generation == 1  # created once, never rewritten


def test_sigterm_finishes_the_message_in_flight_and_exits_0_within_10_seconds(stack, cluster):
    worker = stack.worker()
    cluster.set_latency(1000)
    req = submit()
    wait_until(lambda: DeploymentRequest.objects.get(pk=req.pk).attempts >= 1, message="the first attempt")
    assert worker.terminate(timeout=10) == 0  # the documented bound (a pod's grace period is 30 s)
    assert status_of(req) == RequestStatus.SUCCESS
    assert "worker stopped" in worker.log()


@pytest.fixture
def own_nats(tmp_path):
    """A NATS server of this test's own, which the test may stop and start."""
    server = NatsServer(tmp_path / "nats", free_port())
    yield server
    server.stop()


def test_a_request_accepted_while_nats_is_down_is_applied_after_it_returns(transactional_db, cluster, settings,
                                                                          tmp_path, own_nats, apps_api):
    stack = make_stack(settings, tmp_path, cluster.kubeconfig, NATS_URL=own_nats.url)
    with own_publisher(own_nats.url):
        try:
            req = submit()  # NATS is not running: the request waits in the outbox
            req.refresh_from_db()
            assert req.published_at is None
            worker = stack.worker(ready=False)
            worker.wait_for_log("cannot connect to NATS")
            own_nats.start()
            wait_until(lambda: status_of(req) != RequestStatus.CREATED, timeout=30,
                       message="the request to be applied")
            req.refresh_from_db()
            assert req.status == RequestStatus.SUCCESS and req.published_at is not None
            assert "outbox relay published 1 pending request" in worker.log()
            assert apps_api.read_namespaced_deployment(req.identifier, "default").metadata.name == req.identifier
        finally:
            stack.stop_all()


def test_the_worker_carries_on_after_nats_restarts(transactional_db, cluster, settings, tmp_path, own_nats):
    own_nats.start()
    stack = make_stack(settings, tmp_path, cluster.kubeconfig, NATS_URL=own_nats.url)
    with own_publisher(own_nats.url):
        try:
            worker = stack.worker()
            before = submit()
            wait_until(lambda: status_of(before) == RequestStatus.SUCCESS, message="the first request")
            own_nats.stop()
            after = submit()  # accepted while NATS is down
            own_nats.start()
            wait_until(lambda: status_of(after) == RequestStatus.SUCCESS, timeout=30,
                       message="the request after restart")
            assert worker.proc.poll() is None
        finally:
            stack.stop_all()


def test_a_request_whose_message_is_gone_is_republished_and_applied(stack, cluster, apps_api):
    from datetime import timedelta

    from django.utils import timezone

    stack.env["K8SDM_STALE_REQUEST_SECONDS"] = "2"
    req = DeploymentRequestFactory()
    # Published long ago, yet never delivered: as if its deliveries ran out or the stream was purged.
    DeploymentRequest.objects.filter(pk=req.pk).update(published_at=timezone.now() - timedelta(minutes=10))
    worker = stack.worker()
    wait_until(lambda: status_of(req) == RequestStatus.SUCCESS, timeout=30, message="the stale request")
    assert f"request {req.pk} was still pending" in worker.log()
    assert apps_api.read_namespaced_deployment(req.identifier, "default").metadata.name == req.identifier


def test_sigterm_while_nats_is_down_still_exits_promptly(transactional_db, cluster, settings, tmp_path, own_nats):
    own_nats.start()
    stack = make_stack(settings, tmp_path, cluster.kubeconfig, NATS_URL=own_nats.url)
    worker = stack.worker()
    own_nats.stop()
    worker.wait_for_log("disconnected from NATS")  # the worker is reconnecting now
    assert worker.terminate(timeout=10) == 0  # the documented bound
