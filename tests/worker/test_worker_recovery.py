"""Recovering from outages: redelivery delays are the ones the worker logs (the consumers have no
server-side BackOff), and SIGTERM stops a worker within the documented 10 s whatever it is stuck on."""

import re
from datetime import datetime

import pytest
from django.db import connection

from devstack import pytest_plugin
from devstack.postgres import PostgresServer
from requests_app.models import DeploymentRequest, RequestStatus
from requests_app.outbox import message_for
from requests_app.publishing import current
from tests.factories import DeploymentRequestFactory
from tests.stack import submit, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NAK = re.compile(r"^(\S+ \S+) INFO\s+requests_app\.worker: nak requests message \(database: [^\n]*\): "
                 r"delivery (\d+), next attempt in ([\d.]+)s$", re.M)


def session_postgres() -> PostgresServer:
    pg = next((s for s in pytest_plugin._started if isinstance(s, PostgresServer)), None)
    if pg is None:
        pytest.skip("DATABASE_URL points at a server this session did not start: cannot stop it")
    return pg


def publish_raw(req: DeploymentRequest) -> None:
    """Publish without touching Postgres (which may be down)."""
    message = message_for(req)
    result = current().publisher.publish(subject=message.subject, payload=message.to_bytes(), msg_id=message.msg_id)
    assert result.ok, result.error


def status_of(req: DeploymentRequest) -> str:
    return DeploymentRequest.objects.values_list("status", flat=True).get(pk=req.pk)


def test_a_request_nakked_while_postgres_is_down_comes_back_at_the_delays_the_worker_logged(stack, cluster):
    pg = session_postgres()
    stack.env.update(K8SDM_RETRY_BASE_SECONDS="0.5", K8SDM_NAK_MAX_SECONDS="3")
    worker = stack.worker()
    req = DeploymentRequestFactory()
    connection.close()
    pg.stop()
    try:
        publish_raw(req)
        wait_until(lambda: len(NAK.findall(worker.log())) >= 4, timeout=60, message="four nak'ed deliveries")
    finally:
        pg.start()
    naks = [(datetime.strptime(ts, "%Y-%m-%d %H:%M:%S,%f"), int(n), float(d)) for ts, n, d in NAK.findall(worker.log())]
    assert [n for _, n, _ in naks[:4]] == [1, 2, 3, 4]  # one message, delivered again and again
    for (at, _, delay), (next_at, _, _) in zip(naks, naks[1:4]):
        gap = (next_at - at).total_seconds()
        # Delivered again after the delay it logged: not sooner, and not on a schedule of the server's
        # own (a consumer with BackOff would wait ack_wait multiples, tens of seconds, instead).
        assert delay - 0.05 <= gap < delay + 5, (delay, gap)
    delays = [d for _, _, d in naks[:4]]
    assert delays[1] > delays[0] and max(delays) <= 3 * 1.2  # exponential, bounded (jitter included)
    assert worker.log().count("PostgreSQL unavailable") == 1  # the outage, once
    wait_until(lambda: status_of(req) == RequestStatus.SUCCESS, timeout=60, message="the request after the outage")
    wait_until(lambda: "PostgreSQL available again" in worker.log(), message="the end of the outage")


def test_sigterm_stops_a_worker_whose_kubernetes_call_hangs_and_the_request_is_applied_later(stack, cluster):
    stack.env["K8SDM_K8S_TIMEOUT_SECONDS"] = "120"  # the call would hang for a minute
    worker = stack.worker()
    cluster.set_latency(60_000)
    creates = cluster.stats()["requests"]["by_verb"].get("create", 0)
    req = submit()
    wait_until(lambda: cluster.stats()["requests"]["by_verb"].get("create", 0) > creates,
               message="the create call to reach the cluster")
    assert worker.terminate(timeout=10) == 0  # the documented bound
    assert status_of(req) == RequestStatus.CREATED  # left for redelivery, not lost
    cluster.set_latency(0)
    # The unacked message comes back after the ack wait (3 s in tests).
    stack.worker()
    wait_until(lambda: status_of(req) != RequestStatus.CREATED, timeout=60, message="the redelivered request")
    req.refresh_from_db()
    assert req.status == RequestStatus.SUCCESS, req.error


def test_sigterm_stops_a_worker_while_postgres_is_down(stack, cluster):
    pg = session_postgres()
    worker = stack.worker()
    req = submit()
    wait_until(lambda: status_of(req) == RequestStatus.SUCCESS, message="a first request")
    connection.close()
    pg.stop()
    try:
        worker.wait_for_log("PostgreSQL unavailable")  # the relay's next round found it down
        assert worker.terminate(timeout=10) == 0  # the documented bound
    finally:
        pg.start()
