"""The console's safe actions: retry a FAILED request as a new one, re-sync a deployment, and
what staff may not do (edit, delete, act without permission, act by GET or without CSRF)."""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments_app.models import Deployment, DeploymentStatus
from deployments_app.sync import deployment_mark_gone
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from k8sdm.errors import InvalidInput
from requests_app.services import deployment_request_create, deployment_request_update

pytestmark = pytest.mark.django_db

CONFIG = {"identifier": "shop", "namespace": "default", "image": "nginx:1.27", "replicas": 2}


def failed_create() -> DeploymentRequest:
    """A CREATE accepted by the API's service, then failed the way the worker fails one."""
    accepted = deployment_request_create(user_external_id="carol@example.com", config=CONFIG,
                                         payload=CONFIG, request_id="first-try")
    req = accepted.request
    DeploymentRequest.objects.filter(pk=req.pk).update(status=RequestStatus.FAILURE, finished_at=timezone.now(),
                                                       error="Kubernetes API: 403 Forbidden")
    deployment_mark_gone(deployment_id=req.deployment_id)
    req.refresh_from_db()
    return req


def action_url(model: str, pk: int, action: str) -> str:
    app = {"deploymentrequest": "requests_app", "deployment": "deployments_app"}[model]
    return reverse(f"admin:{app}_{model}_action", args=[pk, action])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_retry_of_a_failed_create_is_a_new_request_for_the_owner_made_by_the_staff_user(staff, admin_user):
    original = failed_create()
    response = staff.post(action_url("deploymentrequest", original.pk, "retry"), follow=True)
    new = DeploymentRequest.objects.exclude(pk=original.pk).get()
    assert response.redirect_chain[-1][0] == reverse("admin:requests_app_deploymentrequest_change", args=[new.pk])
    assert f"Retried request #{original.pk} as new request #{new.pk}" in messages_of(response)[0]
    assert (new.action, new.status, new.user_id, new.config) == (
        RequestAction.CREATE, RequestStatus.CREATED, original.user_id, original.config)
    assert new.request_id.startswith(f"retry-of-{original.pk}-by-admin-")
    assert new.correlation_id == "staff:admin" and new.published_at is None  # in the outbox, for the relay
    assert Deployment.objects.get(identifier="shop").status == DeploymentStatus.INITIATED
    history = {(e.object_id, e.user_id): e.change_message for e in LogEntry.objects.all()}
    assert f"retry of request {original.pk}" in history[(str(new.pk), admin_user.pk)]
    assert f"retried as request {new.pk}" in history[(str(original.pk), admin_user.pk)]
    # The original is untouched: its record stays what happened.
    original_after = DeploymentRequest.objects.get(pk=original.pk)
    assert (original_after.status, original_after.error) == (RequestStatus.FAILURE, original.error)


def test_retry_of_a_failed_update_reapplies_its_config_as_a_new_update(staff, admin_user):
    created = deployment_request_create(user_external_id="carol@example.com", config=CONFIG, payload=CONFIG,
                                        request_id="create-ok").request
    DeploymentRequest.objects.filter(pk=created.pk).update(status=RequestStatus.SUCCESS, finished_at=timezone.now())
    Deployment.objects.filter(pk=created.deployment_id).update(status=DeploymentStatus.CREATED)
    # The UPDATE stored its config as the desired one when it was accepted, then failed in the cluster.
    failed = deployment_request_update(user_external_id="carol@example.com", identifier="shop",
                                       patch={"replicas": 5}, request_id="update-failed").request
    DeploymentRequest.objects.filter(pk=failed.pk).update(status=RequestStatus.FAILURE, finished_at=timezone.now(),
                                                          error="Kubernetes API: 422 Unprocessable")
    assert Deployment.objects.get(identifier="shop").desired_config["replicas"] == 5

    response = staff.post(action_url("deploymentrequest", failed.pk, "retry"), follow=True)
    new = DeploymentRequest.objects.exclude(pk__in=[created.pk, failed.pk]).get()
    assert f"Retried request #{failed.pk} as new request #{new.pk}" in messages_of(response)[0]
    assert (new.action, new.status, new.user_id, new.payload) == (
        RequestAction.UPDATE, RequestStatus.CREATED, failed.user_id, {"replicas": 5})
    assert new.config == failed.config and new.config["replicas"] == 5
    assert new.published_at is None  # in the outbox, for the relay and a worker to apply
    assert Deployment.objects.get(identifier="shop").desired_config["replicas"] == 5


def test_the_api_still_refuses_an_update_that_changes_nothing():
    created = deployment_request_create(user_external_id="carol@example.com", config=CONFIG, payload=CONFIG,
                                        request_id="create-ok").request
    Deployment.objects.filter(pk=created.deployment_id).update(status=DeploymentStatus.CREATED)
    with pytest.raises(InvalidInput) as refused:
        deployment_request_update(user_external_id="carol@example.com", identifier="shop",
                                  patch={"replicas": 2}, request_id="no-change")
    assert refused.value.code == "nothing_to_change"


def test_only_failed_requests_can_be_retried(staff):
    original = failed_create()
    DeploymentRequest.objects.filter(pk=original.pk).update(status=RequestStatus.SUCCESS, error="")
    page = staff.get(reverse("admin:requests_app_deploymentrequest_change", args=[original.pk])).content.decode()
    assert "Retry as a new request" not in page
    response = staff.post(action_url("deploymentrequest", original.pk, "retry"), follow=True)
    assert "only FAILED requests are retried" in messages_of(response)[0]
    assert DeploymentRequest.objects.count() == 1


def test_a_retry_the_service_refuses_says_why_and_stores_nothing(staff):
    original = failed_create()
    # Someone else took the identifier since: the service refuses, as it would refuse the API.
    Deployment.objects.filter(pk=original.deployment_id).update(status=DeploymentStatus.CREATED)
    response = staff.post(action_url("deploymentrequest", original.pk, "retry"), follow=True)
    assert "the requests service refused the retry" in messages_of(response)[0]
    assert "already exists" in messages_of(response)[0]
    assert DeploymentRequest.objects.count() == 1 and LogEntry.objects.count() == 0


def test_the_list_action_retries_the_failed_ones_and_leaves_the_rest(staff):
    original = failed_create()
    url = reverse("admin:requests_app_deploymentrequest_changelist")
    response = staff.post(url, {"action": "retry_failed", "_selected_action": [original.pk]}, follow=True)
    assert "Retried as new request(s) #" in messages_of(response)[0]
    assert DeploymentRequest.objects.filter(status=RequestStatus.CREATED).count() == 1


def test_resync_without_jetstream_says_so(staff, unreachable_nats):
    deployment = failed_create().deployment
    response = staff.post(action_url("deployment", deployment.pk, "resync"), follow=True)
    assert "could not publish the sync request to JetStream" in messages_of(response)[0]
    assert LogEntry.objects.count() == 0


def test_records_are_read_only_and_nothing_is_bulk_deleted(staff):
    original = failed_create()
    for model, pk in (("requests_app_deploymentrequest", original.pk), ("deployments_app_deployment",
                                                                         original.deployment_id)):
        page = staff.get(reverse(f"admin:{model}_change", args=[pk])).content.decode()
        assert "<title>" in page and "View " in page and 'name="_save"' not in page and "deletelink" not in page
        assert staff.get(reverse(f"admin:{model}_delete", args=[pk])).status_code == 403
        assert staff.post(reverse(f"admin:{model}_change", args=[pk]), {}).status_code == 403
        changelist = staff.get(reverse(f"admin:{model}_changelist")).content.decode()
        assert "delete_selected" not in changelist
    assert DeploymentRequest.objects.count() == 1


def test_actions_need_the_change_permission_a_post_and_a_csrf_token(viewer, django_user_model):
    original = failed_create()
    page = viewer.get(reverse("admin:requests_app_deploymentrequest_change", args=[original.pk])).content.decode()
    assert "Retry as a new request" not in page
    response = viewer.post(action_url("deploymentrequest", original.pk, "retry"), follow=True)
    assert messages_of(response) == ["You may not do that."]
    changelist = viewer.get(reverse("admin:requests_app_deploymentrequest_changelist")).content.decode()
    assert "retry_failed" not in changelist and "publish_again" not in changelist

    superuser = django_user_model.objects.create_superuser("root2", "r@example.com", "a-long-root-password-1")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(superuser)
    assert strict.get(action_url("deploymentrequest", original.pk, "retry")).status_code == 405
    assert strict.post(action_url("deploymentrequest", original.pk, "retry")).status_code == 403  # no CSRF token
    assert DeploymentRequest.objects.count() == 1
