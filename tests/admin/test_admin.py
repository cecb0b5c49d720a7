"""The console's lists and records: fast, filterable, readable, read-only, nothing a user sent run as HTML."""

from datetime import timedelta

import pytest
from django.urls import reverse

from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from requests_app.models import DeploymentRequest, RequestStatus
from tests.factories import DeploymentFactory, DeploymentRequestFactory

pytestmark = pytest.mark.django_db


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


def test_timestamps_show_seconds_and_requests_show_how_long_they_took(staff):
    req = DeploymentRequestFactory()
    created = req.created_at.replace(microsecond=0)
    DeploymentRequest.objects.filter(pk=req.pk).update(
        created_at=created, status=RequestStatus.SUCCESS, finished_at=created + timedelta(seconds=75))
    body = staff.get(reverse("admin:requests_app_deploymentrequest_changelist")).content.decode()
    assert created.strftime("%Y-%m-%d %H:%M:%S") in body and "1 min 15 s" in body
    page = staff.get(reverse("admin:requests_app_deploymentrequest_change", args=[req.pk])).content.decode()
    assert created.strftime("%Y-%m-%d %H:%M:%S.000") in page


def test_drift_is_a_warning_when_there_is_some_and_nothing_when_in_sync(staff):
    DeploymentFactory(identifier="calm", status=DeploymentStatus.CREATED)
    drifting = DeploymentFactory(identifier="moved", status=DeploymentStatus.CREATED)
    Deployment.objects.filter(pk=drifting.pk).update(drift={"replicas": {"desired": 2, "live": 5},
                                                            "image": {"desired": "nginx:1.27", "live": "nginx:1.28"}})
    body = staff.get(reverse("admin:deployments_app_deployment_changelist")).content.decode()
    assert body.count("drift: ") == 1
    assert "drift: image nginx:1.28 != nginx:1.27; replicas 5 != 2" in body
    assert "icon-yes.svg" not in body and "icon-no.svg" not in body


def test_the_degraded_reason_and_conditions_read_as_a_table(staff):
    deployment = DeploymentFactory(status=DeploymentStatus.CREATED)
    Deployment.objects.filter(pk=deployment.pk).update(
        health=DeploymentHealth.DEGRADED, health_reason="ProgressDeadlineExceeded: timed out", conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}])
    page = staff.get(reverse("admin:deployments_app_deployment_change", args=[deployment.pk])).content.decode()
    assert "ProgressDeadlineExceeded: timed out" in page
    assert '<tr class="ops-bad"><td>Progressing</td><td>False</td><td>ProgressDeadlineExceeded</td>' in page


def test_what_a_user_sent_is_shown_as_text_never_as_html(staff):
    evil = "<script>alert(1)</script>"
    req = DeploymentRequestFactory(payload={"labels": {"x": evil}, evil: 1})
    DeploymentRequest.objects.filter(pk=req.pk).update(status=RequestStatus.FAILURE, error=evil,
                                                       finished_at=req.created_at)
    for url in (reverse("admin:requests_app_deploymentrequest_change", args=[req.pk]),
                reverse("admin:requests_app_deploymentrequest_changelist"), reverse("admin:index")):
        body = staff.get(url).content.decode()
        assert evil not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_one_users_section_for_api_users_and_the_staff_logins_named_apart(staff):
    body = staff.get(reverse("admin:index")).content.decode()
    assert "<h3>API users</h3>" in body and "API users (callers of the REST API)" in body
    assert "Staff logins (this console)" in body and "Staff accounts" in body
    assert "Django administration" not in body and "k8sdm operations" in body
