"""What travels on NATS JetStream: the stream, its subjects, its consumers and its payloads.

Every name lives here (settings give the stream name and the subject prefix). Payloads are frozen, kw-only, versioned dataclasses; `from_bytes` validates
and raises MessageError with a readable reason, so no raw dict ever gets past the parse step.
Messages carry keys, never state: the worker re-reads the request from Postgres and the
Deployment from Kubernetes, so a stale or duplicated message is harmless.
"""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Callable, ClassVar

from django.conf import settings

SCHEMA_VERSION = 1

_TOKEN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class MessageError(ValueError):
    """A message that can never be processed (malformed, wrong version): terminate it."""


def stream_name() -> str:
    return settings.K8SDM_STREAM


def requests_subject(identifier: str) -> str:
    return f"{settings.K8SDM_SUBJECT_PREFIX}.requests.{identifier}"


def sync_subject(namespace: str, name: str) -> str:
    return f"{settings.K8SDM_SUBJECT_PREFIX}.sync.{namespace}.{name}"


def stream_subjects() -> list[str]:
    prefix = settings.K8SDM_SUBJECT_PREFIX
    return [f"{prefix}.requests.>", f"{prefix}.sync.>"]


def requests_filter() -> str:
    return f"{settings.K8SDM_SUBJECT_PREFIX}.requests.>"


def sync_filter() -> str:
    return f"{settings.K8SDM_SUBJECT_PREFIX}.sync.>"


REQUESTS_CONSUMER = "k8sdm-worker-requests"
SYNC_CONSUMER = "k8sdm-worker-sync"


def _load(data: bytes, kind: str) -> dict:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"{kind}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise MessageError(f"{kind}: expected a JSON object, got {type(raw).__name__}")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise MessageError(f"{kind}: unsupported schema_version {version!r} (this worker reads {SCHEMA_VERSION})")
    return raw


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _dns_label(value) -> bool:
    return isinstance(value, str) and bool(_TOKEN.match(value))


def _string(value) -> bool:
    return isinstance(value, str)


class _Message:
    """What every payload shares: JSON with its schema_version, and a parse that checks each field
    with the rule in RULES (a field with a default may be absent)."""

    RULES: ClassVar[dict[str, tuple[Callable[[object], bool], str]]]  # field -> (check, what it must be)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes):
        kind = cls.__name__
        raw = _load(data, kind)
        values = {}
        for f in fields(cls):
            if f.name not in cls.RULES:
                continue
            check, must = cls.RULES[f.name]
            value = raw.get(f.name, f.default) if f.default is not MISSING else raw.get(f.name)
            if not check(value):
                raise MessageError(f"{kind}: {f.name} must be {must}, got {value!r}")
            values[f.name] = value
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class ApplyRequest(_Message):
    """Apply DeploymentRequest `request_pk` (the server id, not the client's request_id)."""

    RULES = {
        "request_pk": (_positive_int, "a positive integer"),
        "identifier": (_dns_label, "a DNS-1123 label"),
        "correlation_id": (_string, "a string"),
    }

    request_pk: int
    identifier: str
    correlation_id: str = ""
    schema_version: int = field(default=SCHEMA_VERSION)

    @property
    def msg_id(self) -> str:
        return f"request/{self.request_pk}"

    @property
    def subject(self) -> str:
        return requests_subject(self.identifier)


@dataclass(frozen=True, kw_only=True)
class SyncDeployment(_Message):
    """Look at the live Deployment namespace/name and mirror it into Postgres."""

    RULES = {
        "namespace": (_dns_label, "a DNS-1123 label"),
        "name": (_dns_label, "a DNS-1123 label"),
        "resource_version": (_string, "a string"),
    }

    namespace: str
    name: str
    resource_version: str = ""
    schema_version: int = field(default=SCHEMA_VERSION)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def msg_id(self) -> str:
        return f"{self.namespace}/{self.name}/{self.resource_version}"

    @property
    def subject(self) -> str:
        return sync_subject(self.namespace, self.name)
