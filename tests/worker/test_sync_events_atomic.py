"""A reconcile that changes a row writes the change and its events' outbox rows in ONE transaction:
a crash between the two (here a trigger that makes the outbox insert fail) leaves the row as it
was, so the next sync sees the transition again and its event is not lost."""

import pytest
from django.db import DatabaseError, connection

from deployments_app.config import DeploymentConfig
from deployments_app.models import Deployment, DeploymentStatus
from deployments_app.operations import deployment_create_in_cluster, deployment_reconcile
from events_app.models import EventOutbox
from tests.factories import DeploymentFactory
from tests.worker.triggers import failing_trigger

pytestmark = pytest.mark.timeout(60)

OUTBOX = EventOutbox._meta.db_table


@pytest.fixture
def crash_on_event(transactional_db):
    with failing_trigger("k8sdm_test_crash_event", table=OUTBOX, timing="BEFORE INSERT",
                         message="simulated crash before the event was written"):
        yield


def test_a_crash_between_a_syncs_row_write_and_its_event_undoes_both(crash_on_event, cluster, settings):
    settings.K8SDM_EVENTS_ENABLED = True
    config = {"identifier": "web", "image": "nginx:1.27", "replicas": 1}
    row = DeploymentFactory(identifier="web", namespace="default", desired_config=config,
                            status=DeploymentStatus.INITIATED)
    live = deployment_create_in_cluster(config=DeploymentConfig.from_input(config), owner=row.owner.user_external_id,
                                        request_pk=1)
    Deployment.objects.filter(pk=row.pk).update(uid=live["metadata"]["uid"], applied_config=config)

    with pytest.raises(DatabaseError, match="simulated crash"):
        deployment_reconcile(namespace="default", name="web")
    connection.close()  # the worker's connection after a crash
    row.refresh_from_db()
    assert (row.status, row.resource_version) == (DeploymentStatus.INITIATED, "")  # neither written
    assert not EventOutbox.objects.exists()

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER k8sdm_test_crash_event ON {OUTBOX}")
    assert deployment_reconcile(namespace="default", name="web").changed  # the redelivery
    row.refresh_from_db()
    assert row.status == DeploymentStatus.CREATED
    assert EventOutbox.objects.filter(msg_id__contains="deployment.status_changed").count() == 1
