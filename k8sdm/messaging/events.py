"""The event catalogue: what k8sdm tells about a state transition, and where it travels.

(The payload side, like `messages` for the work queue; events_app builds and serves events.)

Contract:
- An event is published once per real transition (the state before and after differ), after the
  transaction that made it has committed, by the component that made it (the api for
  `request.accepted`, the worker for everything else).
- Events go to a JetStream stream of their own (`<K8SDM_STREAM>_EVENTS`, file storage, retention
  K8SDM_EVENTS_RETENTION_SECONDS) on a per-user subject
  `<prefix>.events.<user token>.<identifier>.<kind>`; the stream sequence is the event's id
  (monotonic), which is what SSE `id:` lines and webhook bodies carry.
- The user token is a hash of the user's external id (subjects cannot carry every character an
  id may have); readers also compare the `user` field of the payload, so a collision can never
  leak an event to another user.
- No secrets: env values and the config body never appear in an event; a deployment event
  carries its status, health, replica counts, image and the *names* of the drifted fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings

SCHEMA_VERSION = 1

# A deployment identifier (a DNS-1123 label), as the API accepts it.
IDENTIFIER = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

REQUEST_ACCEPTED = "request.accepted"
REQUEST_SUCCEEDED = "request.succeeded"
REQUEST_FAILED = "request.failed"
DEPLOYMENT_STATUS_CHANGED = "deployment.status_changed"
DEPLOYMENT_HEALTH_CHANGED = "deployment.health_changed"
DEPLOYMENT_DRIFT_DETECTED = "deployment.drift_detected"
DEPLOYMENT_DRIFT_CLEARED = "deployment.drift_cleared"
DEPLOYMENT_DELETED = "deployment.deleted"

KINDS = (
    REQUEST_ACCEPTED, REQUEST_SUCCEEDED, REQUEST_FAILED,
    DEPLOYMENT_STATUS_CHANGED, DEPLOYMENT_HEALTH_CHANGED,
    DEPLOYMENT_DRIFT_DETECTED, DEPLOYMENT_DRIFT_CLEARED, DEPLOYMENT_DELETED,
)
FINISHED_REQUEST_KINDS = (REQUEST_SUCCEEDED, REQUEST_FAILED)


class EventError(ValueError):
    """A payload on the events stream that cannot be read."""


def stream_name() -> str:
    return f"{settings.K8SDM_STREAM}_EVENTS"


def user_token(user_external_id: str) -> str:
    return "u" + hashlib.sha256(user_external_id.encode()).hexdigest()[:24]


def events_root() -> str:
    return f"{settings.K8SDM_SUBJECT_PREFIX}.events"


def stream_subjects() -> list[str]:
    return [f"{events_root()}.>"]


def user_filter(user_external_id: str, identifier: str | None = None) -> str:
    """The subject filter for one user's events (of one deployment, when given)."""
    base = f"{events_root()}.{user_token(user_external_id)}"
    return f"{base}.{identifier}.>" if identifier else f"{base}.>"


def subject_parts(subject: str) -> tuple[str, str] | None:
    """(user token, identifier) of an event subject, None if it is not one."""
    root = events_root() + "."
    if not subject.startswith(root):
        return None
    parts = subject[len(root):].split(".")
    if len(parts) < 3:
        return None
    return parts[0], parts[1]


@dataclass(frozen=True, kw_only=True)
class Event:
    """One transition. `id` (the stream sequence) is known only once it is on the stream."""

    kind: str
    user: str
    identifier: str
    namespace: str
    time: str
    data: dict
    msg_id: str = ""  # Nats-Msg-Id: a re-publish of the same transition is dropped by JetStream
    id: int | None = None
    schema_version: int = field(default=SCHEMA_VERSION)

    # An event is built once and then written to the outbox, published and perhaps re-published:
    # its subject (a sha256) and its bytes are computed once, on first use (the cache lives in the
    # instance's __dict__, which a frozen dataclass lets cached_property write; `replace` makes a
    # new instance, with no cache).
    @cached_property
    def subject(self) -> str:
        return f"{events_root()}.{user_token(self.user)}.{self.identifier}.{self.kind}"

    def body(self) -> dict:
        """What a client sees (SSE data, webhook body)."""
        return {"id": self.id, "kind": self.kind, "time": self.time, "user": self.user,
                "identifier": self.identifier, "namespace": self.namespace, "data": self.data}

    def to_bytes(self) -> bytes:
        return self._bytes

    @cached_property
    def _bytes(self) -> bytes:
        # Every field but id and msg_id (dataclasses.asdict would deep-copy `data` first).
        raw = {"kind": self.kind, "user": self.user, "identifier": self.identifier, "namespace": self.namespace,
               "time": self.time, "data": self.data, "schema_version": self.schema_version}
        return json.dumps(raw, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, id: int | None = None) -> "Event":
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventError(f"event: not JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION:
            raise EventError("event: not an object of a known schema_version")
        try:
            event = cls(kind=raw["kind"], user=raw["user"], identifier=raw["identifier"],
                        namespace=raw["namespace"], time=raw["time"], data=raw["data"], id=id)
        except (KeyError, TypeError) as exc:
            raise EventError(f"event: missing field {exc}") from None
        if event.kind not in KINDS or not isinstance(event.data, dict):
            raise EventError(f"event: unknown kind {event.kind!r}")
        return event

    def to_json(self) -> str:
        return json.dumps(self.body(), separators=(",", ":"))
