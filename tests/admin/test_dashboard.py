"""The operations dashboard: what it says, where it links, and that its cost does not grow with the data."""

from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from k8sdm.ops import dashboard
from requests_app.models import DeploymentRequest, RequestStatus
from tests.factories import DeploymentFactory, DeploymentRequestFactory
from tests.stack import wait_until

pytestmark = pytest.mark.django_db

DEGRADED_CONDITIONS = [
    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "0 of 1 available"},
    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
     "message": 'ReplicaSet "web-7d9" has timed out progressing.'},
]


def make_data(n: int) -> None:
    """n deployments and 3n requests: failures, stuck ones, an outbox backlog, DEGRADED, drift."""
    now = timezone.now()
    deployments = DeploymentFactory.create_batch(n, status=DeploymentStatus.CREATED, health=DeploymentHealth.HEALTHY)
    Deployment.objects.filter(pk=deployments[0].pk).update(health=DeploymentHealth.DEGRADED,
                                                           conditions=DEGRADED_CONDITIONS)
    Deployment.objects.filter(pk=deployments[-1].pk).update(drift={"replicas": {"desired": 2, "live": 5}})
    for i in range(3 * n):
        d = deployments[i % n]
        req = DeploymentRequestFactory(deployment=d, user=d.owner, published_at=now)
        if i % 3 == 0:
            DeploymentRequest.objects.filter(pk=req.pk).update(
                status=RequestStatus.FAILURE, error=f"quota exceeded #{i}", finished_at=now - timedelta(minutes=5))
        elif i % 3 == 1:
            DeploymentRequest.objects.filter(pk=req.pk).update(created_at=now - timedelta(minutes=10),
                                                               published_at=None)


def dashboard_queries(staff) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = staff.get(reverse("admin:index"))
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_dashboard_costs_the_same_few_queries_for_10_or_300_deployments(staff):
    make_data(10)
    small, _ = dashboard_queries(staff)
    make_data(300)
    large, body = dashboard_queries(staff)
    assert small == large <= 16
    snap = dashboard.snapshot()
    assert snap.request_counts == {"CREATED": 620, "SUCCESS": 0, "FAILURE": 310}
    assert (snap.failures_count, snap.stuck_count, snap.outbox_backlog) == (310, 310, 310)
    assert snap.deployment_counts["CREATED"] == 310 and snap.health_counts["DEGRADED"] == 2
    assert len(snap.failures) == len(snap.stuck) == dashboard.LIST_LIMIT  # lists are capped
    assert body.count("quota exceeded #") == dashboard.LIST_LIMIT


def test_it_says_what_is_wrong_and_links_into_the_filtered_lists(staff):
    make_data(3)
    body = staff.get(reverse("admin:index")).content.decode()
    requests_url = reverse("admin:requests_app_deploymentrequest_changelist")
    deployments_url = reverse("admin:deployments_app_deployment_changelist")
    assert "Needs attention" in body
    assert f'<a href="{requests_url}?attention=failed_1h">3 request(s) failed in the last hour</a>' in body
    assert f'<a href="{requests_url}?attention=stuck">3 request(s) pending for more than 1 min</a>' in body
    assert f'<a href="{deployments_url}?health__exact=DEGRADED">1 deployment(s) DEGRADED</a>' in body
    assert f'<a href="{deployments_url}?drift=yes">1 deployment(s) drifted from what was asked</a>' in body
    assert "3 request(s) not yet published to JetStream" in body
    assert "quota exceeded #0" in body
    assert "ProgressDeadlineExceeded: ReplicaSet &quot;web-7d9&quot; has timed out progressing." in body
    assert "drift: replicas 5 != 2" in body
    assert "No watcher holds the leader lock" in body and "No worker is connected to Postgres" in body

    # Each link shows exactly the set it names.
    stuck = staff.get(requests_url, {"attention": "stuck"}).content.decode()
    failed = staff.get(requests_url, {"attention": "failed_1h"}).content.decode()
    assert stuck.count('class="action-select"') == 3 and failed.count('class="action-select"') == 3
    assert "quota exceeded" in failed and "quota exceeded" not in stuck
    drifted = staff.get(deployments_url, {"drift": "yes"}).content.decode()
    assert drifted.count('class="action-select"') == 1 and "drift: replicas 5 != 2" in drifted


def test_all_clear_when_nothing_is_wrong(staff, settings):
    DeploymentFactory(status=DeploymentStatus.CREATED, health=DeploymentHealth.HEALTHY)
    snap = dashboard.snapshot()
    kinds = [p.text for p in snap.problems]
    # Only the missing processes (none run in this test) and JetStream's missing consumers remain.
    assert all(k.startswith(("no watcher", "no worker", "JetStream")) for k in kinds), kinds


def _session(application_name: str) -> psycopg.Connection:
    params = {**connection.get_connection_params(), "application_name": application_name}
    return psycopg.connect(**params, autocommit=True)


# Autocommit, as in production: Postgres keeps one pg_stat_activity snapshot per transaction.
@pytest.mark.django_db(transaction=True)
def test_liveness_comes_from_the_watchers_advisory_lock_and_the_workers_sessions(staff):
    leader, standby = _session("k8sdm-watcher-leader"), _session("k8sdm-watcher-leader")
    worker = _session("k8sdm-worker")
    try:
        assert leader.execute("SELECT pg_try_advisory_lock(%s, %s)", dashboard.LEADER_LOCK).fetchone()[0]
        worker.execute("SELECT 1")
        body = staff.get(reverse("admin:index")).content.decode()
        assert f"A watcher leads: Postgres pid {leader.info.backend_pid}" in body
        assert "2 watcher session(s) in Postgres" in body
        assert "1 Postgres session(s) from workers" in body
        assert "No watcher holds" not in body and "No worker is connected" not in body

        pid = leader.info.backend_pid
        leader.close()  # the leader dies: its lock goes with its connection
        wait_until(lambda: all(s.pid != pid for s in dashboard.liveness().watcher_sessions),
                   message="Postgres to end the closed session")
        body = staff.get(reverse("admin:index")).content.decode()
        assert "No watcher holds the leader lock" in body and "1 watcher session(s)" in body
    finally:
        for conn in (leader, standby, worker):
            conn.close()


def test_a_staff_user_without_view_permissions_sees_no_operations_data(client, django_user_model):
    make_data(1)
    user = django_user_model.objects.create_user("intern", password="a-long-intern-password-1", is_staff=True)
    client.force_login(user)
    body = client.get(reverse("admin:index")).content.decode()
    assert "quota exceeded" not in body and "may not view deployments and requests" in body


def test_it_says_when_events_wait_in_the_events_outbox(staff):
    from datetime import timedelta

    from django.utils import timezone

    from events_app.models import EventOutbox

    row = EventOutbox.objects.create(subject="k8sdm.events.u1.web.request.accepted", payload=b"{}", msg_id="m1")
    EventOutbox.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    body = staff.get(reverse("admin:index")).content.decode()
    assert "1 event(s) not yet published to JetStream (oldest 5 min" in body
    assert "events not yet published (events outbox)" in body
