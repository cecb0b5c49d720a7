"""A deployment's page in the console: its revisions with their diffs, and rollback and restart
through the requests service, recorded as the staff user's."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from deployments_app.models import Deployment, DeploymentStatus
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from requests_app.revisions import revision_record
from requests_app.services import deployment_request_create, deployment_request_update

pytestmark = pytest.mark.django_db

CONFIG = {"identifier": "shop", "namespace": "default", "image": "nginx:1.27", "replicas": 2}


def applied(accepted) -> DeploymentRequest:
    """Mark a request SUCCESS with its revision, as the worker does."""
    req = accepted.request
    DeploymentRequest.objects.filter(pk=req.pk).update(status=RequestStatus.SUCCESS, finished_at=req.created_at)
    req.refresh_from_db()
    revision_record(request=req, generation=None)
    return req


@pytest.fixture
def shop():
    applied(deployment_request_create(user_external_id="carol@example.com", config=CONFIG, payload=CONFIG,
                                      request_id="c1", message="first"))
    applied(deployment_request_update(user_external_id="carol@example.com", identifier="shop",
                                      patch={"image": "nginx:1.28"}, request_id="u1", message="bump"))
    Deployment.objects.filter(identifier="shop").update(status=DeploymentStatus.CREATED)
    return Deployment.objects.get(identifier="shop")


def page(staff, deployment) -> str:
    response = staff.get(reverse("admin:deployments_app_deployment_change", args=[deployment.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_lists_revisions_with_kind_who_message_and_diff(staff, shop):
    html = page(staff, shop)
    assert 'id="ops-revisions"' in html
    assert "bump" in html and "first" in html and "carol@example.com" in html
    assert "nginx:1.27 &rarr; nginx:1.28" in html
    assert 'id="ops-rollback-to-1"' in html


def test_staff_roll_back_to_a_revision_through_the_queue_recorded_as_theirs(staff, admin_user, shop):
    page(staff, shop)  # the session's CSRF cookie, as a browser has it
    url = reverse("admin:deployments_app_deployment_action", args=[shop.pk, "rollback"])
    response = staff.post(url, {"to_revision": "1"}, follow=True)
    assert response.status_code == 200
    new = DeploymentRequest.objects.get(action=RequestAction.ROLLBACK)
    assert (new.rollback_of, new.status, new.user.user_external_id) == (1, RequestStatus.CREATED, "carol@example.com")
    assert new.config["image"] == "nginx:1.27" and new.message == "rollback by staff admin"
    assert new.correlation_id == "staff:admin" and new.request_id.startswith("rollback-by-admin-")
    assert Deployment.objects.get(pk=shop.pk).desired_config["image"] == "nginx:1.27"
    assert LogEntry.objects.filter(user=admin_user, object_id=str(shop.pk),
                                   change_message__contains="rollback to revision 1").exists()


def test_staff_restart_and_a_refused_rollback_says_why(staff, shop):
    response = staff.post(reverse("admin:deployments_app_deployment_action", args=[shop.pk, "restart"]), follow=True)
    restart = DeploymentRequest.objects.get(action=RequestAction.RESTART)
    assert restart.config["restarted_at"] and restart.message == "restart by staff admin"
    assert any("rolling restart" in str(m) for m in response.context["messages"])
    response = staff.post(reverse("admin:deployments_app_deployment_action", args=[shop.pk, "rollback"]),
                          {"to_revision": "9"}, follow=True)
    assert any("Revision 9 does not exist" in str(m) for m in response.context["messages"])
    assert not DeploymentRequest.objects.filter(action=RequestAction.ROLLBACK).exists()


def test_a_failed_rollback_is_retried_as_a_rollback(staff, shop):
    from django.utils import timezone

    from requests_app.services import deployment_request_rollback

    failed = deployment_request_rollback(user_external_id="carol@example.com", identifier="shop", to_revision=1,
                                         request_id="rb").request
    DeploymentRequest.objects.filter(pk=failed.pk).update(status=RequestStatus.FAILURE, error="boom",
                                                          finished_at=timezone.now())
    Deployment.objects.filter(pk=shop.pk).update(desired_config={**shop.desired_config, "image": "nginx:1.28"})
    staff.post(reverse("admin:requests_app_deploymentrequest_action", args=[failed.pk, "retry"]))
    retry = DeploymentRequest.objects.exclude(pk=failed.pk).get(action=RequestAction.ROLLBACK)
    assert retry.rollback_of == 1 and not DeploymentRequest.objects.filter(action=RequestAction.DELETE).exists()
