"""Webhook deliveries by the real notifier process to a real HTTP receiver started by the test."""

from __future__ import annotations

import hashlib
import hmac
import sys

import pytest
import requests

from events_app.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from events_app.services import webhook_create
from k8sdm.messaging import events
from tests.api.conftest import CREATE_URL, change_url, config
from tests.events.helpers import Receiver
from tests.events.test_sse import _publish
from tests.stack import wait_until

FAST = {
    "K8SDM_WEBHOOK_TIMEOUT_SECONDS": "0.5",
    "K8SDM_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
    "K8SDM_WEBHOOK_MAX_ATTEMPTS": "3",
    "K8SDM_WEBHOOK_DISABLE_AFTER_SECONDS": "0",
    "K8SDM_WEBHOOK_DISABLE_AFTER_FAILURES": "3",
    "K8SDM_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
}


@pytest.fixture
def notifier_stack(stack, settings):
    from k8sdm.messaging.events_stream import reset_event_bus

    reset_event_bus()
    stack.env.update(FAST)
    settings.K8SDM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    yield stack
    reset_event_bus()


def start_notifier(stack, **env):
    saved = dict(stack.env)
    stack.env.update(env)
    proc = stack._spawn("notifier", [sys.executable, "manage.py", "runnotifier", "--metrics-port", "0"])
    stack.env.clear()
    stack.env.update(saved)
    proc.wait_for_log("notifier ready")
    return proc


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def deliveries(endpoint, **filters):
    return list(WebhookDelivery.objects.filter(endpoint=endpoint, **filters).order_by("event_id"))


def test_a_delivery_is_signed_and_recorded(notifier_stack, receiver):
    start_notifier(notifier_stack)
    endpoint = webhook_create(user_external_id="alice", url=receiver.url, kinds=[events.REQUEST_SUCCEEDED])
    _publish(events.REQUEST_ACCEPTED, "alice", "web", 1)  # a kind it did not ask for
    _publish(events.REQUEST_SUCCEEDED, "alice", "web", 2)
    _publish(events.REQUEST_SUCCEEDED, "bob", "web", 3)  # another user's
    wait_until(lambda: deliveries(endpoint, status=DeliveryStatus.SUCCEEDED), message="the delivery")
    [hit] = receiver.received
    assert hit["path"] == "/hooks/k8sdm"
    assert hit["headers"]["content-type"] == "application/json"
    assert hit["headers"]["x-k8sdm-event"] == events.REQUEST_SUCCEEDED
    timestamp, signature = (part.split("=", 1)[1] for part in hit["headers"]["x-k8sdm-signature"].split(","))
    expected = hmac.new(endpoint.secret.encode(), f"{timestamp}.".encode() + hit["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    wrong = hmac.new(b"another secret", f"{timestamp}.".encode() + hit["body"], hashlib.sha256).hexdigest()
    assert signature != wrong
    body = receiver.bodies()[0]
    assert body["kind"] == events.REQUEST_SUCCEEDED and body["user"] == "alice" and body["data"] == {"n": 2}
    assert str(body["id"]) == hit["headers"]["x-k8sdm-event-id"]
    [delivery] = deliveries(endpoint)
    assert (delivery.status, delivery.attempts, delivery.response_code) == (DeliveryStatus.SUCCEEDED, 1, 200)
    assert delivery.duration_ms is not None and delivery.event_id == body["id"]
    assert str(delivery.pk) == hit["headers"]["x-k8sdm-delivery"]
    endpoint.refresh_from_db()
    assert endpoint.last_success_at is not None and endpoint.consecutive_failures == 0


def test_it_retries_after_500s_and_a_timeout_then_succeeds(notifier_stack):
    receiver = Receiver(script=[500, "hang", 503])
    try:
        start_notifier(notifier_stack, K8SDM_WEBHOOK_MAX_ATTEMPTS="5", K8SDM_WEBHOOK_DISABLE_AFTER_FAILURES="10")
        endpoint = webhook_create(user_external_id="alice", url=receiver.url)
        _publish(events.REQUEST_FAILED, "alice", "web", 1)
        wait_until(lambda: deliveries(endpoint, status=DeliveryStatus.SUCCEEDED), message="the delivery at last")
        assert len(receiver.received) == 4
        assert len({r["headers"]["x-k8sdm-delivery"] for r in receiver.received}) == 1
        assert len({r["body"] for r in receiver.received}) == 1  # the same event every time
        [delivery] = deliveries(endpoint)
        assert (delivery.attempts, delivery.response_code) == (4, 200)
        endpoint.refresh_from_db()
        assert endpoint.active and endpoint.consecutive_failures == 0
    finally:
        receiver.close()


def test_it_gives_up_after_the_bound_and_disables_an_endpoint_that_keeps_failing(notifier_stack):
    failing = Receiver(default=500)
    witness = Receiver()
    try:
        start_notifier(notifier_stack)
        endpoint = webhook_create(user_external_id="alice", url=failing.url)
        healthy = webhook_create(user_external_id="alice", url=witness.url)
        _publish(events.REQUEST_FAILED, "alice", "web", 1)
        wait_until(lambda: deliveries(endpoint, status=DeliveryStatus.FAILED), message="the delivery to fail")
        [delivery] = deliveries(endpoint)
        assert (delivery.attempts, delivery.response_code, delivery.last_error) == (3, 500, "HTTP 500")
        assert len(failing.received) == 3
        endpoint.refresh_from_db()
        assert not endpoint.active and "failed attempts" in endpoint.disabled_reason
        # The owner is told, in the API.
        from rest_framework.test import APIClient

        api = APIClient()
        api.credentials(HTTP_X_USER_ID="alice")
        body = api.get(f"/api/v1/webhooks/{endpoint.pk}").json()
        assert body["status"] == "disabled" and body["disabled_reason"] == endpoint.disabled_reason
        listed = api.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries").json()["results"]
        assert [(d["status"], d["attempts"], d["response_code"]) for d in listed] == [("FAILED", 3, 500)]
        # A later event goes to the healthy endpoint only.
        _publish(events.REQUEST_SUCCEEDED, "alice", "web", 2)
        wait_until(lambda: len(deliveries(healthy, status=DeliveryStatus.SUCCEEDED)) == 2, message="the witness")
        assert len(deliveries(endpoint)) == 1 and len(failing.received) == 3
    finally:
        failing.close()
        witness.close()


def test_no_delivery_reaches_a_private_address(notifier_stack, receiver):
    # Registered while the operator allowed loopback; the notifier runs without that allowance.
    start_notifier(notifier_stack, K8SDM_WEBHOOK_ALLOWED_NETWORKS="")
    endpoint = webhook_create(user_external_id="alice", url=receiver.url)
    _publish(events.REQUEST_SUCCEEDED, "alice", "web", 1)
    wait_until(lambda: deliveries(endpoint, status=DeliveryStatus.FAILED), message="the delivery to be refused")
    [delivery] = deliveries(endpoint)
    assert delivery.attempts == 1 and delivery.response_code is None
    assert delivery.last_error.startswith("refused:") and "127.0.0.1" in delivery.last_error
    assert receiver.received == []


def test_one_delivery_per_transition_no_flapping(notifier_stack, receiver, cluster):
    from k8sdm.messaging.messages import SyncDeployment
    from k8sdm.messaging.publisher import Publisher

    notifier_stack.worker()
    notifier_stack.watcher()
    start_notifier(notifier_stack)
    _, api = notifier_stack.api()
    endpoint = webhook_create(user_external_id="alice@example.com", url=receiver.url)
    session = requests.Session()
    session.headers["X-User-Id"] = "alice@example.com"
    assert session.post(api + CREATE_URL, json=config("web", request_id="c1")).status_code == 202
    wait_until(lambda: any(b["kind"] == events.DEPLOYMENT_HEALTH_CHANGED and b["data"]["health"] == "HEALTHY"
                           for b in receiver.bodies()), message="web HEALTHY")
    # The same state looked at again and again (resyncs, duplicate keys) is not a transition.
    publisher = Publisher(name="k8sdm-test-sync").start()
    try:
        for n in range(5):
            message = SyncDeployment(namespace="default", name="web", resource_version=f"again-{n}")
            assert publisher.publish(subject=message.subject, payload=message.to_bytes(), msg_id=message.msg_id).ok
    finally:
        publisher.stop()
    # A fence: a real transition after the resyncs.
    assert session.patch(api + change_url("web"), json={"image": "nginx:1.28", "request_id": "u1"}).status_code == 202
    wait_until(lambda: any(b["kind"] == events.REQUEST_SUCCEEDED and b["data"]["request_id"] == "u1"
                           for b in receiver.bodies()), message="the update's event")
    # Every recorded delivery reached the receiver, and nothing else did.
    wait_until(lambda: not deliveries(endpoint, status=DeliveryStatus.PENDING)
               and len(deliveries(endpoint)) == len(receiver.received), message="all deliveries done")
    bodies = sorted(receiver.bodies(), key=lambda b: b["id"])  # deliveries run in parallel: by event order
    ids = [b["id"] for b in bodies]
    assert len(ids) == len(set(ids))  # each event delivered once
    healthy = [b for b in bodies if b["kind"] == events.DEPLOYMENT_HEALTH_CHANGED and b["data"]["health"] == "HEALTHY"]
    accepted = [b["data"]["request_id"] for b in bodies if b["kind"] == events.REQUEST_ACCEPTED]
    assert accepted == ["c1", "u1"]
    assert len(healthy) >= 1
    # Between two events of the same kind the state really changed.
    for kind, key in ((events.DEPLOYMENT_HEALTH_CHANGED, "health"), (events.DEPLOYMENT_STATUS_CHANGED, "status")):
        values = [b["data"][key] for b in bodies if b["kind"] == kind]
        assert all(a != b for a, b in zip(values, values[1:])), (kind, values)
        assert all(b["data"][key] != b["data"][f"previous_{key}"] for b in bodies if b["kind"] == kind)
