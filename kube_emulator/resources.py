"""Per-resource knowledge: the REST shape (paths, verbs, subresources, field selectors),
defaulting, validation, metadata rules and kubectl table columns.

The verb handlers are generic; everything that differs between resources is data or a
method here, so adding a resource means adding a class, not ``if`` branches elsewhere.
"""
from __future__ import annotations

import re
import sys
from typing import Any, Optional

from . import quantity
from .clock import age as human_age

from .errors import ApiError, bad_request, cause, invalid, invalid_value, required
from .selectors import FIELD_GETTERS, label_selector_string, selector_from_label_selector

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                            r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class Resource:
    """Static description of one REST resource, plus the hooks where it differs."""
    name: str          # plural, e.g. "deployments"
    singular: str
    kind: str
    group: str
    version: str
    namespaced: bool
    short_names: list[str]
    collection_verbs: tuple = ("list", "watch", "create")   # + "deletecollection"
    subresources: tuple = ()        # e.g. ("status", "scale")
    sub_aliases: dict = {}          # another name served as a subresource ("finalize" -> "status")
    has_generation = False          # metadata.generation starts at 1, bumped by generation_changed
    field_getters: dict = FIELD_GETTERS
    protected: tuple = ()           # names that may never be deleted (403)
    kept_on_update: tuple = ()      # top-level fields an update that omits them keeps
    deletes_contents = False        # a namespace: deleting it deletes every object in it
    has_status = True               # Events have no .status
    returns_deleted_object = False  # DELETE answers the object (pods) rather than a Status
    keep_parsed = True              # False: the store keeps only JSON of current versions
    extra_fields: tuple = ()        # field selectors beyond metadata.name/namespace

    def selectable_fields(self, obj: dict) -> Optional[tuple]:
        """Values of ``extra_fields`` (in that order) for the store's field-selector index."""
        return None

    def admit(self, store, obj: dict, ns: str) -> None:
        """Admission on create (e.g. quota); raise an ApiError to refuse."""

    def subresource(self, sub: str):
        """The subresource ``sub`` names, or None when it has none such."""
        sub = self.sub_aliases.get(sub, sub)
        return sub if sub in self.subresources else None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def default(self, obj: dict) -> None:  # pragma: no cover - overridden
        pass

    def validate(self, obj: dict, old: dict | None) -> list[dict]:  # pragma: no cover
        return []

    def check_types(self, obj: dict) -> None:
        """Raise the Go decoder's 400 for fields of the wrong JSON type."""

    def generation_changed(self, old: dict, new: dict) -> bool:
        return False

    def invalid(self, name: str, causes: list[dict]) -> ApiError:
        return invalid(self.kind, self.group, name, causes)

    def table_columns(self) -> list[dict]:  # pragma: no cover - overridden
        return [_column("Name", "Name", "name"), _column("Age", "Age")]

    def table_cells(self, obj: dict, age: str) -> list:  # pragma: no cover - overridden
        return [obj["metadata"]["name"], age]


def _column(name: str, description: str, fmt: str = "", priority: int = 0) -> dict:
    return {"name": name, "type": "string", "format": fmt, "description": description,
            "priority": priority}


def _validate_meta(obj: dict, name_re, name_msg: str, max_len: int) -> list[dict]:
    causes = []
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        causes.append(required("metadata.name"))
    else:
        if not isinstance(name, str) or not name_re.match(name):
            causes.append(invalid_value("metadata.name", name, name_msg))
        elif len(name) > max_len:
            causes.append(invalid_value("metadata.name", name,
                                        f"must be no more than {max_len} characters"))
    for field in ("labels", "annotations"):
        val = meta.get(field)
        if val is None:
            continue
        if not isinstance(val, dict):
            causes.append(invalid_value(f"metadata.{field}", val, "must be a map of strings"))
            continue
        for k, v in val.items():
            if not QUALIFIED_NAME.match(k) or len(k.split("/")[-1]) > 63:
                causes.append(invalid_value(f"metadata.{field}", k,
                                            "name part must consist of alphanumeric characters, "
                                            "'-', '_' or '.', and must start and end with an "
                                            "alphanumeric character"))
            if not isinstance(v, str):
                causes.append(invalid_value(f"metadata.{field}", v, "must be a string"))
            elif field == "labels" and (len(v) > 63 or not LABEL_VALUE.match(v)):
                causes.append(invalid_value(f"metadata.labels", v,
                                            "a valid label must be an empty string or consist of "
                                            "alphanumeric characters, '-', '_' or '.', and must "
                                            "start and end with an alphanumeric character"))
    return causes


class NamespaceResource(Resource):
    name = "namespaces"
    singular = "namespace"
    kind = "Namespace"
    group = ""
    version = "v1"
    namespaced = False
    short_names = ["ns"]
    subresources = ("status",)
    sub_aliases = {"finalize": "status"}
    field_getters = dict(FIELD_GETTERS, **{"status.phase": lambda o: o.phase})
    protected = ("default", "kube-system", "kube-public")
    kept_on_update = ("spec",)
    deletes_contents = True

    def default(self, obj: dict) -> None:
        meta = obj.setdefault("metadata", {})
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = {}
            meta["labels"] = labels
        if meta.get("name"):
            labels["kubernetes.io/metadata.name"] = meta["name"]
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        spec.setdefault("finalizers", ["kubernetes"])
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        status.setdefault("phase", "Active")

    def validate(self, obj: dict, old: dict | None) -> list[dict]:
        return _validate_meta(obj, DNS1123_LABEL, LABEL_MSG, 63)

    def table_columns(self):
        return [
            {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
            {"name": "Status", "type": "string", "format": "", "description": "Phase", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0},
        ]

    def table_cells(self, obj: dict, age: str):
        return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", ""), age]


def _image_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def validate_containers(containers: Any, path: str) -> list[dict]:
    causes: list[dict] = []
    if not containers:
        return [required(path)]
    if not isinstance(containers, list):
        return [invalid_value(path, containers, "must be a list")]
    seen = set()
    for i, c in enumerate(containers):
        base = f"{path}[{i}]"
        if not isinstance(c, dict):
            causes.append(invalid_value(base, c, "must be an object"))
            continue
        n = c.get("name")
        if not n:
            causes.append(required(base + ".name"))
        elif not isinstance(n, str) or not DNS1123_LABEL.match(n) or len(n) > 63:
            causes.append(invalid_value(base + ".name", n, LABEL_MSG))
        elif n in seen:
            causes.append(cause(base + ".name", "FieldValueDuplicate", f'Duplicate value: "{n}"'))
        else:
            seen.add(n)
        if not c.get("image") or not isinstance(c.get("image"), str) or not c["image"].strip():
            causes.append(required(base + ".image"))
        for j, p in enumerate(c.get("ports") or []):
            cp = p.get("containerPort") if isinstance(p, dict) else None
            if not isinstance(cp, int) or not 1 <= cp <= 65535:
                causes.append(invalid_value(f"{base}.ports[{j}].containerPort", cp,
                                            "must be between 1 and 65535, inclusive"))
    return causes


def default_pod_spec(tspec: dict) -> None:
    """The apiserver's defaults for a PodSpec (in a template or a Pod)."""
    tspec.setdefault("restartPolicy", "Always")
    tspec.setdefault("terminationGracePeriodSeconds", 30)
    tspec.setdefault("dnsPolicy", "ClusterFirst")
    tspec.setdefault("securityContext", {})
    tspec.setdefault("schedulerName", "default-scheduler")
    for field in ("containers", "initContainers"):
        for c in tspec.get(field) or []:
            if not isinstance(c, dict):
                continue
            if isinstance(c.get("image"), str) and c.get("image"):
                c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")


class DeploymentResource(Resource):
    name = "deployments"
    singular = "deployment"
    kind = "Deployment"
    group = "apps"
    version = "v1"
    namespaced = True
    short_names = ["deploy"]
    collection_verbs = ("list", "watch", "create", "deletecollection")
    subresources = ("status", "scale")
    has_generation = True

    def generation_changed(self, old: dict, new: dict) -> bool:
        # like the apiserver's deployment strategy: spec and annotations bump it
        return new.get("spec") != old.get("spec") or \
            (new["metadata"].get("annotations") or {}) != (old["metadata"].get("annotations") or {})

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("replicas", 1)
        strategy = spec.get("strategy")
        if not isinstance(strategy, dict):
            strategy = spec["strategy"] = {}
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.get("rollingUpdate")
            if not isinstance(ru, dict):
                ru = strategy["rollingUpdate"] = {}
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        tmpl = spec.get("template")
        if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
            default_pod_spec(tmpl["spec"])

    def check_types(self, obj: dict) -> None:
        """Mimic JSON decoding errors of the Go apiserver for the fields clients get wrong."""
        spec = obj.get("spec")
        if spec is None:
            return
        if not isinstance(spec, dict):
            raise bad_request(f"Deployment in version \"v1\" cannot be handled as a Deployment: "
                              f"json: cannot unmarshal {type(spec).__name__} into Go struct field "
                              f"Deployment.spec of type v1.DeploymentSpec")
        r = spec.get("replicas")
        if r is not None and (isinstance(r, bool) or not isinstance(r, int)):
            if isinstance(r, float) and r.is_integer():
                spec["replicas"] = int(r)
            else:
                raise bad_request(
                    "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot "
                    f"unmarshal {'string' if isinstance(r, str) else 'number'} into Go struct field "
                    "DeploymentSpec.spec.replicas of type int32")

    def validate(self, obj: dict, old: dict | None) -> list[dict]:
        causes = _validate_meta(obj, DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, 253)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        replicas = spec.get("replicas", 1)
        if isinstance(replicas, int) and replicas < 0:
            causes.append(invalid_value("spec.replicas", replicas,
                                        "must be greater than or equal to 0"))
        selector = spec.get("selector")
        tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
        tlabels = ((tmpl.get("metadata") or {}).get("labels")) or {}
        if not isinstance(selector, dict):
            causes.append(required("spec.selector"))
        elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(invalid_value("spec.selector", selector,
                                        "empty selector is invalid for deployment"))
        else:
            if not selector_from_label_selector(selector)(tlabels if isinstance(tlabels, dict) else {}):
                causes.append(invalid_value("spec.template.metadata.labels", tlabels,
                                            "`selector` does not match template `labels`"))
        tspec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else None
        if not tmpl:
            causes.append(required("spec.template"))
        causes.extend(validate_containers((tspec or {}).get("containers"),
                                          "spec.template.spec.containers"))
        strategy = spec.get("strategy") or {}
        if isinstance(strategy, dict) and strategy.get("type") not in (None, "RollingUpdate", "Recreate"):
            causes.append(cause("spec.strategy.type", "FieldValueNotSupported",
                                f'Unsupported value: "{strategy.get("type")}": supported values: '
                                f'"Recreate", "RollingUpdate"'))
        if old is not None:
            old_sel = (old.get("spec") or {}).get("selector")
            if isinstance(selector, dict) and old_sel != selector:
                causes.append(invalid_value("spec.selector", selector, "field is immutable"))
        return causes

    def table_columns(self):
        return [
            {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
            {"name": "Ready", "type": "string", "format": "", "description": "Number of the pod with ready state", "priority": 0},
            {"name": "Up-to-date", "type": "string", "format": "", "description": "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", "priority": 0},
            {"name": "Available", "type": "string", "format": "", "description": "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0},
            {"name": "Containers", "type": "string", "format": "", "description": "Names of each container in the template.", "priority": 1},
            {"name": "Images", "type": "string", "format": "", "description": "Images referenced by each container in the template.", "priority": 1},
            {"name": "Selector", "type": "string", "format": "", "description": "Label selector for pods.", "priority": 1},
        ]

    def table_cells(self, obj: dict, age: str):
        spec = obj.get("spec") or {}
        st = obj.get("status") or {}
        cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        return [
            obj["metadata"]["name"],
            f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            int(st.get("updatedReplicas", 0)),
            int(st.get("availableReplicas", 0)),
            age,
            ",".join(c.get("name", "") for c in cs),
            ",".join(c.get("image", "") for c in cs),
            label_selector_string(spec.get("selector") or {}),
        ]


def _fields_getters(names: tuple) -> dict:
    return dict(FIELD_GETTERS, **{n: (lambda o, i=i: o.fields[i] if o.fields else "")
                                  for i, n in enumerate(names)})


def _interned(*values) -> tuple:
    """Field values as one tuple of interned strings: the events of one object, or the
    pods of one node, share them instead of each holding copies."""
    return tuple(sys.intern(v) if isinstance(v, str) else sys.intern(str(v or ""))
                 for v in values)


class ReplicaSetResource(DeploymentResource):
    name = "replicasets"
    singular = "replicaset"
    kind = "ReplicaSet"
    short_names = ["rs"]
    keep_parsed = False

    def generation_changed(self, old: dict, new: dict) -> bool:
        return new.get("spec") != old.get("spec")

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("replicas", 1)
        tmpl = spec.get("template")
        if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
            default_pod_spec(tmpl["spec"])

    def table_columns(self):
        return [
            _column("Name", "Name", "name"),
            dict(_column("Desired", "Number of desired pods"), type="integer"),
            dict(_column("Current", "Number of actually running pods"), type="integer"),
            dict(_column("Ready", "Number of pods ready"), type="integer"),
            _column("Age", "Age"),
            _column("Containers", "Names of each container in the template.", priority=1),
            _column("Images", "Images referenced by each container in the template.", priority=1),
            _column("Selector", "Label selector for pods.", priority=1),
        ]

    def table_cells(self, obj: dict, age: str):
        spec = obj.get("spec") or {}
        st = obj.get("status") or {}
        cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        return [obj["metadata"]["name"], int(spec.get("replicas", 1)), int(st.get("replicas", 0)),
                int(st.get("readyReplicas", 0)), age, ",".join(c.get("name", "") for c in cs),
                ",".join(c.get("image", "") for c in cs),
                label_selector_string(spec.get("selector") or {})]


class PodResource(Resource):
    name = "pods"
    singular = "pod"
    kind = "Pod"
    group = ""
    version = "v1"
    namespaced = True
    short_names = ["po"]
    collection_verbs = ("list", "watch", "create", "deletecollection")
    subresources = ("status", "log")
    returns_deleted_object = True
    keep_parsed = False
    extra_fields = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                    "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName")
    field_getters = dict(_fields_getters(extra_fields), **{"status.phase": lambda o: o.phase})

    def selectable_fields(self, obj: dict) -> Optional[tuple]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return _interned(spec.get("nodeName"), spec.get("restartPolicy"),
                         spec.get("schedulerName"), spec.get("serviceAccountName"),
                         status.get("podIP"), status.get("nominatedNodeName"))

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            default_pod_spec(spec)
        status = obj.get("status")
        if not isinstance(status, dict) or not status:
            obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec or {})}

    def validate(self, obj: dict, old: dict | None) -> list[dict]:
        causes = _validate_meta(obj, DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, 253)
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        causes.extend(validate_containers(spec.get("containers"), "spec.containers"))
        return causes

    def admit(self, store, obj: dict, ns: str) -> None:
        from .quota import admit_pod
        admit_pod(store, ns, obj)

    def table_columns(self):
        return [
            _column("Name", "Name", "name"),
            _column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            _column("Status", "The aggregate status of the containers in this pod."),
            _column("Restarts", "The number of times the containers in this pod have been "
                    "restarted and when the last container in this pod has restarted."),
            _column("Age", "Age"),
            _column("IP", "The IP address assigned to the pod", priority=1),
            _column("Node", "The name of the node assigned to the pod", priority=1),
            _column("Nominated Node", "The name of the node nominated by the scheduler",
                    priority=1),
            _column("Readiness Gates", "The readiness gates of the pod", priority=1),
        ]

    def table_cells(self, obj: dict, age: str):
        spec = obj.get("spec") or {}
        st = obj.get("status") or {}
        statuses = st.get("containerStatuses") or []
        reason = st.get("reason") or st.get("phase") or "Pending"
        restarts, ready, last_restart, running = 0, 0, None, False
        for cs in reversed(statuses):
            restarts += int(cs.get("restartCount", 0))
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if last and (last_restart is None or last > last_restart):
                last_restart = last
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif (state.get("terminated") or {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif state.get("terminated") is not None:
                reason = f"ExitCode:{state['terminated'].get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running"
        if obj["metadata"].get("deletionTimestamp"):
            reason = "Terminating"
        restart_cell = str(restarts) if last_restart is None else \
            f"{restarts} ({human_age(last_restart)} ago)"
        return [obj["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", reason,
                restart_cell, age, st.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
                st.get("nominatedNodeName") or "<none>", "<none>"]


def _container_requests(c: Any) -> dict:
    res = (c.get("resources") or {}) if isinstance(c, dict) else {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    out = {}
    for name in ("cpu", "memory"):
        # a missing request defaults to the limit, as the apiserver's defaulting does
        v = quantity.parse(req[name]) if name in req else quantity.parse(lim.get(name))
        if v is not None:
            out[name] = v
    return out


def pod_requests(spec: dict) -> dict[str, Any]:
    """The pod's effective requests {"cpu": Fraction, "memory": Fraction}: its containers
    summed, or the largest init container when that is more (as the scheduler counts)."""
    total: dict = {}
    for c in spec.get("containers") or []:
        for name, v in _container_requests(c).items():
            total[name] = total.get(name, 0) + v
    for c in spec.get("initContainers") or []:
        for name, v in _container_requests(c).items():
            total[name] = max(total.get(name, 0), v)
    return total


def pod_limits(spec: dict) -> dict[str, Any]:
    out: dict = {}
    for c in spec.get("containers") or []:
        lim = ((c.get("resources") or {}).get("limits") or {}) if isinstance(c, dict) else {}
        for name in ("cpu", "memory"):
            v = quantity.parse(lim.get(name))
            if v is not None:
                out[name] = out.get(name, 0) + v
    return out


def qos_class(spec: dict) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    any_set, guaranteed = False, bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in lim or (name in req and quantity.parse(req[name]) !=
                                   quantity.parse(lim[name])):
                guaranteed = False
    if guaranteed and any_set:
        return "Guaranteed"
    return "Burstable" if any_set else "BestEffort"


class EventResource(Resource):
    name = "events"
    singular = "event"
    kind = "Event"
    group = ""
    version = "v1"
    namespaced = True
    short_names = ["ev"]
    collection_verbs = ("list", "watch", "create", "deletecollection")
    has_status = False
    keep_parsed = False
    extra_fields = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion",
                    "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                    "reportingComponent", "source", "type")
    field_getters = _fields_getters(extra_fields)

    def selectable_fields(self, obj: dict) -> Optional[tuple]:
        inv = obj.get("involvedObject")
        inv = inv if isinstance(inv, dict) else {}
        source = obj.get("source") if isinstance(obj.get("source"), dict) else {}
        return _interned(*(inv.get(k) for k in ("kind", "namespace", "name", "uid", "apiVersion",
                                                 "resourceVersion", "fieldPath")),
                         obj.get("reason"), obj.get("reportingComponent"),
                         source.get("component"), obj.get("type"))

    def default(self, obj: dict) -> None:
        obj.setdefault("type", "Normal")
        obj.setdefault("count", 1)

    def validate(self, obj: dict, old: dict | None) -> list[dict]:
        causes = _validate_meta(obj, DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, 253)
        involved = obj.get("involvedObject")
        if not isinstance(involved, dict) or not involved:
            causes.append(required("involvedObject"))
        elif involved.get("namespace") not in (None, "", obj["metadata"].get("namespace")):
            causes.append(invalid_value("involvedObject.namespace", involved.get("namespace"),
                                        "does not match event.namespace"))
        if obj.get("type") not in ("Normal", "Warning"):
            causes.append(cause("type", "FieldValueNotSupported",
                                f'Unsupported value: "{obj.get("type")}": supported values: '
                                f'"Normal", "Warning"'))
        return causes

    def table_columns(self):
        return [
            _column("Last Seen", "Time when last event from this object was seen"),
            _column("Type", "Type of this event"),
            _column("Reason", "Reason of this event"),
            _column("Object", "Involved object of this event"),
            _column("Subobject", "Sub-object of this event", priority=1),
            _column("Source", "Source of this event", priority=1),
            _column("Message", "Message of this event"),
            _column("First Seen", "Time when first event from this object was seen", priority=1),
            dict(_column("Count", "Count of this event", priority=1), type="integer"),
            _column("Name", "Name of this event", "name", priority=1),
        ]

    def table_cells(self, obj: dict, age: str):
        inv = obj.get("involvedObject") or {}
        first = human_age(obj.get("firstTimestamp")) if obj.get("firstTimestamp") else age
        last = human_age(obj.get("lastTimestamp")) if obj.get("lastTimestamp") else first
        target = f"{str(inv.get('kind', '')).lower()}/{inv['name']}" if inv.get("name") else \
            str(inv.get("kind", "")).lower()
        source = (obj.get("source") or {}).get("component") or obj.get("reportingComponent") or ""
        host = (obj.get("source") or {}).get("host")
        if host:
            source = f"{source}, {host}"
        return [last, obj.get("type", ""), obj.get("reason", ""), target,
                inv.get("fieldPath", ""), source, str(obj.get("message", "")).strip(), first,
                int(obj.get("count") or 1), obj["metadata"]["name"]]


QUOTA_RESOURCES = ("pods", "count/pods", "cpu", "requests.cpu", "limits.cpu", "memory",
                   "requests.memory", "limits.memory")


class ResourceQuotaResource(Resource):
    name = "resourcequotas"
    singular = "resourcequota"
    kind = "ResourceQuota"
    group = ""
    version = "v1"
    namespaced = True
    short_names = ["quota"]
    collection_verbs = ("list", "watch", "create", "deletecollection")
    subresources = ("status",)

    def validate(self, obj: dict, old: dict | None) -> list[dict]:
        causes = _validate_meta(obj, DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, 253)
        hard = (obj.get("spec") or {}).get("hard") or {}
        if not isinstance(hard, dict):
            return causes + [invalid_value("spec.hard", hard, "must be a map of quantities")]
        for k, v in hard.items():
            if quantity.parse(v) is None:
                causes.append(invalid_value(f"spec.hard[{k}]", v, "must be a valid quantity"))
        return causes

    def table_columns(self):
        return [_column("Name", "Name", "name"), _column("Age", "Age"),
                _column("Request", "Request represents a minimum amount of cpu/memory that a "
                        "container may consume."),
                _column("Limit", "Limits control the maximum amount of cpu/memory that a "
                        "container may use independent of contention on the node.")]

    def table_cells(self, obj: dict, age: str):
        st = obj.get("status") or {}
        hard, used = st.get("hard") or {}, st.get("used") or {}
        req = [f"{k}: {used.get(k, '0')}/{v}" for k, v in sorted(hard.items())
               if not k.startswith("limits.")]
        lim = [f"{k}: {used.get(k, '0')}/{v}" for k, v in sorted(hard.items())
               if k.startswith("limits.")]
        return [obj["metadata"]["name"], age, ", ".join(req), ", ".join(lim)]


DEPLOYMENTS = DeploymentResource()
NAMESPACES = NamespaceResource()
REPLICASETS = ReplicaSetResource()
PODS = PodResource()
EVENTS = EventResource()
RESOURCEQUOTAS = ResourceQuotaResource()
RESOURCES: tuple[Resource, ...] = (NAMESPACES, PODS, EVENTS, RESOURCEQUOTAS, DEPLOYMENTS,
                                   REPLICASETS)
BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.name): r for r in RESOURCES}
