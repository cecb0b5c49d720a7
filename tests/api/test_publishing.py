"""Accepting a request commits it with its outbox entry, then publishes it to JetStream; with NATS
down the API still answers 202 and the request waits in the outbox for the relay."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.conf import settings

from k8sdm.messaging import jetstream, messages
from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, change_url, config
from tests.stack import wait_until


def _last_message(subject: str):
    async def fetch():
        nc = await jetstream.connect(name="k8sdm-test-reader")
        try:
            return await nc.jetstream().get_last_msg(settings.K8SDM_STREAM, subject)
        finally:
            await nc.close()

    return asyncio.run(fetch())


@pytest.mark.django_db
def test_with_nats_unreachable_the_request_is_accepted_and_stays_in_the_outbox(
    alice, unreachable_nats, django_capture_on_commit_callbacks
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = alice.post(CREATE_URL, config(request_id="offline"), format="json")
    assert response.status_code == 202
    assert len(callbacks) >= 1  # the publish was attempted after commit, and failed
    assert time.monotonic() - started < 10
    req = DeploymentRequest.objects.get(request_id="offline")
    assert req.published_at is None
    assert DeploymentRequest.objects.filter(published_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_with_nats_up_a_committed_request_is_published_to_the_stream(alice):
    response = alice.post(CREATE_URL, config("pub", request_id="online"), format="json")
    assert response.status_code == 202
    req = DeploymentRequest.objects.get(request_id="online")
    # on_commit handed it to the publisher; the ack is stamped in the background moments later
    wait_until(lambda: DeploymentRequest.objects.get(pk=req.pk).published_at, message="published_at")
    msg = _last_message(messages.requests_subject("pub"))
    assert messages.ApplyRequest.from_bytes(msg.data).request_pk == req.pk
    assert msg.headers["Nats-Msg-Id"] == f"request/{req.pk}"

    update = alice.patch(change_url("pub"), {"replicas": 2}, format="json").json()
    wait_until(lambda: DeploymentRequest.objects.get(pk=update["id"]).published_at, message="published_at")
    msg = _last_message(messages.requests_subject("pub"))
    assert messages.ApplyRequest.from_bytes(msg.data).request_pk == update["id"]


@pytest.mark.django_db(transaction=True)
def test_a_refused_request_publishes_nothing(alice, bob):
    accepted = alice.post(CREATE_URL, config("taken"), format="json").json()
    wait_until(lambda: DeploymentRequest.objects.get(pk=accepted["id"]).published_at, message="published_at")
    before = _last_message(messages.requests_subject("taken")).seq
    assert bob.post(CREATE_URL, config("taken"), format="json").status_code == 409
    assert _last_message(messages.requests_subject("taken")).seq == before
    assert DeploymentRequest.objects.count() == 1
