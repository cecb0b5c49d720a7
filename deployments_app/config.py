"""`DeploymentConfig`: what a user asks a Deployment to be, and the ONE mapping between that and
the apps/v1 Deployment object k8sdm writes. A new config field is added here and nowhere else.

- `from_input(data)`: from validated API input (deployments_app/validators.py checked each field),
  or from a stored config (rows keep `to_dict()`), filling in the defaults;
- `merge(patch)`: UPDATE semantics (each field in the patch replaces that field whole);
- `to_dict()`: the JSON kept in `Deployment.desired_config` and `DeploymentRequest.config`;
- `to_manifest(owner=, request_pk=)`: the whole Deployment for a create;
- `apply_to_live(live, owner=, request_pk=)`: the live object with this config laid over it, for
  a PUT that keeps the resourceVersion (optimistic concurrency), the selector and whatever others
  added (their labels, annotations and pod-spec fields);
- `from_live(live)`: the config a live object carries (the manager's own labels and annotations
  left out), so `config == DeploymentConfig.from_live(live)` after a write;
- `drift(live_config)`: the managed fields (`MANAGED_FIELDS`) where the two differ.

What k8sdm writes: an apps/v1 Deployment named `identifier` in `namespace`, with one container
(`app`), labelled app.kubernetes.io/name=<identifier>, app.kubernetes.io/managed-by=
k8s-deployment-manager and an owner label, annotated with the owner and the id of the last request
applied. Quantities are kept as the strings the user wrote. Nothing else can be set: no pod-spec
escape hatch (privileged, hostPath, hostNetwork, serviceAccount ...).

Every pod is hardened: no service account token mounted, no privilege escalation, the RuntimeDefault
seccomp profile, default requests and limits (K8SDM_DEFAULT_*) when the config sets no resources, and
with K8SDM_POD_SECURITY_RESTRICTED the "restricted" profile (runAsNonRoot, all capabilities dropped).
These are k8sdm's, not the user's: `drift` compares the resources the object was written with
(`effective_resources`), so the defaults are never reported as drift.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields

from django.conf import settings

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "k8s-deployment-manager"
NAME_LABEL = "app.kubernetes.io/name"
OWNER_LABEL = "k8sdm.io/owner"
OWNER_ANNOTATION = "k8sdm.io/owner"
REQUEST_ANNOTATION = "k8sdm.io/last-request"
# What `kubectl rollout restart` sets on the pod template; k8sdm's restart sets the same.
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
CONTAINER_NAME = "app"

# Labels the manager sets on every object, and annotation prefixes that belong to the manager or to
# Kubernetes tooling: none of them is part of a user's config.
MANAGER_LABELS = frozenset({NAME_LABEL, MANAGED_BY_LABEL, OWNER_LABEL})
MANAGER_ANNOTATION_PREFIXES = ("k8sdm.io/", "deployment.kubernetes.io/", "kubectl.kubernetes.io/")

# The fields whose difference between the config and the live object is drift. Labels and
# annotations are not among them: others may add their own, and the manager keeps those.
MANAGED_FIELDS = ("image", "replicas", "command", "args", "env", "ports", "resources")

def owner_label_value(user_external_id: str) -> str:
    """A user id as a label value: "u-" and 40 hex digits of its SHA-256, so two different ids
    never share a value (a readable mapping such as "@" -> "_" made `eve@corp` and `eve_corp` one
    owner). The readable id is in the owner annotation."""
    return "u-" + hashlib.sha256(user_external_id.encode("utf-8")).hexdigest()[:40]


def is_managed(obj: dict) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def ownership_problem(live: dict, *, uid: str, owner: str) -> str:
    """Why the live object is not the one k8sdm created for a row whose CREATE stored `uid` and
    whose owner is `owner` ('' when it is ours). All three must hold: the same uid (a deleted and
    re-created object of the same name has another), the managed-by label, and k8sdm's owner
    annotation naming that owner. A row without a uid has no object of its own in the cluster."""
    meta = live.get("metadata") or {}
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    if not uid:
        return f"the Deployment {where} in the cluster was not created by k8sdm for this deployment"
    if meta.get("uid") != uid:
        return (f"the Deployment {where} in the cluster is not the one k8sdm created for this deployment "
                f"(uid {meta.get('uid')!r}, expected {uid!r}): it was replaced outside k8sdm")
    if not is_managed(live):
        return f"the Deployment {where} in the cluster is not labelled {MANAGED_SELECTOR}"
    if (meta.get("annotations") or {}).get(OWNER_ANNOTATION) != owner:
        return f"the Deployment {where} in the cluster does not carry k8sdm's owner annotation for its owner"
    return ""


def last_request_of(obj: dict) -> str:
    """The id of the last request applied to this object ('' if none)."""
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(REQUEST_ANNOTATION, "")


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str = ""


@dataclass(frozen=True)
class Port:
    container_port: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    identifier: str
    namespace: str
    image: str
    replicas: int = 1
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    env: tuple[EnvVar, ...] = ()
    ports: tuple[Port, ...] = ()
    resources: dict = field(default_factory=dict)  # {"requests": {...}, "limits": {...}}, non-empty only
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    # The pod template's restartedAt annotation (a restart request sets it). Not a user field and
    # not drift; kept in the stored form only when set, so configs without one read as before.
    restarted_at: str = ""

    # --- from and to the stored form ------------------------------------------------------------

    @classmethod
    def from_input(cls, data: dict) -> "DeploymentConfig":
        """From validated input or a stored config; a missing namespace is the default one."""
        return cls(
            identifier=data["identifier"],
            namespace=data.get("namespace") or settings.K8SDM_DEFAULT_NAMESPACE,
            image=data["image"],
            replicas=data.get("replicas", 1),
            labels=dict(data.get("labels") or {}),
            annotations=dict(data.get("annotations") or {}),
            env=tuple(EnvVar(name=e["name"], value=e.get("value", "")) for e in data.get("env") or []),
            ports=tuple(
                Port(container_port=p["container_port"], name=p.get("name") or "", protocol=p.get("protocol") or "TCP")
                for p in data.get("ports") or []
            ),
            resources={section: dict(values) for section, values in (data.get("resources") or {}).items() if values},
            command=tuple(data.get("command") or ()),
            args=tuple(data.get("args") or ()),
            restarted_at=data.get("restarted_at") or "",
        )

    def to_dict(self) -> dict:
        """The complete stored form: every key present (restarted_at only when set), plain JSON types."""
        stored = {
            "identifier": self.identifier,
            "namespace": self.namespace,
            "image": self.image,
            "replicas": self.replicas,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "env": [{"name": e.name, "value": e.value} for e in self.env],
            "ports": [{"name": p.name, "container_port": p.container_port, "protocol": p.protocol} for p in self.ports],
            "resources": {section: dict(values) for section, values in self.resources.items()},
            "command": list(self.command),
            "args": list(self.args),
        }
        if self.restarted_at:
            stored["restarted_at"] = self.restarted_at
        return stored

    def merge(self, patch: dict) -> "DeploymentConfig":
        """UPDATE semantics: each top-level field in the patch replaces that field whole (maps and
        lists included); fields not in the patch keep their value."""
        return DeploymentConfig.from_input({**self.to_dict(), **patch})

    # --- to Kubernetes --------------------------------------------------------------------------

    def effective_resources(self) -> dict:
        """The resources written: the config's own, or the defaults from settings if it sets none."""
        if self.resources:
            return self.resources
        defaults = {
            "requests": {"cpu": settings.K8SDM_DEFAULT_CPU_REQUEST, "memory": settings.K8SDM_DEFAULT_MEMORY_REQUEST},
            "limits": {"cpu": settings.K8SDM_DEFAULT_CPU_LIMIT, "memory": settings.K8SDM_DEFAULT_MEMORY_LIMIT},
        }
        return {section: {k: v for k, v in values.items() if v} for section, values in defaults.items()
                if any(values.values())}

    @staticmethod
    def _pod_security() -> dict:
        """The pod-level fields k8sdm always sets."""
        context: dict = {"seccompProfile": {"type": "RuntimeDefault"}}
        if settings.K8SDM_POD_SECURITY_RESTRICTED:
            context["runAsNonRoot"] = True
        return {"automountServiceAccountToken": False, "securityContext": context}

    @staticmethod
    def _container_security() -> dict:
        context: dict = {"allowPrivilegeEscalation": False}
        if settings.K8SDM_POD_SECURITY_RESTRICTED:
            context["capabilities"] = {"drop": ["ALL"]}
        return context

    def _container(self) -> dict:
        container: dict = {"name": CONTAINER_NAME, "image": self.image, "securityContext": self._container_security()}
        if self.command:
            container["command"] = list(self.command)
        if self.args:
            container["args"] = list(self.args)
        if self.env:
            container["env"] = [{"name": e.name, "value": str(e.value)} for e in self.env]
        if self.ports:
            container["ports"] = [
                {k: v for k, v in (("name", p.name), ("containerPort", p.container_port),
                                   ("protocol", p.protocol or "TCP")) if v}
                for p in self.ports
            ]
        resources = self.effective_resources()
        if resources:
            container["resources"] = {section: dict(values) for section, values in resources.items()}
        return container

    def _labels(self, owner: str) -> dict:
        return {
            **self.labels,
            NAME_LABEL: self.identifier,
            MANAGED_BY_LABEL: MANAGED_BY_VALUE,
            OWNER_LABEL: owner_label_value(owner),
        }

    def _template_annotations(self) -> dict:
        return {"annotations": {RESTARTED_AT_ANNOTATION: self.restarted_at}} if self.restarted_at else {}

    def to_manifest(self, *, owner: str, request_pk: int) -> dict:
        """The whole apps/v1 Deployment, as written by a create."""
        labels = self._labels(owner)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.identifier,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {**self.annotations, OWNER_ANNOTATION: owner, REQUEST_ANNOTATION: str(request_pk)},
            },
            "spec": {
                "replicas": int(self.replicas),
                "selector": {"matchLabels": {NAME_LABEL: self.identifier}},
                "template": {
                    "metadata": {"labels": labels, **self._template_annotations()},
                    "spec": {**self._pod_security(), "containers": [self._container()]},
                },
            },
        }

    def apply_to_live(self, live: dict, *, owner: str, request_pk: int) -> dict:
        """The live object with this config laid over it (status dropped), for a PUT."""
        desired = self.to_manifest(owner=owner, request_pk=request_pk)
        labels, annotations = desired["metadata"]["labels"], desired["metadata"]["annotations"]
        body = dict(live)
        body.pop("status", None)
        meta = dict(live.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        body["metadata"] = meta
        spec = dict(live.get("spec") or {})
        spec["replicas"] = desired["spec"]["replicas"]
        template = dict(spec.get("template") or {})
        template_meta = dict(template.get("metadata") or {})
        template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}
        if self.restarted_at:
            template_meta["annotations"] = {**(template_meta.get("annotations") or {}),
                                            RESTARTED_AT_ANNOTATION: self.restarted_at}
        template["metadata"] = template_meta
        pod_spec = dict(template.get("spec") or {})
        pod_spec.update(self._pod_security())
        pod_spec["containers"] = desired["spec"]["template"]["spec"]["containers"]
        template["spec"] = pod_spec
        spec["template"] = template
        body["spec"] = spec
        return body

    # --- from Kubernetes ------------------------------------------------------------------------

    @classmethod
    def from_live(cls, live: dict) -> "DeploymentConfig":
        """The config a live Deployment carries: its first container, its replicas, and the
        labels and annotations that are not the manager's or Kubernetes tooling's."""
        meta, spec = live.get("metadata") or {}, live.get("spec") or {}
        main = (((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}])[0]
        return cls(
            identifier=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            image=main.get("image", ""),
            replicas=spec.get("replicas", 1),
            labels={k: v for k, v in (meta.get("labels") or {}).items() if k not in MANAGER_LABELS},
            annotations={
                k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(MANAGER_ANNOTATION_PREFIXES)
            },
            env=tuple(EnvVar(name=e.get("name", ""), value=e.get("value", "")) for e in main.get("env") or []),
            ports=tuple(
                Port(container_port=p.get("containerPort"), name=p.get("name") or "", protocol=p.get("protocol") or "TCP")
                for p in main.get("ports") or []
            ),
            resources={section: dict(values) for section, values in (main.get("resources") or {}).items() if values},
            command=tuple(main.get("command") or ()),
            args=tuple(main.get("args") or ()),
            restarted_at=(((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}).get(
                RESTARTED_AT_ANNOTATION, ""),
        )

    def drift(self, live: "DeploymentConfig") -> dict:
        """{field: {"desired": ..., "live": ...}} for each managed field where `live` differs."""
        mine, theirs = self.to_dict(), live.to_dict()
        mine["resources"] = self.effective_resources()  # what was written: defaults are not drift
        return {
            name: {"desired": mine[name], "live": theirs[name]}
            for name in MANAGED_FIELDS
            if (mine["resources"] if name == "resources" else getattr(self, name)) != getattr(live, name)
        }


CONFIG_FIELDS = tuple(f.name for f in fields(DeploymentConfig))


def config_diff(previous: dict | None, current: dict) -> dict:
    """{field: {"from": ..., "to": ...}} for each config field that differs between two stored
    configs (drift's shape, every field compared, restarted_at included); `previous` None (a first
    revision) compares against nothing, so every field is listed with "from": None."""
    before = DeploymentConfig.from_input(previous).to_dict() if previous else {}
    after = DeploymentConfig.from_input(current).to_dict()
    names = [name for name in CONFIG_FIELDS if name in before or name in after]
    return {
        name: {"from": before.get(name), "to": after.get(name)}
        for name in names
        if before.get(name) != after.get(name)
    }
