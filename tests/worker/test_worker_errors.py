"""Each class of Kubernetes error ends where docs/architecture.md (Reliability rules) says, with a
real worker process, real NATS and Postgres, and the emulator's fault injection."""

import asyncio

import pytest
from django.conf import settings

from deployments_app.config import REQUEST_ANNOTATION, DeploymentConfig
from deployments_app.models import Deployment, DeploymentStatus
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus
from requests_app.outbox import message_for
from requests_app.publishing import current, publish_now
from tests.factories import DeploymentFactory, DeploymentRequestFactory
from tests.stack import submit, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]



def finished(req: DeploymentRequest) -> DeploymentRequest | None:
    req.refresh_from_db()
    return req if req.status != RequestStatus.CREATED else None


def test_a_create_the_api_server_refuses_as_invalid_fails_at_once_with_its_reason(stack, cluster):
    stack.worker()
    deployment = DeploymentFactory(identifier="bad", desired_config={
        "identifier": "bad", "namespace": "default", "image": "", "replicas": 1})
    req = submit(deployment=deployment, user=deployment.owner)
    wait_until(lambda: finished(req), message="the request to finish")
    assert req.status == RequestStatus.FAILURE
    assert "422 Invalid" in req.error and "image" in req.error
    assert req.attempts == 1
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.DELETED  # it never existed: the identifier is free again


def test_a_5xx_then_recovery_ends_in_success_after_retries(stack, cluster, apps_api):
    stack.worker()
    cluster.fail_next(2, status=503, verb="create")
    req = submit()
    wait_until(lambda: finished(req), message="the request to finish")
    assert req.status == RequestStatus.SUCCESS, req.error
    assert req.attempts == 3
    live = apps_api.read_namespaced_deployment(req.identifier, "default")
    assert live.metadata.annotations[REQUEST_ANNOTATION] == str(req.pk)
    assert "retrying" in stack.procs[0].log()


def test_5xx_forever_ends_in_failure_after_the_bound_with_the_last_error(stack, cluster, apps_api):
    stack.worker()
    cluster.error_rate(1.0, status=500, verb="create")
    req = submit()
    wait_until(lambda: finished(req), message="the request to finish")
    assert req.status == RequestStatus.FAILURE
    assert req.attempts == settings.K8SDM_APPLY_MAX_ATTEMPTS
    assert f"gave up after {settings.K8SDM_APPLY_MAX_ATTEMPTS} attempts" in req.error and "500" in req.error
    assert apps_api.list_namespaced_deployment("default").items == []


def test_429_with_retry_after_is_retried_and_succeeds(stack, cluster):
    stack.worker()
    cluster.fail_next(1, status=429, verb="create", retry_after=1)
    req = submit()
    wait_until(lambda: finished(req), message="the request to finish")
    assert req.status == RequestStatus.SUCCESS and req.attempts == 2


def test_already_exists_from_this_requests_own_earlier_attempt_is_success(stack, cluster, apps_api):
    req = DeploymentRequestFactory()
    # As if a worker created it and was killed before it could record the result.
    body = DeploymentConfig.from_input(req.config).to_manifest(owner=req.user.user_external_id, request_pk=req.pk)
    apps_api.create_namespaced_deployment("default", body)
    stack.worker()
    publish_now(message_for(req))
    wait_until(lambda: finished(req), message="the request to finish")
    assert req.status == RequestStatus.SUCCESS, req.error
    assert len(apps_api.list_namespaced_deployment("default").items) == 1
    row = Deployment.objects.get(pk=req.deployment_id)
    assert row.status == DeploymentStatus.CREATED


def test_already_exists_for_a_deployment_this_request_did_not_create_is_failure(stack, cluster, apps_api):
    req = DeploymentRequestFactory()
    stranger = DeploymentConfig.from_input(req.config).to_manifest(owner="someone-else", request_pk=999999)
    apps_api.create_namespaced_deployment("default", stranger)
    stack.worker()
    publish_now(message_for(req))
    wait_until(lambda: finished(req), message="the request to finish")
    assert req.status == RequestStatus.FAILURE
    assert "already exists" in req.error and "not created by this request" in req.error


def test_a_delete_of_a_deployment_already_gone_is_success(stack, cluster):
    deployment = DeploymentFactory(status=DeploymentStatus.CREATED)
    req = submit(deployment=deployment, user=deployment.owner, action=RequestAction.DELETE)
    stack.worker()
    wait_until(lambda: finished(req), message="the request to finish")
    assert req.status == RequestStatus.SUCCESS
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.DELETED


def test_an_update_of_a_deployment_missing_from_the_cluster_fails_with_not_found(stack, cluster):
    deployment = DeploymentFactory(status=DeploymentStatus.CREATED)
    req = submit(deployment=deployment, user=deployment.owner, action=RequestAction.UPDATE)
    stack.worker()
    wait_until(lambda: finished(req), message="the request to finish")
    assert req.status == RequestStatus.FAILURE and "404 NotFound" in req.error


def consumer_state():
    """The requests consumer as JetStream sees it."""
    from k8sdm.messaging import jetstream, messages

    async def info():
        nc = await jetstream.connect(name="k8sdm-test-reader")
        try:
            return await nc.jetstream().consumer_info(settings.K8SDM_STREAM, messages.REQUESTS_CONSUMER)
        finally:
            await nc.close()

    return asyncio.run(info())


def test_a_malformed_message_is_terminated_and_logged_not_retried(stack, cluster):
    worker = stack.worker()

    published = current().publisher.publish(subject=f"{settings.K8SDM_SUBJECT_PREFIX}.requests.x",
                                             payload=b"{not json", msg_id="junk")
    assert published.ok, published.error
    worker.wait_for_log("terminated requests message")
    assert "not JSON" in worker.log()
    # A request behind it finishes; by then the garbage was never delivered again, nor is it pending.
    later = submit()
    wait_until(lambda: finished(later), message="the later request to finish")
    # The worker commits the result before it acks the message: wait for the ack, then look.
    wait_until(lambda: consumer_state().num_ack_pending == 0, message="the later request's message to be acked")
    state = consumer_state()
    assert (state.num_redelivered, state.num_ack_pending, state.num_pending) == (0, 0, 0)


def test_a_request_already_finished_is_acknowledged_and_skipped(stack, cluster, apps_api):
    req = DeploymentRequestFactory()
    DeploymentRequest.objects.filter(pk=req.pk).update(status=RequestStatus.SUCCESS, finished_at=req.created_at)
    stack.worker()
    publish_now(message_for(req))
    # A second request behind it proves the worker has consumed the first message by then.
    later = submit()
    wait_until(lambda: finished(later), message="the later request to finish")
    names = [d.metadata.name for d in apps_api.list_namespaced_deployment("default").items]
    assert names == [later.identifier]
    req.refresh_from_db()
    assert req.attempts == 0
