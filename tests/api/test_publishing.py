"""Accepting a request commits it with its outbox entry, then publishes it to JetStream; with NATS
down the API still answers 202 and the request waits in the outbox for the relay."""

from __future__ import annotations

import asyncio

import pytest
from django.conf import settings

from k8sdm.messaging import jetstream, messages
from k8sdm.messaging.messages import ApplyRequest
from requests_app.models import DeploymentRequest
from requests_app.outbox import claim_pending
from requests_app import publishing
from requests_app.publishing import current
from tests.api.conftest import CREATE_URL, change_url, config


def _last_message(subject: str):
    async def fetch():
        nc = await jetstream.connect(name="k8sdm-test-reader")
        try:
            return await nc.jetstream().get_last_msg(settings.K8SDM_STREAM, subject)
        finally:
            await nc.close()

    return asyncio.run(fetch())


@pytest.mark.django_db(transaction=True)
def test_with_nats_unreachable_the_request_is_accepted_and_waits_in_the_outbox_for_the_relay(
    alice, unreachable_nats
):
    response = alice.post(CREATE_URL, config(request_id="offline"), format="json")
    assert response.status_code == 202
    assert current().wait_idle(), "the publish after commit never got its answer"
    req = DeploymentRequest.objects.get(request_id="offline")
    assert req.published_at is None
    assert publishing.NATS.ongoing  # the failed publish started (or continued) the NATS outage
    # The relay's claim finds it (once the api's grace period is over).
    assert [m.request_pk for m in claim_pending(grace_seconds=0)] == [req.pk]


@pytest.mark.django_db(transaction=True)
def test_with_nats_up_a_committed_request_is_published_to_the_stream(alice):
    response = alice.post(CREATE_URL, config("pub", request_id="online"), format="json")
    assert response.status_code == 202
    req = DeploymentRequest.objects.get(request_id="online")
    assert req.published_at is None  # on_commit handed it to the publisher; the ack is stamped in the background
    assert current().wait_idle()
    req.refresh_from_db()
    assert req.published_at is not None
    msg = _last_message(messages.requests_subject("pub"))
    assert ApplyRequest.from_bytes(msg.data).request_pk == req.pk
    assert msg.headers["Nats-Msg-Id"] == f"request/{req.pk}"

    update = alice.patch(change_url("pub"), {"replicas": 2}, format="json").json()
    assert current().wait_idle()
    assert DeploymentRequest.objects.get(pk=update["id"]).published_at is not None
    msg = _last_message(messages.requests_subject("pub"))
    assert ApplyRequest.from_bytes(msg.data).request_pk == update["id"]


@pytest.mark.django_db(transaction=True)
def test_a_refused_request_publishes_nothing(alice, bob):
    accepted = alice.post(CREATE_URL, config("taken"), format="json").json()
    assert current().wait_idle()
    before = _last_message(messages.requests_subject("taken"))
    assert ApplyRequest.from_bytes(before.data).request_pk == accepted["id"]
    assert bob.post(CREATE_URL, config("taken"), format="json").status_code == 409
    assert current().wait_idle()
    assert _last_message(messages.requests_subject("taken")).seq == before.seq
    assert DeploymentRequest.objects.count() == 1


def test_a_stamp_batch_that_raises_something_unexpected_does_not_end_the_stamper():
    """An error that is not a DatabaseError (here what pytest-django raises for a thread without
    database access; in production anything a driver lets through) costs that one batch, which the
    relay re-publishes, and the thread goes on stamping the next ones."""
    from k8sdm.outbox import Stamper

    stamped: list[list[int]] = []

    def mark(pks: list[int]) -> int:
        if 1 in pks:
            raise RuntimeError("not a DatabaseError")
        stamped.append(pks)
        return len(pks)

    stamper = Stamper(mark, what="test-row")
    stamper.start()
    try:
        stamper.add(1)
        assert stamper.wait_empty(5)
        stamper.add(2)
        assert stamper.wait_empty(5), "the stamper thread died on the first batch's error"
        assert stamped == [[2]]
    finally:
        stamper.stop()


def test_the_stamper_stamps_a_burst_of_acks_in_one_batch_and_a_waiter_does_not_wait_for_the_linger():
    from k8sdm.outbox import Stamper

    stamped: list[list[int]] = []
    stamper = Stamper(lambda pks: stamped.append(pks) or len(pks), what="test-row", linger=60)
    stamper.start()
    try:
        for pk in (1, 2, 3):
            stamper.add(pk)
        # With a 60 s linger only the flush that wait_empty asks for can write the batch in time.
        assert stamper.wait_empty(10)
        assert stamped == [[1, 2, 3]]
    finally:
        stamper.stop()
