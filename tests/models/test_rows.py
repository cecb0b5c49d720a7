"""k8sdm.rows: the plain-SQL insert and update store what the ORM's create() and
save(update_fields=...) store (auto_now fields, JSON, foreign keys) and fail the same way."""

import time

import pytest
from django.db import IntegrityError, transaction

from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from k8sdm import rows
from requests_app.models import DeploymentRequest, RequestAction
from tests.factories import DeploymentFactory, UserFactory


@pytest.mark.django_db
def test_insert_stores_every_field_as_create_would():
    user = UserFactory()
    config = {"identifier": "web", "image": "nginx:1.27", "replicas": 2, "env": [{"name": "A", "value": "ü\"'"}]}
    row = rows.insert(Deployment(identifier="web", namespace="team-a", owner=user, status=DeploymentStatus.INITIATED,
                                 health=DeploymentHealth.UNKNOWN, desired_config=config, ask_replicas=2))
    assert row.pk is not None and not row._state.adding
    assert row.created_at is not None and row.updated_at is not None  # auto_now_add / auto_now set on the object

    stored = Deployment.objects.get(pk=row.pk)
    assert stored.desired_config == config  # JSON round trip, quotes and non-ASCII included
    assert (stored.identifier, stored.namespace, stored.owner_id, stored.ask_replicas) == ("web", "team-a", user.pk, 2)
    assert stored.created_at == row.created_at and stored.updated_at == row.updated_at
    assert stored.conditions == [] and stored.drift == {}  # model defaults, as create() stores them

    request = rows.insert(DeploymentRequest(request_id="r-1", user=user, deployment=row, identifier="web",
                                            namespace="team-a", action=RequestAction.CREATE, payload={"a": 1},
                                            config=config, payload_hash="h"))
    assert DeploymentRequest.objects.get(pk=request.pk).deployment_id == row.pk


@pytest.mark.django_db
def test_insert_raises_integrity_error_on_a_unique_violation_and_stores_nothing():
    DeploymentFactory(identifier="taken")
    user = UserFactory()
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            rows.insert(Deployment(identifier="taken", namespace="default", owner=user,
                                   status=DeploymentStatus.INITIATED, desired_config={}))
    assert Deployment.objects.filter(identifier="taken").count() == 1


@pytest.mark.django_db
def test_update_writes_only_the_named_fields_and_stamps_updated_at():
    row = DeploymentFactory(identifier="web", image="old:1", replicas=1)
    before = Deployment.objects.get(pk=row.pk).updated_at
    time.sleep(0.01)
    Deployment.objects.filter(pk=row.pk).update(replicas=7)  # someone else's write to a field we do not name

    row.image, row.drift, row.replicas = "new:2", {"image": {"desired": "a", "live": "b"}}, 3
    assert rows.update(row, ["image", "drift"]) == 1

    stored = Deployment.objects.get(pk=row.pk)
    assert stored.image == "new:2" and stored.drift == {"image": {"desired": "a", "live": "b"}}
    assert stored.replicas == 7  # not named: left as it was in the database
    assert stored.updated_at > before and stored.updated_at == row.updated_at


@pytest.mark.django_db
def test_update_of_a_row_that_is_gone_updates_nothing():
    row = DeploymentFactory(identifier="gone")
    Deployment.objects.filter(pk=row.pk).delete()
    row.image = "x:1"
    assert rows.update(row, ["image"]) == 0


@pytest.mark.django_db
def test_insert_many_is_one_statement_and_gives_each_object_its_own_key_in_order():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from events_app.models import EventOutbox

    objs = [EventOutbox(subject=f"s.{n}", payload=f"p{n}".encode(), msg_id=f"m/{n}") for n in range(5)]
    with CaptureQueriesContext(connection) as queries:
        rows.insert_many(objs)
    assert len(queries.captured_queries) == 1
    assert len({o.pk for o in objs}) == 5
    for n, obj in enumerate(objs):
        stored = EventOutbox.objects.get(pk=obj.pk)
        assert (stored.subject, bytes(stored.payload), stored.msg_id) == (f"s.{n}", f"p{n}".encode(), f"m/{n}")
    assert rows.insert_many([]) == []
