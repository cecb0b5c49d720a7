"""Per-user policy: what a user may ask for, read from their UserPolicy or from settings.

Each limit comes from the user's UserPolicy when set there, else from settings (K8SDM_POLICY_*).
Counts and replicas are integers; CPU and memory are Kubernetes quantities; "" is no limit.
A container's CPU/memory ask is its limit, or its request when it sets no limit (a container with
neither asks 0: bound those with the cluster's own LimitRange). Totals are per container x replicas.

`policy_check(user=..., config=...)` refuses what one config alone breaks (namespace, registry, the
per-deployment and per-container limits). The totals over a user's live deployments need the
deployments, one layer up: requests_app.quotas counts them and calls `check_limit` for each total.

Refusals raise PolicyDenied (403: namespace or registry not allowed) or QuotaExceeded (422,
`quota_exceeded`), each naming the limit, the usage and the ask; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from k8sdm.errors import LimitExceeded, NotAllowed
from k8sdm.syntax import DOCKER_HUB, parse_quantity
from users_app.models import RefusalKind, User, UserPolicy


class PolicyDenied(NotAllowed):
    default_code = "policy_denied"
    audit_kind = RefusalKind.POLICY


class QuotaExceeded(LimitExceeded):
    default_code = "quota_exceeded"
    audit_kind = RefusalKind.QUOTA

    def __init__(self, message: str, *, limit_name: str, limit, usage, ask, field: str):
        super().__init__(
            message, code="quota_exceeded",
            fields={field: [f"{limit_name}: limit {limit}, in use {usage}, asked {ask}"]},
        )
        self.limit_name, self.limit, self.usage, self.ask = limit_name, limit, usage, ask


LIMIT_FIELDS = (
    "max_deployments", "max_replicas", "max_replicas_total", "max_cpu_per_container", "max_memory_per_container",
    "max_cpu_total", "max_memory_total",
)
DOCKER_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
QUANTITY_LIMITS = frozenset({"max_cpu_per_container", "max_memory_per_container", "max_cpu_total", "max_memory_total"})


@dataclass(frozen=True)
class EffectivePolicy:
    namespaces: list[str]
    registries: list[str]
    limits: dict[str, str]  # name -> "" (none) or the number/quantity


def default_limit(name: str) -> str:
    return getattr(settings, "K8SDM_POLICY_" + name.upper())


def limit_valid(name: str, value: str) -> bool:
    """Is `value` a valid setting for the limit `name`: a non-negative integer, or a non-negative quantity
    for the CPU and memory limits ("" and "unlimited", no limit, are checked by the caller)."""
    try:
        return parse_quantity(value) >= 0 if name in QUANTITY_LIMITS else int(value) >= 0
    except Exception:  # noqa: BLE001 - any parse failure means the same: not a valid limit
        return False


_READ = object()


def effective_policy(user: User, row: UserPolicy | None | object = _READ) -> EffectivePolicy:
    """`row`: the user's UserPolicy (or None), when the caller has read it already."""
    if row is _READ:
        row = UserPolicy.objects.filter(user=user).first()
    limits = {}
    for name in LIMIT_FIELDS:
        value = (getattr(row, name, "") or "").strip() if row else ""
        if not value:
            value = default_limit(name)
        limits[name] = "" if value.lower() == "unlimited" else value
    namespaces = (row.allowed_namespaces if row and row.allowed_namespaces else None) or \
        settings.K8SDM_POLICY_NAMESPACES or settings.K8SDM_ALLOWED_NAMESPACES
    registries = (row.allowed_registries if row and row.allowed_registries else None) or \
        settings.K8SDM_POLICY_REGISTRIES
    return EffectivePolicy(namespaces=list(namespaces), registries=list(registries), limits=limits)


def image_repository(reference: str) -> tuple[str, str]:
    """(registry host, repository path) of an image reference, Docker Hub normalised:
    `nginx:1` -> ("docker.io", "library/nginx"); `index.docker.io/x/y:2` -> ("docker.io", "x/y")."""
    name = reference.split("@", 1)[0]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, path = first.lower(), rest
    else:
        host, path = DOCKER_HUB, name
    head, slash, last = path.rpartition("/")
    last = last.split(":", 1)[0]
    path = f"{head}/{last}" if slash else last
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return host, path


def registry_allowed(reference: str, entries: list[str]) -> bool:
    """Is the image under one of `entries`: "host" (every repository there, said explicitly) or
    "host/prefix" (that repository or under it, on a path-segment boundary). Hosts match exactly."""
    if not entries:
        return True
    host, path = image_repository(reference)
    for entry in entries:
        entry = entry.strip().lower().rstrip("/")
        entry_host, _, prefix = entry.partition("/")
        if entry_host in DOCKER_HUB_ALIASES:
            entry_host = DOCKER_HUB
        if entry_host != host:
            continue
        if not prefix or path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def container_ask(config: dict) -> dict[str, Decimal]:
    resources = config.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    ask = {}
    for name in ("cpu", "memory"):
        value = limits.get(name) or requests.get(name)
        ask[name] = parse_quantity(value) if value else Decimal(0)
    return ask


def _fmt(value) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def check_limit(limit_name: str, limit: str, usage, ask, field: str, what: str) -> None:
    """Raise QuotaExceeded if `usage` + `ask` goes over `limit` ("" is no limit)."""
    if not limit:
        return
    bound = parse_quantity(limit) if limit_name in QUANTITY_LIMITS else Decimal(int(limit))
    if usage + ask > bound:
        raise QuotaExceeded(
            f"Quota exceeded: {limit_name} is {limit}; {what} in use {_fmt(usage)}, this request asks {_fmt(ask)}.",
            limit_name=limit_name, limit=limit, usage=_fmt(usage), ask=_fmt(ask), field=field,
        )


def policy_check(*, user: User, config: dict, row: UserPolicy | None | object = _READ) -> EffectivePolicy:
    """Refuse `config` (a complete, validated deployment config) if it breaks `user`'s policy on its own;
    return the policy, whose totals the caller checks against the user's usage. `row`: as for
    effective_policy."""
    policy = effective_policy(user, row)
    namespace = config["namespace"]
    if namespace not in policy.namespaces:
        raise PolicyDenied(
            f"Namespace {namespace!r} is not allowed for you; allowed: {', '.join(sorted(policy.namespaces))}.",
            code="namespace_not_allowed", fields={"namespace": ["not allowed by your policy"]},
        )
    if not registry_allowed(config["image"], policy.registries):
        raise PolicyDenied(
            f"Image {config['image']!r} is not from an allowed registry; allowed: "
            f"{', '.join(sorted(policy.registries))}.",
            code="registry_not_allowed", fields={"image": ["registry or repository not allowed by your policy"]},
        )
    limits = policy.limits
    replicas = int(config.get("replicas", 1) or 0)
    ask = container_ask(config)
    check_limit("max_replicas", limits["max_replicas"], 0, replicas, "replicas", "replicas per deployment")
    check_limit("max_cpu_per_container", limits["max_cpu_per_container"], Decimal(0), ask["cpu"],
                "resources.limits.cpu", "cpu per container")
    check_limit("max_memory_per_container", limits["max_memory_per_container"], Decimal(0), ask["memory"],
                "resources.limits.memory", "memory per container")
    return policy
