"""What applying a CREATE costs in statements, where two were merged into one: the events of one
transition go to the outbox in one INSERT, and after the last pending request of a deployment
no look for a next one is made. Requests queued behind it are still applied in order."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events_app.models import EventOutbox
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from requests_app.processing import handle_apply
from tests.factories import DeploymentRequestFactory

pytestmark = pytest.mark.timeout(60)

PENDING_LOOK = "ORDER BY r.id LIMIT 1"  # handle_apply's look for the oldest pending request


def _config(identifier: str, image: str = "nginx:1.27") -> dict:
    return {"identifier": identifier, "namespace": "default", "image": image, "replicas": 1}


@pytest.mark.django_db(transaction=True)
def test_a_lone_create_looks_for_pending_requests_once_and_writes_a_transitions_events_in_one_insert(
        cluster, settings):
    settings.K8SDM_EVENTS_ENABLED = True
    req = DeploymentRequestFactory(deployment__identifier="web", identifier="web", action=RequestAction.CREATE,
                                   config=_config("web"))
    with CaptureQueriesContext(connection) as queries:
        handle_apply(req.pk)
    req.refresh_from_db()
    assert req.status == RequestStatus.SUCCESS

    sql = [q["sql"] for q in queries.captured_queries]
    assert sum(PENDING_LOOK in s for s in sql) == 1, sql
    outbox_inserts = [s for s in sql if s.startswith(f'INSERT INTO "{EventOutbox._meta.db_table}"')]
    # request.succeeded, then the sync's INITIATED -> CREATED and UNKNOWN -> PROGRESSING together
    assert len(outbox_inserts) == 2, outbox_inserts
    kinds = sorted(EventOutbox.objects.values_list("subject", flat=True))
    assert len(kinds) == 3 and sum(k.endswith(".deployment.status_changed") for k in kinds) == 1
    assert sum(k.endswith(".deployment.health_changed") for k in kinds) == 1


@pytest.mark.django_db(transaction=True)
def test_requests_queued_behind_one_are_applied_in_order_by_the_same_call(cluster):
    create = DeploymentRequestFactory(deployment__identifier="app", identifier="app", action=RequestAction.CREATE,
                                      config=_config("app"))
    update = DeploymentRequestFactory(deployment=create.deployment, user=create.user, identifier="app",
                                      action=RequestAction.UPDATE, config=_config("app", "nginx:1.28"))
    handle_apply(create.pk)  # hands on to the UPDATE accepted after it
    statuses = dict(DeploymentRequest.objects.filter(pk__in=[create.pk, update.pk]).values_list("pk", "status"))
    assert statuses == {create.pk: RequestStatus.SUCCESS, update.pk: RequestStatus.SUCCESS}
