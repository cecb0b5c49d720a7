import pytest

from tests.events.helpers import start_events_server


@pytest.fixture
def events_stack(stack):
    """The worker's stack plus the ASGI events server; the test process's event bus uses its stream."""
    from k8sdm.messaging.events_stream import reset_event_bus

    reset_event_bus()
    _, url = start_events_server(stack)
    stack.events_url = url
    yield stack
    reset_event_bus()
