"""The cluster's truth reaches Postgres through the real watcher and worker processes."""

import os
import signal

import pytest

from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from requests_app.models import RequestStatus
from requests_app.outbox import message_for
from requests_app.publishing import publish_now
from tests.factories import DeploymentFactory, DeploymentRequestFactory
from tests.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def row(identifier: str) -> Deployment:
    return Deployment.objects.get(identifier=identifier)


def create_through_worker(identifier: str, image: str = "nginx:1.27", replicas: int = 2) -> Deployment:
    config = {"identifier": identifier, "namespace": "default", "image": image, "replicas": replicas}
    deployment = DeploymentFactory(identifier=identifier, desired_config=config)
    req = DeploymentRequestFactory(deployment=deployment, user=deployment.owner, config=config, payload=config)
    publish_now(message_for(req))
    wait_until(lambda: row(identifier).status != DeploymentStatus.INITIATED, message=f"{identifier} to be created")
    req.refresh_from_db()
    assert req.status == RequestStatus.SUCCESS, req.error
    return deployment


def healthy(identifier: str, **expect):
    d = row(identifier)
    ok = d.status == DeploymentStatus.CREATED and d.health == DeploymentHealth.HEALTHY
    return ok and all(getattr(d, k) == v for k, v in expect.items())


@pytest.fixture
def running(stack):
    stack.worker()
    watcher = stack.watcher()
    watcher.wait_for_log("this watcher is now active")
    return stack


def test_a_new_deployment_becomes_healthy_with_counts_from_the_controller(running):
    create_through_worker("web", replicas=3)
    wait_until(lambda: healthy("web", available_replicas=3, ready_replicas=3), message="web to become healthy")
    d = row("web")
    assert (d.replicas, d.updated_replicas, d.generation, d.observed_generation) == (3, 3, 1, 1)
    assert d.drift == {}


def test_the_failing_image_convention_ends_degraded(running):
    create_through_worker("broken", image="nginx:fail")
    wait_until(lambda: row("broken").health == DeploymentHealth.DEGRADED, message="broken to be DEGRADED")
    reasons = {c.get("reason") for c in row("broken").conditions}
    assert "ProgressDeadlineExceeded" in reasons


def test_an_edit_behind_the_managers_back_shows_the_live_values_and_the_drift(running, apps_api):
    create_through_worker("web")
    wait_until(lambda: healthy("web"), message="web to become healthy")
    apps_api.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    apps_api.patch_namespaced_deployment(
        "web", "default", {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}}
    )
    wait_until(lambda: healthy("web", replicas=5, image="nginx:1.28", available_replicas=5), message="the edit")
    assert row("web").drift == {
        "image": {"desired": "nginx:1.27", "live": "nginx:1.28"},
        "replicas": {"desired": 2, "live": 5},
    }


def test_a_deployment_deleted_while_the_watcher_was_stopped_is_deleted_after_it_starts(stack, apps_api):
    stack.worker()
    watcher = stack.watcher()
    watcher.wait_for_log("this watcher is now active")
    create_through_worker("doomed")
    wait_until(lambda: healthy("doomed"), message="doomed to become healthy")
    assert watcher.terminate() == 0
    apps_api.delete_namespaced_deployment("doomed", "default")
    assert row("doomed").status == DeploymentStatus.CREATED  # nobody is watching
    stack.watcher().wait_for_log("this watcher is now active")
    wait_until(lambda: row("doomed").status == DeploymentStatus.DELETED, message="doomed to be DELETED")


def test_a_forced_410_and_dropped_watches_lose_no_change(running, cluster, apps_api):
    create_through_worker("web")
    wait_until(lambda: healthy("web"), message="web to become healthy")
    watcher_log = running.procs[1].log
    # Keep the watcher away while the change happens and the event log is compacted behind it.
    cluster.error_rate(1.0, status=503, verb="watch")
    cluster.drop_watches(abort=True)
    wait_until(lambda: "watch of default failed" in watcher_log(), message="the watcher to notice")
    apps_api.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    cluster.compact()
    cluster.clear_faults()
    wait_until(lambda: healthy("web", replicas=4, available_replicas=4), message="the scale to reach the row")
    running.procs[1].wait_for_log("(410 Gone): relisting")
    # And a plain dropped watch: resumed from the last resourceVersion, nothing missed.
    cluster.drop_watches()
    apps_api.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 1}})
    wait_until(lambda: healthy("web", replicas=1, available_replicas=1), message="the second scale to reach the row")


def test_when_the_active_watcher_is_killed_the_standby_takes_over_and_no_change_is_lost(stack, apps_api):
    stack.worker()
    first = stack.watcher()
    first.wait_for_log("this watcher is now active")
    second = stack.watcher()
    second.wait_for_log("standing by")
    create_through_worker("web")
    wait_until(lambda: healthy("web"), message="web to become healthy")
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    apps_api.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 6}})
    second.wait_for_log("this watcher is now active")
    wait_until(lambda: healthy("web", replicas=6, available_replicas=6), message="the scale to reach the row")


def test_a_deployment_without_the_managed_by_label_is_never_recorded(running, apps_api):
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "stranger", "labels": {"app": "stranger"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "stranger"}},
                 "template": {"metadata": {"labels": {"app": "stranger"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }
    apps_api.create_namespaced_deployment("default", body)
    create_through_worker("ours")
    wait_until(lambda: healthy("ours"), message="ours to become healthy")
    assert not Deployment.objects.filter(identifier="stranger").exists()
    live = apps_api.read_namespaced_deployment("stranger", "default")
    assert live.metadata.annotations is None or "k8sdm.io/last-request" not in live.metadata.annotations


def test_sigterm_stops_the_watcher_within_ten_seconds(running):
    watcher = running.procs[1]
    assert watcher.terminate(timeout=10) == 0  # the documented bound (a pod's grace period is 30 s)
    assert "watcher stopped" in watcher.log()


def test_the_watcher_re_elects_itself_and_carries_on_after_postgres_restarts(running, apps_api):
    from devstack import pytest_plugin
    from devstack.postgres import PostgresServer
    from django.db import connection

    pg = next((s for s in pytest_plugin._started if isinstance(s, PostgresServer)), None)
    if pg is None:
        pytest.skip("DATABASE_URL points at a server this session did not start: cannot restart it")
    create_through_worker("web")
    wait_until(lambda: healthy("web"), message="web to become healthy")
    watcher = running.procs[1]
    connection.close()
    pg.stop()
    pg.start()
    wait_until(lambda: watcher.log().count("this watcher is now active") >= 2, timeout=30,
               message="the watcher to take its lock again")
    apps_api.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    wait_until(lambda: healthy("web", replicas=3, available_replicas=3), timeout=30, message="the scale after restart")
    assert "lost the watcher lock" in watcher.log()


def test_a_change_made_while_nats_is_down_reaches_the_row_once_nats_is_back(transactional_db, cluster, settings,
                                                                          tmp_path, apps_api):
    from devstack._proc import free_port
    from devstack.nats import NatsServer
    from tests.stack import make_stack, own_publisher

    nats = NatsServer(tmp_path / "nats", free_port()).start()
    stack = make_stack(settings, tmp_path, cluster.kubeconfig, NATS_URL=nats.url)
    with own_publisher(nats.url):
        try:
            stack.worker()
            watcher = stack.watcher()
            watcher.wait_for_log("this watcher is now active")
            create_through_worker("web")
            wait_until(lambda: healthy("web"), message="web to become healthy")
            nats.stop()
            apps_api.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
            wait_until(lambda: "could not publish" in watcher.log(), timeout=20, message="the watcher to notice")
            nats.start()
            wait_until(lambda: healthy("web", replicas=4, available_replicas=4), timeout=40,
                       message="the scale to reach the row after NATS returned")
        finally:
            stack.stop_all()
            nats.stop()
        nats.stop()
