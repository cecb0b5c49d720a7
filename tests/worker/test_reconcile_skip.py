"""A sync message whose resourceVersion the row already records costs one SELECT: no lock, no
read from the API server, no write. Any other version (or none) is read and mirrored."""

import time

import pytest

from deployments_app import k8s
from deployments_app.config import DeploymentConfig
from deployments_app.models import Deployment, DeploymentHealth
from deployments_app.operations import deployment_create_in_cluster, deployment_reconcile
from tests.factories import DeploymentFactory


def gets(cluster) -> int:
    return cluster.stats()["requests"]["by_verb"].get("get", 0)


@pytest.mark.django_db(transaction=True)
def test_a_version_already_recorded_is_not_read_again(cluster):
    config = {"identifier": "web", "image": "nginx:1.27", "replicas": 1}
    row = DeploymentFactory(identifier="web", namespace="default", desired_config=config)
    live = deployment_create_in_cluster(config=DeploymentConfig.from_input(config), owner=row.owner.user_external_id,
                                        request_pk=1)
    Deployment.objects.filter(pk=row.pk).update(uid=live["metadata"]["uid"], applied_config=config)

    first = deployment_reconcile(namespace="default", name="web")  # no version: read and mirror
    assert first.done
    row.refresh_from_db()
    recorded, written_at = row.resource_version, row.updated_at
    assert recorded

    before = gets(cluster)
    again = deployment_reconcile(namespace="default", name="web", resource_version=recorded)
    assert again.done and "already recorded" in again.reason
    assert gets(cluster) == before
    row.refresh_from_db()
    assert row.updated_at == written_at

    other = deployment_reconcile(namespace="default", name="web", resource_version=f"{recorded}0")
    assert other.done and "already recorded" not in other.reason
    assert gets(cluster) == before + 1


@pytest.mark.django_db(transaction=True)
def test_judging_a_deployment_with_no_pending_rollout_and_no_open_revision_costs_one_query():
    """The rollout timer's check of one deployment (`rollouts_observe`); with nothing waiting
    (the common case) that is one SELECT with two EXISTS, not a read of the row, its revisions
    and its requests. After a sync the worker needs not even that (the test below)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from requests_app.rollouts import rollouts_observe

    quiet = DeploymentFactory(identifier="quiet", namespace="default")
    with CaptureQueriesContext(connection) as queries:
        assert rollouts_observe(deployment_id=quiet.pk) == 0
    assert len(queries.captured_queries) == 1, [q["sql"] for q in queries.captured_queries]
    assert queries.captured_queries[0]["sql"].count("EXISTS") == 2


@pytest.mark.django_db(transaction=True)
def test_a_sync_that_writes_judges_rollouts_on_the_row_it_read_with_no_query_of_its_own(cluster):
    """The sync reads whether anything waits on the deployment with the row (under the lock);
    the worker's rollout check after it then runs no statement when nothing does, and the
    revision is stamped completed by the sync that sees the deployment HEALTHY."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from requests_app.models import Revision
    from requests_app.rollouts import WAITING_COLUMNS, rollouts_observe_row
    from tests.factories import RevisionFactory

    config = {"identifier": "web", "image": "nginx:1.27", "replicas": 1}
    row = DeploymentFactory(identifier="web", namespace="default", desired_config=config)
    live = deployment_create_in_cluster(config=DeploymentConfig.from_input(config), owner=row.owner.user_external_id,
                                        request_pk=1)
    Deployment.objects.filter(pk=row.pk).update(uid=live["metadata"]["uid"], applied_config=config)
    revision = RevisionFactory(deployment=row, number=1, generation=live["metadata"]["generation"])

    synced = deployment_reconcile(namespace="default", name="web", also_select=WAITING_COLUMNS)
    assert synced.changed and synced.row.has_uncompleted and not synced.row.has_pending
    deadline = time.monotonic() + 10  # the emulator's controller makes the pod available in steps
    while (k8s.get_deployment("default", "web")["status"].get("availableReplicas") != 1
           and time.monotonic() < deadline):
        time.sleep(0.05)
    healthy = deployment_reconcile(namespace="default", name="web", also_select=WAITING_COLUMNS)
    assert healthy.changed and healthy.row.health == DeploymentHealth.HEALTHY
    rollouts_observe_row(healthy.row)
    assert Revision.objects.get(pk=revision.pk).completed_at is not None

    quiet = deployment_reconcile(namespace="default", name="web", resource_version="0", also_select=WAITING_COLUMNS)
    assert not quiet.row.has_uncompleted and not quiet.row.has_pending
    with CaptureQueriesContext(connection) as queries:
        assert rollouts_observe_row(quiet.row) == 0
    assert queries.captured_queries == []
