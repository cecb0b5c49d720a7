"""A failed CREATE records FAILURE and frees the identifier in ONE transaction: a crash between the
two writes (here a trigger that makes the second one fail) leaves both undone, so the request is
applied again later, instead of a FAILURE beside a row INITIATED for good (every later CREATE of
the identifier would get 409)."""

import pytest
from django.db import DatabaseError, connection

from deployments_app.models import Deployment, DeploymentStatus
from requests_app.models import RequestStatus
from requests_app.processing import handle_apply
from tests.factories import DeploymentRequestFactory
from tests.worker.triggers import failing_trigger

pytestmark = pytest.mark.timeout(60)

TABLE = Deployment._meta.db_table


@pytest.fixture
def crash_on_marking_gone(transactional_db):
    with failing_trigger("k8sdm_test_crash", table=TABLE, timing="BEFORE UPDATE",
                         message="simulated crash between the two writes",
                         when="NEW.status = 'DELETED' AND OLD.status = 'INITIATED'"):
        yield


def test_a_crash_between_failure_and_marking_the_deployment_gone_undoes_both(crash_on_marking_gone, cluster,
                                                                               apps_api):
    apps_api.create_namespaced_deployment("default", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "taken"},
        "spec": {"selector": {"matchLabels": {"app": "taken"}},
                 "template": {"metadata": {"labels": {"app": "taken"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}})
    req = DeploymentRequestFactory(deployment__identifier="taken")

    with pytest.raises(DatabaseError, match="simulated crash"):
        handle_apply(req.pk)
    connection.close()  # the worker's connection after a crash
    req.refresh_from_db()
    row = Deployment.objects.get(pk=req.deployment_id)
    assert (req.status, row.status) == (RequestStatus.CREATED, DeploymentStatus.INITIATED)  # both or neither

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER k8sdm_test_crash ON {TABLE}")
    handle_apply(req.pk)  # the redelivery
    req.refresh_from_db()
    row.refresh_from_db()
    assert req.status == RequestStatus.FAILURE and "already exists" in req.error
    assert row.status == DeploymentStatus.DELETED and row.status_reason == f"the CREATE request {req.request_id} failed"
