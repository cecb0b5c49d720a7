"""The Django admin that ops staff use: fast lists, filters, search, read-only mirrors, links."""

import pytest
from django.urls import reverse

from deployments_app.models import DeploymentStatus
from requests_app.models import DeploymentRequest, RequestStatus
from tests.factories import DeploymentFactory, DeploymentRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(admin_client):
    return admin_client


def test_a_page_of_100_requests_is_a_handful_of_queries(staff, django_assert_max_num_queries):
    deployments = DeploymentFactory.create_batch(20)
    for i in range(100):
        d = deployments[i % 20]
        DeploymentRequestFactory(deployment=d, user=d.owner)
    url = reverse("admin:requests_app_deploymentrequest_changelist")
    with django_assert_max_num_queries(10):
        response = staff.get(url)
    assert response.status_code == 200
    assert response.content.count(b'class="action-select"') == 100


def test_a_page_of_100_deployments_is_a_handful_of_queries(staff, django_assert_max_num_queries):
    DeploymentFactory.create_batch(100)
    with django_assert_max_num_queries(10):
        response = staff.get(reverse("admin:deployments_app_deployment_changelist"))
    assert response.status_code == 200
    assert response.content.count(b'class="action-select"') == 100


def test_requests_filter_by_status_and_search_by_request_id_and_user(staff):
    done = DeploymentRequestFactory(request_id="needle-1")
    DeploymentRequest.objects.filter(pk=done.pk).update(status=RequestStatus.FAILURE, error="boom",
                                                       finished_at=done.created_at)
    DeploymentRequestFactory(request_id="hay-2")
    url = reverse("admin:requests_app_deploymentrequest_changelist")
    assert b"needle-1" in staff.get(url, {"status__exact": "FAILURE"}).content
    assert b"hay-2" not in staff.get(url, {"status__exact": "FAILURE"}).content
    assert b"hay-2" not in staff.get(url, {"q": "needle"}).content
    assert b"needle-1" in staff.get(url, {"q": done.user.user_external_id}).content


def test_the_deployment_page_shows_observed_fields_read_only_and_links_to_its_requests(staff):
    deployment = DeploymentFactory(status=DeploymentStatus.CREATED, image="nginx:1.27")
    response = staff.get(reverse("admin:deployments_app_deployment_change", args=[deployment.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="status"' not in body and 'name="image"' not in body  # read-only, not inputs
    assert f"?deployment__id__exact={deployment.pk}" in body


def test_the_outbox_filter_and_the_publish_again_action(staff):
    pending = DeploymentRequestFactory()
    url = reverse("admin:requests_app_deploymentrequest_changelist")
    assert pending.request_id.encode() in staff.get(url, {"outbox": "pending"}).content
    response = staff.post(url, {"action": "publish_again", "_selected_action": [pending.pk]}, follow=True)
    assert "published 1 of 1 pending request" in [str(m) for m in response.context["messages"]][0]
    pending.refresh_from_db()
    assert pending.published_at is not None
    assert pending.request_id.encode() not in staff.get(url, {"outbox": "pending"}).content
