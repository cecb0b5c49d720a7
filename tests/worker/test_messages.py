"""Message payloads: round trips, and clear refusals of anything malformed."""

import json

import pytest

from k8sdm.messaging.messages import ApplyRequest, MessageError, SyncDeployment


def test_an_apply_request_round_trips_through_bytes():
    message = ApplyRequest(request_pk=42, identifier="web", correlation_id="c-1")
    assert ApplyRequest.from_bytes(message.to_bytes()) == message
    assert message.msg_id == "request/42"
    assert message.subject.endswith(".requests.web")


def test_a_sync_message_round_trips_and_its_msg_id_names_the_resource_version():
    message = SyncDeployment(namespace="default", name="web", resource_version="17")
    assert SyncDeployment.from_bytes(message.to_bytes()) == message
    assert message.msg_id == "default/web/17"
    assert message.subject.endswith(".sync.default.web")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps({"schema_version": 99, "request_pk": 1, "identifier": "a"}).encode(), "unsupported schema_version"),
        (json.dumps({"schema_version": 1, "request_pk": "1", "identifier": "a"}).encode(), "request_pk"),
        (json.dumps({"schema_version": 1, "request_pk": 0, "identifier": "a"}).encode(), "request_pk"),
        (json.dumps({"schema_version": 1, "request_pk": 3, "identifier": "Bad_Name"}).encode(), "identifier"),
    ],
)
def test_a_malformed_apply_request_is_refused_with_a_reason(data, reason):
    with pytest.raises(MessageError, match=reason):
        ApplyRequest.from_bytes(data)


def test_a_sync_message_with_a_bad_namespace_is_refused():
    with pytest.raises(MessageError, match="namespace"):
        SyncDeployment.from_bytes(json.dumps({"schema_version": 1, "namespace": "A B", "name": "x"}).encode())
