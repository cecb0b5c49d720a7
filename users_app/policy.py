"""Per-user policy and quotas, checked before a CREATE or UPDATE is stored.

`policy_check(user=..., config=..., replacing=...)` is called by the request services inside the
transaction that stores the request. It first locks the user's row (SELECT ... FOR UPDATE), so
two writes of one user are checked one after the other: two parallel CREATEs cannot both take the
last free slot. Usage is what the user's live deployments (every status but DELETED) ask for in
their desired config; `replacing` (an UPDATE's deployment) is left out of the usage, since the new
config replaces it.

Each limit comes from the user's UserPolicy when set there, else from settings (K8SDM_POLICY_*).
Counts and replicas are integers; CPU and memory are Kubernetes quantities; "" is no limit.
A container's CPU/memory ask is its limit, or its request when it sets no limit (a container with
neither asks 0: bound those with the cluster's own LimitRange). Totals are per container x replicas.

Refusals raise PolicyDenied (403: namespace or registry not allowed) or QuotaExceeded (422,
`quota_exceeded`), each naming the limit, the usage and the ask; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from deployments_app.models import Deployment, DeploymentStatus
from deployments_app.validators import DOCKER_HUB, parse_quantity
from k8sdm.errors import LimitExceeded, NotAllowed
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


def effective_policy(user: User) -> EffectivePolicy:
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


def _usage(user: User, replacing: Deployment | None) -> dict:
    live = Deployment.objects.filter(owner=user).exclude(status=DeploymentStatus.DELETED)
    if replacing is not None:
        live = live.exclude(pk=replacing.pk)
    usage = {"deployments": 0, "replicas": 0, "cpu": Decimal(0), "memory": Decimal(0)}
    for config in live.values_list("desired_config", flat=True):
        replicas = int(config.get("replicas", 1) or 0)
        ask = container_ask(config)
        usage["deployments"] += 1
        usage["replicas"] += replicas
        usage["cpu"] += ask["cpu"] * replicas
        usage["memory"] += ask["memory"] * replicas
    return usage


def _fmt(value) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _over(limit_name: str, limit: str, usage, ask, field: str, what: str) -> None:
    if not limit:
        return
    bound = parse_quantity(limit) if limit_name in QUANTITY_LIMITS else Decimal(int(limit))
    if usage + ask > bound:
        raise QuotaExceeded(
            f"Quota exceeded: {limit_name} is {limit}; {what} in use {_fmt(usage)}, this request asks {_fmt(ask)}.",
            limit_name=limit_name, limit=limit, usage=_fmt(usage), ask=_fmt(ask), field=field,
        )


def policy_check(*, user: User, config: dict, replacing: Deployment | None = None) -> None:
    """Refuse `config` (a complete, validated deployment config) if `user` may not run it.

    Must run inside the transaction that stores the request: it locks the user's row until commit."""
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
    policy = effective_policy(user)
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
    _over("max_replicas", limits["max_replicas"], 0, replicas, "replicas", "replicas per deployment")
    _over("max_cpu_per_container", limits["max_cpu_per_container"], Decimal(0), ask["cpu"],
          "resources.limits.cpu", "cpu per container")
    _over("max_memory_per_container", limits["max_memory_per_container"], Decimal(0), ask["memory"],
          "resources.limits.memory", "memory per container")
    usage = _usage(user, replacing)
    if replacing is None:
        _over("max_deployments", limits["max_deployments"], usage["deployments"], 1, "identifier", "deployments")
    _over("max_replicas_total", limits["max_replicas_total"], usage["replicas"], replicas, "replicas", "replicas")
    _over("max_cpu_total", limits["max_cpu_total"], usage["cpu"], ask["cpu"] * replicas,
          "resources.limits.cpu", "cpu")
    _over("max_memory_total", limits["max_memory_total"], usage["memory"], ask["memory"] * replicas,
          "resources.limits.memory", "memory")
