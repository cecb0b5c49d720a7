"""An event's bytes (what the outbox stores and JetStream carries) hold every field but id and
msg_id, in a canonical JSON a reader turns back into the same event; they are computed once."""

import dataclasses
import json

from k8sdm.messaging.events import REQUEST_ACCEPTED, Event


def _event(**over) -> Event:
    values = dict(kind=REQUEST_ACCEPTED, user="alice", identifier="web", namespace="team-a",
                  time="2026-12-03T10:00:00Z", data={"b": [1, {"z": "ü"}], "a": None}, msg_id="request/1/accepted")
    values.update(over)
    return Event(**values)


def test_the_bytes_hold_every_field_but_id_and_msg_id_in_canonical_json():
    event = _event(id=42)
    raw = event.to_bytes()
    expected = {f.name for f in dataclasses.fields(Event)} - {"id", "msg_id"}
    assert set(json.loads(raw)) == expected  # a new field must be added to the bytes (or here)
    assert raw == json.dumps({k: v for k, v in dataclasses.asdict(event).items() if k in expected},
                             separators=(",", ":"), sort_keys=True).encode()
    back = Event.from_bytes(raw, id=42)
    assert dataclasses.replace(back, msg_id=event.msg_id) == event


def test_bytes_and_subject_are_computed_once_and_a_replaced_event_gets_its_own():
    event = _event()
    assert event.to_bytes() is event.to_bytes()
    assert event.subject is event.subject
    other = dataclasses.replace(event, user="bob")
    assert other.subject != event.subject
    assert json.loads(other.to_bytes())["user"] == "bob"
