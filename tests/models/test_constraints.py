"""The database itself refuses what must never be stored."""

import pytest
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from deployments_app.models import Deployment, DeploymentStatus
from requests_app.models import DeploymentRequest, RequestStatus
from tests.factories import DeploymentFactory, DeploymentRequestFactory, UserFactory
from users_app.models import User

pytestmark = pytest.mark.django_db


def test_a_repeated_request_id_for_one_user_is_refused_by_the_database():
    first = DeploymentRequestFactory(request_id="abc")
    with pytest.raises(IntegrityError, match="request_unique_request_id_per_user"), transaction.atomic():
        DeploymentRequestFactory(request_id="abc", user=first.user, deployment=first.deployment)
    assert DeploymentRequest.objects.filter(request_id="abc").count() == 1


def test_the_same_request_id_for_two_users_is_allowed():
    DeploymentRequestFactory(request_id="shared")
    DeploymentRequestFactory(request_id="shared")
    assert DeploymentRequest.objects.filter(request_id="shared").values("user").distinct().count() == 2


def test_a_second_deployment_with_the_same_identifier_is_refused():
    DeploymentFactory(identifier="web")
    with pytest.raises(IntegrityError, match="identifier"), transaction.atomic():
        DeploymentFactory(identifier="web")
    assert Deployment.objects.filter(identifier="web").count() == 1


def test_a_second_user_with_the_same_external_id_is_refused():
    UserFactory(user_external_id="alice")
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(user_external_id="alice")
    assert User.objects.count() == 1


@pytest.mark.parametrize("bad_id", ["", "has space", "semi;colon", "tab\tid"])
def test_a_malformed_user_external_id_is_refused_by_its_check_constraint(bad_id):
    with pytest.raises(IntegrityError, match="user_external_id_format"), transaction.atomic():
        User.objects.create(user_external_id=bad_id)


def test_an_over_long_user_external_id_is_refused_by_the_column_bound():
    with pytest.raises(DataError), transaction.atomic():
        User.objects.create(user_external_id="x" * 129)
    assert not User.objects.exists()


def test_a_negative_replica_count_is_refused_by_its_check_constraint():
    with pytest.raises(IntegrityError, match="deployment_replicas_gte_0"), transaction.atomic():
        DeploymentFactory(replicas=-1)
    with pytest.raises(IntegrityError, match="deployment_replica_counts_gte_0"), transaction.atomic():
        DeploymentFactory(ready_replicas=-2)


def test_an_unknown_status_is_refused_by_its_check_constraint():
    deployment = DeploymentFactory()
    with pytest.raises(IntegrityError, match="deployment_status_valid"), transaction.atomic():
        Deployment.objects.filter(pk=deployment.pk).update(status="RUNNING")
    with pytest.raises(IntegrityError, match="deployment_health_valid"), transaction.atomic():
        Deployment.objects.filter(pk=deployment.pk).update(health="GREAT")
    request = DeploymentRequestFactory()
    with pytest.raises(IntegrityError, match="request_status_valid"), transaction.atomic():
        DeploymentRequest.objects.filter(pk=request.pk).update(status="DONE", finished_at=timezone.now())
    with pytest.raises(IntegrityError, match="request_action_valid"), transaction.atomic():
        DeploymentRequest.objects.filter(pk=request.pk).update(action="REBOOT")
    assert Deployment.objects.get(pk=deployment.pk).status == DeploymentStatus.INITIATED


def test_an_identifier_that_is_not_a_dns_label_is_refused_by_its_check_constraint():
    with pytest.raises(IntegrityError, match="deployment_identifier_dns1123"), transaction.atomic():
        DeploymentFactory(identifier="Not_A_Label")


def test_a_finished_request_must_have_a_finish_time_and_a_pending_one_must_not():
    request = DeploymentRequestFactory()
    with pytest.raises(IntegrityError, match="request_finished_at_iff_finished"), transaction.atomic():
        DeploymentRequest.objects.filter(pk=request.pk).update(status=RequestStatus.SUCCESS)
    with pytest.raises(IntegrityError, match="request_finished_at_iff_finished"), transaction.atomic():
        DeploymentRequest.objects.filter(pk=request.pk).update(finished_at=timezone.now())
    DeploymentRequest.objects.filter(pk=request.pk).update(status=RequestStatus.SUCCESS, finished_at=timezone.now())
    assert DeploymentRequest.objects.get(pk=request.pk).status == RequestStatus.SUCCESS


def test_a_failed_request_must_say_why():
    request = DeploymentRequestFactory()
    with pytest.raises(IntegrityError, match="request_failure_has_error"), transaction.atomic():
        DeploymentRequest.objects.filter(pk=request.pk).update(status=RequestStatus.FAILURE, finished_at=timezone.now())


def test_every_filter_the_api_offers_has_an_index():
    from django.db import connection

    with connection.cursor() as cursor:
        indexed = {
            table: {
                col
                for c in connection.introspection.get_constraints(cursor, table).values()
                if c["index"] or c["unique"]
                for col in c["columns"][:1]
            }
            for table in ("requests_app_deploymentrequest", "deployments_app_deployment")
        }
    assert {"status", "action", "identifier", "namespace", "user_id", "created_at"} <= indexed[
        "requests_app_deploymentrequest"
    ]
    assert {"status", "health", "namespace", "owner_id", "identifier", "created_at"} <= indexed[
        "deployments_app_deployment"
    ]
