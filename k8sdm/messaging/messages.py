"""What travels on NATS JetStream: the stream, its subjects, its consumers and its payloads.

Every name lives here (settings give the stream name and the subject prefix). Payloads are frozen, kw-only, versioned dataclasses; `from_bytes` validates
and raises MessageError with a readable reason, so no raw dict ever gets past the parse step.
Messages carry keys, never state: the worker re-reads the request from Postgres and the
Deployment from Kubernetes, so a stale or duplicated message is harmless.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

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


@dataclass(frozen=True, kw_only=True)
class ApplyRequest:
    """Apply DeploymentRequest `request_pk` (the server id, not the client's request_id)."""

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

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ApplyRequest":
        raw = _load(data, "ApplyRequest")
        pk, identifier = raw.get("request_pk"), raw.get("identifier")
        if not isinstance(pk, int) or isinstance(pk, bool) or pk <= 0:
            raise MessageError(f"ApplyRequest: request_pk must be a positive integer, got {pk!r}")
        if not isinstance(identifier, str) or not _TOKEN.match(identifier):
            raise MessageError(f"ApplyRequest: identifier must be a DNS-1123 label, got {identifier!r}")
        correlation_id = raw.get("correlation_id", "")
        if not isinstance(correlation_id, str):
            raise MessageError("ApplyRequest: correlation_id must be a string")
        return cls(request_pk=pk, identifier=identifier, correlation_id=correlation_id)


@dataclass(frozen=True, kw_only=True)
class SyncDeployment:
    """Look at the live Deployment namespace/name and mirror it into Postgres."""

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

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SyncDeployment":
        raw = _load(data, "SyncDeployment")
        namespace, name, rv = raw.get("namespace"), raw.get("name"), raw.get("resource_version", "")
        for label, value in (("namespace", namespace), ("name", name)):
            if not isinstance(value, str) or not _TOKEN.match(value):
                raise MessageError(f"SyncDeployment: {label} must be a DNS-1123 label, got {value!r}")
        if not isinstance(rv, str):
            raise MessageError("SyncDeployment: resource_version must be a string")
        return cls(namespace=namespace, name=name, resource_version=rv)
