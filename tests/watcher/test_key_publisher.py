"""The watcher's KeyPublisher against the test's own JetStream stream: a burst of events for one
Deployment inside the coalescing window becomes one sync message carrying the newest
resourceVersion; with no window every event that finds the publisher idle is its own message."""

import asyncio

from django.conf import settings

from deployments_app.key_publisher import KeyPublisher
from k8sdm.messaging import jetstream
from k8sdm.messaging.messages import sync_subject
from k8sdm.messaging.publisher import Publisher
from tests.stack import wait_until


def sync_messages(namespace: str, name: str) -> tuple[int, bytes]:
    """How many messages the stream holds for the key's sync subject, and the newest one's body."""
    subject = sync_subject(namespace, name)

    async def look():
        nc = await jetstream.connect(name="k8sdm-test-reader")
        try:
            js = nc.jetstream()
            info = await js.stream_info(settings.K8SDM_STREAM, subjects_filter=subject)
            count = (info.state.subjects or {}).get(subject, 0)
            last = await js.get_last_msg(settings.K8SDM_STREAM, subject) if count else None
            return count, last.data if last else b""
        finally:
            await nc.close()

    return asyncio.run(look())


def run_keys(coalesce_seconds: float, offers, *, idle_between: bool) -> None:
    publisher = Publisher(name="k8sdm-test-keys").start()
    keys = KeyPublisher(publisher, coalesce_seconds=coalesce_seconds).start()
    term = keys.begin_term()  # as the watcher does when it starts leading
    try:
        for namespace, name, rv in offers:
            keys.offer(namespace, name, rv, term=term)
            if idle_between:
                wait_until(lambda: keys.backlog() == 0, message="the key to be published")
        assert keys.stop(flush_timeout=coalesce_seconds + 10) == 0
    finally:
        publisher.stop()


def test_a_burst_for_one_deployment_inside_the_window_is_one_sync_with_the_newest_version(stack):
    run_keys(2.0, [("default", "web", "101"), ("default", "web", "102"), ("default", "web", "103"),
                   ("default", "api", "104")], idle_between=False)
    count, body = sync_messages("default", "web")
    assert count == 1
    assert b'"103"' in body
    assert sync_messages("default", "api")[0] == 1


def test_without_a_window_each_event_found_idle_is_published_on_its_own(stack):
    run_keys(0.0, [("default", "web", "201"), ("default", "web", "202"), ("default", "web", "203")],
             idle_between=True)
    count, body = sync_messages("default", "web")
    assert count == 3
    assert b'"203"' in body
