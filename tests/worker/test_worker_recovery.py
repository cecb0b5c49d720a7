"""Recovering from outages: redelivery delays are the ones the worker logs (the consumers have no
server-side BackOff), whatever the cause of the nak, and SIGTERM stops a worker within the documented 10 s whatever it is stuck on."""

import os
import re
import time
from datetime import datetime, timedelta

import pytest
from django.db import connection

from devstack import pytest_plugin
from deployments_app import locks
from devstack.postgres import PostgresServer
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from requests_app.outbox import message_for
from requests_app.publishing import current
from tests.factories import DeploymentRequestFactory
from tests.stack import submit, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NAK = re.compile(r"^(\S+ \S+) INFO\s+requests_app\.worker: nak requests message \((.*)\): "
                 r"delivery (\d+), next attempt in ([\d.]+)s$", re.M)
ACK_WAIT = 60.0  # JetStream's own redelivery (a consumer with BackOff) would come ack_wait multiples later
# Why a delivery was nak'ed, in the order the test causes them.
CAUSES = (("lock", "deployment busy"), ("postgres", "database:"), ("handler", "'image'"))


def naks(log: str) -> list[tuple[datetime, str, int, float]]:
    """(logged at, cause, delivery, next attempt in) of every nak the worker logged."""
    found = []
    for ts, reason, delivery, delay in NAK.findall(log):
        cause = next((name for name, marker in CAUSES if marker in reason), reason)
        found.append((datetime.strptime(ts, "%Y-%m-%d %H:%M:%S,%f"), cause, int(delivery), float(delay)))
    return found


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


def test_a_request_nakked_for_a_held_lock_then_postgres_down_then_a_handler_error_comes_back_at_the_logged_delays(
        stack, cluster):
    pg = session_postgres()
    stack.env.update(K8SDM_RETRY_BASE_SECONDS="1", K8SDM_NAK_MAX_SECONDS="4", K8SDM_ACK_WAIT_SECONDS=str(ACK_WAIT))
    req = DeploymentRequestFactory()
    good_config = req.config
    # A config the handler cannot read (no image): once it gets past the lock and Postgres, it raises.
    DeploymentRequest.objects.filter(pk=req.pk).update(config={"identifier": req.identifier})
    assert locks.try_lock(req.deployment_id)  # held by this test's connection: "another worker"
    worker = stack.worker()
    try:
        publish_raw(req)
        wait_until(lambda: any(c == "lock" for _, c, _, _ in naks(worker.log())), timeout=60,
                   message="a nak for the held lock")
        pg.stop()  # the lock goes with the test's session
        connection.close()
        wait_until(lambda: any(c == "postgres" for _, c, _, _ in naks(worker.log())), timeout=60,
                   message="a nak while Postgres is down")
    finally:
        pg.start()
    wait_until(lambda: any(c == "handler" for _, c, _, _ in naks(worker.log())), timeout=60,
               message="a nak for the handler's error")
    DeploymentRequest.objects.filter(pk=req.pk).update(config=good_config)
    wait_until(lambda: status_of(req) == RequestStatus.SUCCESS, timeout=60, message="the request once it can be read")

    seen = naks(worker.log())
    causes = [cause for _, cause, _, _ in seen]
    # One message, delivered again and again, nak'ed for each cause in turn.
    assert [delivery for _, _, delivery, _ in seen] == list(range(1, len(seen) + 1)), seen
    assert sorted(set(causes), key=causes.index) == ["lock", "postgres", "handler"], causes
    assert causes == sorted(causes, key=["lock", "postgres", "handler"].index), causes
    for (at, _, _, delay), (next_at, _, _, _) in zip(seen, seen[1:]):
        gap = (next_at - at).total_seconds()
        # Each next nak is logged after the delay the previous one logged (a redelivery never comes
        # sooner), and long before JetStream's own schedule (ack_wait) would have brought it back:
        # the worker's delay is the one that counted. The next line also includes the handling of
        # that delivery (up to 5 s of waiting for the lock), so only these generous bounds hold
        # whatever the machine's load.
        assert delay - 0.2 <= gap < ACK_WAIT / 2, (delay, gap, seen)
    delays = [delay for _, _, _, delay in seen]
    assert max(delays) <= 4 * 1.2, delays  # bounded by K8SDM_NAK_MAX_SECONDS (jitter included)
    assert delays[1] > delays[0], delays  # grows with the deliveries (1 s, 2 s ... +-20 %)
    assert worker.log().count("PostgreSQL unavailable") == 1  # the outage, once
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


# The scenario is a 60 s outage of Kubernetes writes; the suite shortens it (at least until
# the queued requests have been turned away by the lock once).
K8S_OUTAGE_SECONDS = float(os.environ.get("K8SDM_TEST_K8S_OUTAGE_SECONDS", "10"))


def test_requests_queued_behind_a_create_retrying_through_a_kubernetes_outage_finish_with_it(stack, cluster, apps_api):
    # The CREATE retries about every second through the outage; a queued request's own message,
    # turned away by the lock, is nak'ed for 16 s or more (the nak delay's base is 20 s).
    stack.env.update(K8SDM_RETRY_BASE_SECONDS="20", K8SDM_RETRY_MAX_SECONDS="1", K8SDM_NAK_MAX_SECONDS="60",
                     K8SDM_ACK_WAIT_SECONDS=str(ACK_WAIT), K8SDM_APPLY_MAX_ATTEMPTS="1000")
    worker = stack.worker()
    cluster.error_rate(1.0, status=503, verb="create")
    outage_started = time.monotonic()
    create = submit()
    wait_until(lambda: "retrying" in worker.log(), message="the CREATE to retry")
    queued = [submit(deployment=create.deployment, user=create.user, action=action)
              for action in (RequestAction.UPDATE, RequestAction.UPDATE, RequestAction.DELETE)]
    wait_until(lambda: sum(c == "lock" for _, c, _, _ in naks(worker.log())) >= len(queued), timeout=60,
               message="every queued request turned away by the lock")
    time.sleep(max(0.0, outage_started + K8S_OUTAGE_SECONDS - time.monotonic()))  # the outage's length
    cluster.clear_faults()

    wait_until(lambda: all(status_of(r) != RequestStatus.CREATED for r in [create, *queued]), timeout=60,
               message="every request to finish")
    create.refresh_from_db()
    assert create.status == RequestStatus.SUCCESS and create.attempts > 1, (create.status, create.error)
    for req in queued:
        req.refresh_from_db()
        assert (req.status, req.attempts) == (RequestStatus.SUCCESS, 1), (req.action, req.error)
    assert [r.finished_at for r in queued] == sorted(r.finished_at for r in queued)  # in order
    assert apps_api.list_namespaced_deployment("default").items == []  # the DELETE came last
    # They finished with the CREATE, in its lock holder's turn, before any of their own messages came
    # back: each message's last nak before that was due later (logged time + logged delay).
    turned_away = [(at.astimezone(), delay) for at, cause, _, delay in naks(worker.log())
                   if cause == "lock" and at.astimezone() < create.finished_at][-len(queued):]
    first_due = min(at + timedelta(seconds=delay) for at, delay in turned_away)
    assert max(r.finished_at for r in queued) < first_due, (turned_away, [r.finished_at for r in queued])
