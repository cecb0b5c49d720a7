"""GET /api/v1/events over real HTTP against the ASGI server, with a real SSE client."""

from __future__ import annotations

import requests

from events_app import emit
from k8sdm.messaging import events
from tests.api.conftest import CREATE_URL, change_url, config
from tests.events.helpers import SseClient
from tests.stack import wait_until


def _publish(kind: str, user: str, identifier: str, n: int) -> None:
    event = events.Event(kind=kind, user=user, identifier=identifier, namespace="default",
                            time="2026-01-01T00:00:00Z", data={"n": n}, msg_id=f"test/{user}/{identifier}/{n}")
    emit.publish_after_commit(event)


def test_it_refuses_a_stream_without_identity_in_the_api_error_shape(events_stack):
    client = SseClient(events_stack.events_url, user="")
    wait_until(lambda: client.ended, message="the refusal")
    assert client.status == 401
    assert client.error_body["error"]["code"] == "missing_identity"


def test_it_refuses_a_malformed_last_event_id_and_identifier(events_stack):
    bad_id = SseClient(events_stack.events_url, user="alice", last_event_id="nope")  # type: ignore[arg-type]
    bad_identifier = SseClient(events_stack.events_url, user="alice", query="identifier=Not_A_Label")
    wait_until(lambda: bad_id.ended and bad_identifier.ended, message="the refusals")
    assert bad_id.status == 400 and "Last-Event-ID" in bad_id.error_body["error"]["fields"]
    assert bad_identifier.status == 400 and "identifier" in bad_identifier.error_body["error"]["fields"]


def test_the_stream_has_the_headers_proxies_need_and_heartbeats(events_stack):
    events_stack.env["K8SDM_SSE_HEARTBEAT_SECONDS"] = "0.2"
    from tests.events.helpers import start_events_server

    _, url = start_events_server(events_stack)
    client = SseClient(url, user="alice").wait_connected()
    try:
        assert client.headers["content-type"].startswith("text/event-stream")
        assert client.headers["x-accel-buffering"] == "no"
        assert client.headers["cache-control"] == "no-cache"
        wait_until(lambda: client.comments.count("heartbeat") >= 3, message="three heartbeats")
        assert client.snapshot() == []
    finally:
        client.close()


def test_a_user_gets_only_their_own_events_and_the_identifier_filter_holds(events_stack):
    alice = SseClient(events_stack.events_url, user="alice@example.com").wait_connected()
    alice_web = SseClient(events_stack.events_url, user="alice@example.com", query="identifier=web").wait_connected()
    bob = SseClient(events_stack.events_url, user="bob@example.com").wait_connected()
    try:
        _publish(events.REQUEST_ACCEPTED, "alice@example.com", "web", 1)
        _publish(events.REQUEST_ACCEPTED, "bob@example.com", "api", 2)
        _publish(events.REQUEST_ACCEPTED, "alice@example.com", "db", 3)
        _publish(events.REQUEST_SUCCEEDED, "alice@example.com", "web", 4)
        alice.wait_for(lambda evs: len(evs) == 3, "alice's three events")
        bob.wait_for(lambda evs: len(evs) == 1, "bob's event")
        alice_web.wait_for(lambda evs: len(evs) == 2, "alice's two events of web")
        assert [e.data["data"]["n"] for e in alice.snapshot()] == [1, 3, 4]
        assert [e.data["data"]["n"] for e in alice_web.snapshot()] == [1, 4]
        assert [(e.kind, e.data["user"]) for e in bob.snapshot()] == [(events.REQUEST_ACCEPTED, "bob@example.com")]
        ids = [e.id for e in alice.snapshot()]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert all(e.data["id"] == e.id for e in alice.snapshot())
    finally:
        for client in (alice, alice_web, bob):
            client.close()


def test_a_reconnect_with_last_event_id_replays_exactly_what_was_missed(events_stack):
    witness = SseClient(events_stack.events_url, user="carol").wait_connected()
    first = SseClient(events_stack.events_url, user="carol").wait_connected()
    try:
        for n in range(1, 4):
            _publish(events.REQUEST_ACCEPTED, "carol", "web", n)
        seen = first.wait_for(lambda evs: len(evs) == 3, "the first three events")
        first.close()
        for n in range(4, 8):  # while carol is away
            _publish(events.REQUEST_ACCEPTED, "carol", "web", n)
            _publish(events.REQUEST_ACCEPTED, "dave", "web", n)  # another user's, never replayed to carol
        witness.wait_for(lambda evs: len(evs) == 7, "all seven on the witness stream")
        resumed = SseClient(events_stack.events_url, user="carol", last_event_id=seen[-1].id).wait_connected()
        try:
            resumed.wait_for(lambda evs: len(evs) == 4, "the four missed events")
            _publish(events.REQUEST_ACCEPTED, "carol", "web", 8)  # and it goes on live
            resumed.wait_for(lambda evs: len(evs) == 5, "the live event after the replay")
            missed = [e for e in witness.wait_for(lambda evs: len(evs) == 8, "eight") if e.id > seen[-1].id]
            assert [(e.id, e.data) for e in resumed.snapshot()] == [(e.id, e.data) for e in missed]
            assert [e.data["data"]["n"] for e in resumed.snapshot()] == [4, 5, 6, 7, 8]
        finally:
            resumed.close()
    finally:
        witness.close()


def test_a_user_may_open_only_a_bounded_number_of_streams(events_stack):
    events_stack.env["K8SDM_SSE_MAX_STREAMS_PER_USER"] = "2"
    from tests.events.helpers import start_events_server

    _, url = start_events_server(events_stack)
    open_ = [SseClient(url, user="erin").wait_connected() for _ in range(2)]
    try:
        third = SseClient(url, user="erin")
        wait_until(lambda: third.ended, message="the third stream's refusal")
        assert third.status == 429 and third.error_body["error"]["code"] == "too_many_streams"
        assert "retry-after" in third.headers
        other = SseClient(url, user="frank").wait_connected()  # others are not affected
        other.close()
        open_.pop().close()
        wait_until(lambda: SseClient(url, user="erin").wait_connected(), message="a stream once one closed")
    finally:
        for client in open_:
            client.close()


def test_events_of_a_create_update_delete_arrive_in_order_and_nothing_of_another_users(events_stack):
    events_stack.worker()
    events_stack.watcher()
    _, api = events_stack.api()
    alice = SseClient(events_stack.events_url, user="alice@example.com").wait_connected()
    bob = SseClient(events_stack.events_url, user="bob@example.com").wait_connected()
    session = requests.Session()
    session.headers["X-User-Id"] = "alice@example.com"
    bob_session = requests.Session()
    bob_session.headers["X-User-Id"] = "bob@example.com"
    try:
        assert session.post(api + CREATE_URL, json=config("web", request_id="c1")).status_code == 202
        assert bob_session.post(api + CREATE_URL, json=config("bobs", request_id="b1")).status_code == 202
        alice.wait_for(lambda evs: ("deployment.health_changed", "web") in [(e.kind, e.data["identifier"]) for e in evs]
                       and evs[-1].data["data"].get("health") == "HEALTHY", "web to be HEALTHY")
        assert session.patch(api + change_url("web"), json={"replicas": 2, "request_id": "u1"}).status_code == 202
        alice.wait_for(lambda evs: [e for e in evs if e.kind == events.REQUEST_SUCCEEDED
                                    and e.data["data"]["request_id"] == "u1"], "the update to succeed")
        assert session.delete(api + change_url("web"), json={"request_id": "d1"}).status_code == 202
        seen = alice.wait_for(lambda evs: evs and evs[-1].kind == events.DEPLOYMENT_DELETED, "web deleted")
        requests_seen = [(e.kind, e.data["data"]["request_id"]) for e in seen if e.kind.startswith("request.")]
        assert requests_seen == [
            ("request.accepted", "c1"), ("request.succeeded", "c1"),
            ("request.accepted", "u1"), ("request.succeeded", "u1"),
            ("request.accepted", "d1"), ("request.succeeded", "d1"),
        ]
        ids = [e.id for e in seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert {e.data["user"] for e in seen} == {"alice@example.com"}
        assert {e.data["identifier"] for e in seen} == {"web"}
        kinds = [e.kind for e in seen]
        assert kinds.index("request.succeeded") < kinds.index("deployment.health_changed")
        assert kinds[-1] == "deployment.deleted" and kinds.count("deployment.deleted") == 1
        # No secrets: the config (env values included) never appears in an event.
        assert all("env" not in e.data["data"] and "config" not in e.data["data"] for e in seen)
        bob.wait_for(lambda evs: any(e.kind == events.REQUEST_SUCCEEDED for e in evs), "bob's own request")
        assert {e.data["user"] for e in bob.snapshot()} == {"bob@example.com"}
        assert "web" not in {e.data["identifier"] for e in bob.snapshot()}
    finally:
        alice.close()
        bob.close()


def test_under_a_burst_every_requests_accepted_event_comes_before_its_outcome(events_stack):
    """The accepted event is acked on the api's connection before the request goes out, so no
    worker can finish it first, however busy the api's publisher is (a burst of parallel creates)."""
    from concurrent.futures import ThreadPoolExecutor

    events_stack.worker()
    _, api = events_stack.api()
    client = SseClient(events_stack.events_url, user="burst@example.com").wait_connected()
    count = 40

    def create(n: int) -> int:
        return requests.post(api + CREATE_URL, json=config(f"burst-{n}", request_id=f"burst-{n}"),
                             headers={"X-User-Id": "burst@example.com"}, timeout=30).status_code

    try:
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(create, range(count))) == {202}
        seen = client.wait_for(lambda evs: sum(e.kind == events.REQUEST_SUCCEEDED for e in evs) == count,
                               f"{count} requests to succeed", timeout=60)
        position = {(e.kind, e.data["data"]["request_id"]): i for i, e in enumerate(seen)
                    if e.kind.startswith("request.")}
        overtaken = [n for n in range(count)
                     if position[(events.REQUEST_SUCCEEDED, f"burst-{n}")] < position[(events.REQUEST_ACCEPTED, f"burst-{n}")]]
        assert overtaken == []
        assert len(position) == 2 * count
    finally:
        client.close()


def test_a_stream_survives_a_nats_restart(transactional_db, cluster, settings, tmp_path):
    from devstack._proc import free_port
    from devstack.nats import NatsServer
    from k8sdm.messaging.events_stream import reset_event_bus
    from tests.events.helpers import start_events_server
    from tests.stack import make_stack

    nats = NatsServer(tmp_path / "nats", free_port()).start()
    stack = make_stack(settings, tmp_path, cluster.kubeconfig, NATS_URL=nats.url, K8SDM_SSE_CONSUMER_CHECK_SECONDS=0.5)
    reset_event_bus()
    try:
        _, url = start_events_server(stack)
        client = SseClient(url, user="grace").wait_connected()
        _publish(events.REQUEST_ACCEPTED, "grace", "web", 1)
        client.wait_for(lambda evs: len(evs) == 1, "the event before the restart")
        nats.stop()
        nats.start()
        reset_event_bus()  # a fresh publisher in this process; the events server keeps its connection
        _publish(events.REQUEST_ACCEPTED, "grace", "web", 2)
        _publish(events.REQUEST_SUCCEEDED, "grace", "web", 3)
        seen = client.wait_for(lambda evs: len(evs) == 3, "the events after the restart", timeout=60)
        assert not client.ended
        assert [e.data["data"]["n"] for e in seen] == [1, 2, 3]
        assert seen[0].id < seen[1].id < seen[2].id
        client.close()
    finally:
        stack.stop_all()
        reset_event_bus()
        nats.stop()


def test_an_event_committed_while_nats_is_down_reaches_the_stream_once_nats_is_back(
        transactional_db, cluster, settings, tmp_path):
    """The events outbox: the transition commits its event's row with it; the process that made it
    dies before NATS is back (its in-memory copy is gone); the relay of a worker started later
    publishes the row, and the open SSE stream gets the event, in order, once."""
    from django.db import transaction

    from devstack._proc import free_port
    from devstack.nats import NatsServer
    from events_app.models import EventOutbox
    from k8sdm.messaging.events_stream import reset_event_bus
    from tests.events.helpers import start_events_server
    from tests.stack import make_stack

    nats = NatsServer(tmp_path / "nats", free_port()).start()
    stack = make_stack(settings, tmp_path, cluster.kubeconfig, NATS_URL=nats.url, K8SDM_SSE_CONSUMER_CHECK_SECONDS=0.5,
                       K8SDM_OUTBOX_GRACE_SECONDS=0.5, K8SDM_OUTBOX_INTERVAL_SECONDS=0.2)
    reset_event_bus()
    try:
        _, url = start_events_server(stack)
        client = SseClient(url, user="heidi").wait_connected()
        _publish(events.REQUEST_ACCEPTED, "heidi", "web", 1)
        client.wait_for(lambda evs: len(evs) == 1, "the event before the outage")
        wait_until(lambda: not EventOutbox.objects.filter(published_at__isnull=True).exists(),
                   message="the first event's row stamped published")

        nats.stop()
        with transaction.atomic():  # a transition and its event, committed while NATS is down
            _publish(events.REQUEST_SUCCEEDED, "heidi", "web", 2)
        reset_event_bus()  # the process dies: the event it kept in memory is gone with it
        pending = EventOutbox.objects.get(published_at__isnull=True)
        assert pending.msg_id == "test/heidi/web/2"

        nats.start()
        stack.worker()  # its outbox relay publishes what is pending
        seen = client.wait_for(lambda evs: len(evs) >= 2, "the event committed during the outage", timeout=60)
        assert [(e.kind, e.data["data"]["n"]) for e in seen] == [("request.accepted", 1), ("request.succeeded", 2)]
        assert seen[0].id < seen[1].id and not client.ended
        wait_until(lambda: EventOutbox.objects.get(pk=pending.pk).published_at is not None,
                   message="the relay stamps the row")
        client.close()
    finally:
        stack.stop_all()
        reset_event_bus()
        nats.stop()


def test_the_wsgi_api_documents_the_stream_and_says_where_it_is_served(client, db):
    response = client.get("/api/v1/events?identifier=web", HTTP_X_USER_ID="alice", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 404
    assert "served by the events server" in response.json()["error"]["message"]
    refused = client.get("/api/v1/events?identifier=Not_A_Label", HTTP_LAST_EVENT_ID="x", HTTP_X_USER_ID="alice")
    assert refused.status_code == 400
    assert set(refused.json()["error"]["fields"]) == {"identifier", "Last-Event-ID"}
    operation = client.get("/api/schema/?format=json").json()["paths"]["/api/v1/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {p["name"] for p in operation["parameters"]} >= {"identifier", "Last-Event-ID"}


def test_the_relay_publishing_an_event_the_bus_already_published_adds_nothing_to_the_stream(events_stack, settings):
    """A stamp lost (the process died after the ack): the relay publishes the row again with the
    event's Nats-Msg-Id, JetStream drops that copy, and the stream shows the event once."""
    from events_app import outbox as events_outbox
    from events_app.models import EventOutbox
    from requests_app import publishing

    client = SseClient(events_stack.events_url, user="ivan").wait_connected()
    try:
        _publish(events.REQUEST_ACCEPTED, "ivan", "web", 1)
        client.wait_for(lambda evs: len(evs) == 1, "the event published after commit")
        wait_until(lambda: EventOutbox.objects.filter(published_at__isnull=False).count() == 1,
                   message="its row stamped")
        EventOutbox.objects.update(published_at=None)  # the stamp that was lost

        settings.K8SDM_OUTBOX_GRACE_SECONDS = 0
        assert events_outbox.relay(publishing.current().publisher) == 1
        assert not EventOutbox.objects.filter(published_at__isnull=True).exists()

        _publish(events.REQUEST_SUCCEEDED, "ivan", "web", 2)
        seen = client.wait_for(lambda evs: any(e.data["data"]["n"] == 2 for e in evs), "the next event")
        assert [e.data["data"]["n"] for e in seen] == [1, 2]  # no second copy of 1 in between
    finally:
        client.close()
