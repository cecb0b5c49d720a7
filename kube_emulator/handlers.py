"""The REST verbs: get, list, create, update, patch, delete, deletecollection, and the
subresources. Plain functions over a ``Store``: they know nothing of HTTP (decoded bodies
and query parameters in, JSON bytes or a dict out, ``ApiError`` for a Status answer), so
the order of checks and the wording of errors can be read in one place.

Each function runs synchronously on the event loop: a verb is atomic with respect to
every other request and to the watch fan-out.
"""
from __future__ import annotations

import base64
import binascii
import contextvars
import json
import uuid
from typing import Any, Optional

from . import errors, tables
from .clock import now_rfc3339
from .codec import JSON_PATCH, MERGE_PATCH
from .patch import PatchConflict, PatchError, json_patch, merge_patch, strategic_merge_patch
from .resources import NAMESPACES, RESOURCES, Resource
from .schema import prune_unknown
from .selectors import (field_selector_name, label_selector_string, parse_field_selector,
                        parse_label_selector)
from .store import Store, Stored, dumps

CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list.")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Warning headers of the request being handled (set per request by the app)
warnings_var: contextvars.ContextVar = contextvars.ContextVar("kube_emulator_warnings",
                                                              default=None)
Result = Any  # JSON bytes of a stored version, or a dict to be serialised


# ---------------------------------------------------------------------------- helpers
def require(store: Store, res: Resource, ns: str, name: str) -> Stored:
    st = store.get(res.name, ns, name)
    if st is None:
        raise errors.not_found(res.name, res.group, name)
    return st


def matchers(res: Resource, q):
    label = parse_label_selector(q.get("labelSelector"))
    field = parse_field_selector(q.get("fieldSelector"), res.field_getters)
    return label, field


def _check_kind(res: Resource, body: Any, kind: Optional[str] = None) -> dict:
    kind = kind or res.kind
    if not isinstance(body, dict):
        raise errors.bad_request(f"{kind} in version \"{res.version}\" cannot be handled as a "
                                 f"{kind}: json: cannot unmarshal {type(body).__name__} into "
                                 f"Go value of type {kind}")
    api_version = res.api_version if kind == res.kind else "autoscaling/v1"
    if body.get("kind") not in (None, "", kind):
        raise errors.bad_request(f"the kind in the data ({body.get('kind')}) does not match the "
                                 f"expected kind ({kind})")
    if body.get("apiVersion") not in (None, "", api_version):
        raise errors.bad_request(f"the API version in the data ({body.get('apiVersion')}) does "
                                 f"not match the expected API version ({api_version})")
    meta = body.get("metadata")
    if meta is None:
        body["metadata"] = {}
    elif not isinstance(meta, dict):
        raise errors.bad_request(f"{kind} in version \"{res.version}\" cannot be handled as a "
                                 f"{kind}: json: cannot unmarshal into Go struct field "
                                 f"{kind}.metadata of type v1.ObjectMeta")
    return body


def _field_validation(kind: str, obj: Any, q) -> None:
    """Drop unknown fields; Strict: 400; otherwise a Warning header per field."""
    mode = q.get("fieldValidation") or "Warn"
    if mode not in ("Ignore", "Warn", "Strict"):
        raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn" or '
                                 f'"Strict", got "{mode}"')
    unknown = prune_unknown(kind, obj)
    if not unknown:
        return
    if mode == "Strict":
        detail = ", ".join(f'unknown field "{u}"' for u in unknown)
        raise errors.bad_request(f'{kind} in version "v1" cannot be handled as a '
                                 f'{kind}: strict decoding error: {detail}')
    if mode == "Warn":
        ws = warnings_var.get()
        if ws is not None:
            for u in unknown:
                ws.append('299 - "unknown field \\"' + u + '\\""')


def _dry_run(q) -> bool:
    dr = q.getall("dryRun", []) if hasattr(q, "getall") else [q.get("dryRun")]
    for v in dr:
        if v and v != "All":
            raise errors.bad_request(f'Invalid dry run value: "{v}" (supported: "All")')
    return any(v == "All" for v in dr)


def _ordered(res: Resource, obj: dict) -> dict:
    """Key order like the apiserver's JSON: kind, apiVersion, metadata, spec, status."""
    out = {"kind": res.kind, "apiVersion": res.api_version}
    for k in ("metadata", "spec", "status"):
        if k in obj:
            out[k] = obj[k]
    for k, v in obj.items():
        if k not in out:
            out[k] = v
    return out


def _system_metadata(res: Resource, obj: dict, ns: str) -> None:
    meta = obj["metadata"]
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
              "managedFields"):
        meta.pop(k, None)
    if res.namespaced:
        meta["namespace"] = ns
    else:
        meta.pop("namespace", None)
    if res.has_generation:
        meta["generation"] = 1
        obj["status"] = {}
    obj["kind"] = res.kind
    obj["apiVersion"] = res.api_version


def _uid_precondition(res: Resource, cur: Stored, uid: Any, name: str) -> None:
    if uid and uid != cur.obj["metadata"]["uid"]:
        raise errors.conflict(res.name, res.group, name,
                              f"Precondition failed: UID in precondition: {uid}, UID "
                              f"in object meta: {cur.obj['metadata']['uid']}")


def _rv_precondition(res: Resource, cur: Stored, rv: Any, name: str) -> None:
    if rv in (None, ""):
        return
    if str(rv) != cur.obj["metadata"]["resourceVersion"]:
        raise errors.conflict(res.name, res.group, name)


def seed_namespaces(store: Store) -> None:
    for name in DEFAULT_NAMESPACES:
        if store.get(NAMESPACES.name, "", name) is None:
            obj = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}}
            NAMESPACES.default(obj)
            _system_metadata(NAMESPACES, obj, "")
            store.put(NAMESPACES.name, obj, "ADDED")


# ---------------------------------------------------------------------------- get / list
def get(store: Store, res: Resource, ns: str, name: str, sub: Optional[str],
        table: bool) -> Result:
    st = require(store, res, ns, name)
    if sub == "scale":
        return scale_of(st.obj)
    if table and sub is None:
        return tables.table(res, [st.obj], str(store.rv))
    return st.raw


def list_objects(store: Store, res: Resource, ns: Optional[str], q, table: bool) -> Result:
    label, field = matchers(res, q)
    try:
        limit = int(q.get("limit") or 0)
    except ValueError:
        raise errors.bad_request(f"invalid limit: {q.get('limit')}")
    cont = q.get("continue")
    rv_s = q.get("resourceVersion")
    rvm = q.get("resourceVersionMatch")
    if rvm and rvm not in ("Exact", "NotOlderThan"):
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.cause(
            "resourceVersionMatch", "FieldValueNotSupported",
            f'Unsupported value: "{rvm}": supported values: "Exact", "NotOlderThan"')])
    if rvm and not rv_s:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.cause(
            "resourceVersionMatch", "FieldValueForbidden",
            "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")])
    start_after = None
    snapshot = None
    list_rv = store.rv
    if cont:
        try:
            tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
            tok_rv, start_after = int(tok["rv"]), tuple(tok["start"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise errors.bad_request("continue key is not valid: incorrect encoded start "
                                     "resourceVersion (version meta.k8s.io/v1)")
        if tok_rv < store.oldest_replayable_rv():
            raise errors.expired(CONTINUE_EXPIRED)
        list_rv = tok_rv
    elif rvm == "Exact":
        try:
            rv = int(rv_s)
        except ValueError:
            raise errors.bad_request(f"invalid resource version: {rv_s}")
        if rv > store.rv:
            raise errors.ApiError(504, "Timeout", f"Too large resource version: {rv}, "
                                  f"current: {store.rv}",
                                  {"causes": [{"reason": "ResourceVersionTooLarge",
                                               "message": "Too large resource version"}],
                                   "retryAfterSeconds": 1})
        if rv < store.oldest_replayable_rv():
            raise errors.expired("The resourceVersion for the provided list is too old.")
        list_rv = rv
    if list_rv != store.rv:
        state = store.state_at(res.name, ns, list_rv)
        snapshot = (state[k] for k in sorted(state))
    name_pin = field_selector_name(q.get("fieldSelector"))
    if snapshot is not None:
        source = snapshot
    elif name_pin is not None and (ns is not None or not res.namespaced):
        st = store.get(res.name, ns or "", name_pin)
        source = [st] if st else []
    else:
        source = store.iter_objects(res.name, ns)
    items: list[Stored] = []
    next_key = None
    remaining = 0
    for st in source:
        key = (st.namespace, st.name)
        if start_after is not None and key <= start_after:
            continue
        if label is not None and not label(st.labels):
            continue
        if field is not None and not field(st):
            continue
        if limit and len(items) >= limit:
            if next_key is None:
                last = items[-1]
                next_key = (last.namespace, last.name)
            remaining += 1
            continue
        items.append(st)
    meta: dict = {"resourceVersion": str(list_rv)}
    if next_key is not None:
        meta["continue"] = base64.urlsafe_b64encode(dumps(
            {"rv": list_rv, "start": list(next_key)})).decode()
        if label is None and field is None:
            meta["remainingItemCount"] = remaining
    if table:
        t = tables.table(res, [st.obj for st in items], str(list_rv))
        t["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
        return t
    head = dumps({"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta})
    return head[:-1] + b',"items":[' + b",".join(st.raw for st in items) + b"]}"


# ---------------------------------------------------------------------------- create
def create(store: Store, res: Resource, ns: str, body: Any, q) -> Result:
    body = _check_kind(res, body)
    _field_validation(res.kind, body, q)
    meta = body["metadata"]
    if res.namespaced:
        bns = meta.get("namespace")
        if bns and bns != ns:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = str(meta["generateName"]) + uuid.uuid4().hex[:5]
    res.check_types(body)
    res.default(body)
    causes = res.validate(body, None)
    if causes:
        raise res.invalid(meta.get("name") or "", causes)
    name = meta["name"]
    if res.namespaced and store.get(NAMESPACES.name, "", ns) is None:
        raise errors.not_found(NAMESPACES.name, "", ns)
    res.admit(store, body, ns)
    if store.get(res.name, ns if res.namespaced else "", name) is not None:
        raise errors.already_exists(res.name, res.group, name)
    _system_metadata(res, body, ns)
    obj = _ordered(res, body)
    if _dry_run(q):
        return obj
    return store.put(res.name, obj, "ADDED").raw


# ---------------------------------------------------------------------------- update
def update(store: Store, res: Resource, ns: str, name: str, body: Any, sub: Optional[str],
           q) -> Result:
    cur = require(store, res, ns, name)
    if sub == "scale":
        body = _check_kind(res, body, "Scale")
        _field_validation("Scale", body, q)
        _rv_precondition(res, cur, body["metadata"].get("resourceVersion"), name)
        out = _commit(store, res, cur, _apply_scale(cur, body, name), q, sub)
        return scale_of(json.loads(out) if isinstance(out, bytes) else out)
    body = _check_kind(res, body)
    _field_validation(res.kind, body, q)
    meta = body["metadata"]
    bname = meta.get("name")
    if bname and bname != name:
        raise errors.bad_request(f"the name of the object ({bname}) does not match the name on "
                                 f"the URL ({name})")
    if res.namespaced and meta.get("namespace") and meta.get("namespace") != ns:
        raise errors.bad_request("the namespace of the provided object does not match the "
                                 "namespace sent on the request")
    _uid_precondition(res, cur, meta.get("uid"), name)
    _rv_precondition(res, cur, meta.get("resourceVersion"), name)
    return _commit(store, res, cur, _with_status(res, cur, body, sub), q, sub)


def _with_status(res: Resource, cur: Stored, body: dict, sub: Optional[str]) -> dict:
    """The main resource ignores ``.status``; the status subresource changes only it."""
    if sub == "status":
        new = json.loads(cur.raw)
        new["status"] = body.get("status") if isinstance(body.get("status"), dict) else {}
        return new
    if res.has_status:
        body["status"] = json.loads(cur.raw).get("status", {})
    body["kind"], body["apiVersion"] = res.kind, res.api_version
    return body


def _commit(store: Store, res: Resource, cur: Stored, new: dict, q, sub: Optional[str]) -> Result:
    """Shared tail of PUT and PATCH: keep system metadata, default, validate, bump
    generation, skip no-ops, store. Returns raw bytes or a dict (dry run)."""
    old = cur.obj
    ometa = old["metadata"]
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        meta = new["metadata"] = {}
    for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
        if k in ometa:
            meta[k] = ometa[k]
        else:
            meta.pop(k, None)
    meta["name"] = ometa["name"]
    if res.namespaced:
        meta["namespace"] = ometa["namespace"]
    meta["resourceVersion"] = ometa["resourceVersion"]
    meta.pop("managedFields", None)
    if isinstance(new.get("spec"), dict):
        res.check_types(new)
    res.default(new)
    for k in res.kept_on_update:
        new.setdefault(k, old.get(k, {}))
    causes = res.validate(new, old)
    if causes:
        raise res.invalid(ometa["name"], causes)
    if res.has_generation and sub != "status" and res.generation_changed(old, new):
        meta["generation"] = ometa.get("generation", 1) + 1
    obj = _ordered(res, new)
    if obj == old:
        return cur.raw
    if _dry_run(q):
        return obj
    return store.put(res.name, obj, "MODIFIED", prev=cur).raw


def write_status(store: Store, res: Resource, ns: str, name: str, status: dict,
                 source: str = "controller") -> None:
    """A status write by a simulated controller: bumps the RV, never the generation."""
    cur = store.get(res.name, ns, name)
    if cur is None:
        return
    obj = dict(cur.obj)
    obj["metadata"] = dict(cur.obj["metadata"])
    obj["status"] = status
    store.put(res.name, obj, "MODIFIED", prev=cur, source=source)


# ---------------------------------------------------------------------------- scale
def scale_of(obj: dict) -> dict:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                     "uid": meta["uid"], "resourceVersion": meta["resourceVersion"],
                     "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": label_selector_string(spec.get("selector") or {})},
    }


def _apply_scale(cur: Stored, scale: dict, name: str) -> dict:
    spec = scale.get("spec") if isinstance(scale.get("spec"), dict) else {}
    replicas = spec.get("replicas", 0)
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise errors.bad_request("Scale in version \"v1\" cannot be handled as a Scale: json: "
                                 "cannot unmarshal into Go struct field ScaleSpec.spec.replicas "
                                 "of type int32")
    if replicas < 0:
        raise errors.invalid("Scale", "autoscaling", name, [errors.invalid_value(
            "spec.replicas", replicas, "must be greater than or equal to 0")])
    new = json.loads(cur.raw)
    new["spec"]["replicas"] = replicas
    return new


# ---------------------------------------------------------------------------- patch
def patch(store: Store, res: Resource, ns: str, name: str, patch_type: str, doc: Any,
          sub: Optional[str], q) -> Result:
    cur = require(store, res, ns, name)
    target = scale_of(cur.obj) if sub == "scale" else json.loads(cur.raw)
    try:
        if patch_type == JSON_PATCH:
            patched = json_patch(target, doc)
        elif patch_type == MERGE_PATCH:
            if not isinstance(doc, dict):
                raise PatchError("json: cannot unmarshal array into Go value of type "
                                 "map[string]interface {}")
            patched = merge_patch(target, doc)
        else:
            patched = strategic_merge_patch(target, doc)
    except PatchError as e:
        raise errors.bad_request(str(e))
    except PatchConflict as e:
        raise errors.unprocessable(str(e), res.group, res.name, name)
    if not isinstance(patched, dict):
        raise errors.bad_request("patch produced a non-object document")
    _field_validation("Scale" if sub == "scale" else res.kind, patched, q)
    pmeta = patched.get("metadata") if isinstance(patched.get("metadata"), dict) else {}
    _rv_precondition(res, cur, pmeta.get("resourceVersion"), name)
    _uid_precondition(res, cur, pmeta.get("uid"), name)
    if pmeta.get("name") not in (None, name):
        raise errors.invalid(res.kind, res.group, name, [errors.invalid_value(
            "metadata.name", pmeta.get("name"), "field is immutable")])
    if sub == "scale":
        out = _commit(store, res, cur, _apply_scale(cur, patched, name), q, sub)
        return scale_of(json.loads(out) if isinstance(out, bytes) else out)
    return _commit(store, res, cur, _with_status(res, cur, patched, sub), q, sub)


# ---------------------------------------------------------------------------- delete
def delete(store: Store, res: Resource, ns: str, name: str, body: Optional[dict], q) -> Result:
    cur = require(store, res, ns, name)
    if body is not None and not isinstance(body, dict):
        raise errors.bad_request("DeleteOptions must be a JSON object")
    opts = body or {}
    pre = opts.get("preconditions") or {}
    meta = cur.obj["metadata"]
    _uid_precondition(res, cur, pre.get("uid"), name)
    if pre.get("resourceVersion") and str(pre["resourceVersion"]) != meta["resourceVersion"]:
        raise errors.conflict(res.name, res.group, name,
                              f"Precondition failed: ResourceVersion in precondition: "
                              f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                              f"{meta['resourceVersion']}")
    if name in res.protected:
        raise errors.forbidden(res.name, res.group, name, f"this {res.singular} may not be "
                                                          f"deleted")
    dry = _dry_run(q) or opts.get("dryRun") == ["All"]
    if res.deletes_contents:
        return _delete_namespace(store, cur, dry)
    if dry:
        return cur.raw
    policy = opts.get("propagationPolicy") or q.get("propagationPolicy")
    if opts.get("orphanDependents") is True:
        policy = "Orphan"
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.invalid("DeleteOptions", "meta.k8s.io", "", [errors.cause(
            "propagationPolicy", "FieldValueNotSupported",
            f'Unsupported value: "{policy}": supported values: "Foreground", "Background", '
            f'"Orphan"')])
    final = store.remove(res.name, ns, name)
    collect_garbage(store, meta["uid"], orphan=policy == "Orphan")
    if res.returns_deleted_object:
        return final.raw
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": res.group, "kind": res.name, "uid": meta["uid"]}}


def _delete_namespace(store: Store, cur: Stored, dry: bool) -> Result:
    """Terminating (MODIFIED), then every object in it (DELETED), then the namespace."""
    name = cur.name
    term = json.loads(cur.raw)
    term["metadata"]["deletionTimestamp"] = now_rfc3339()
    term["status"] = {"phase": "Terminating"}
    if dry:
        return term
    st = store.put(NAMESPACES.name, term, "MODIFIED", prev=cur)
    for res in RESOURCES:
        if res.namespaced:
            for obj_name in sorted((store.by_ns[res.name].get(name) or {}).keys()):
                store.remove(res.name, name, obj_name)
    store.remove(NAMESPACES.name, "", name)
    return st.raw


def collect_garbage(store: Store, uid: str, orphan: bool = False) -> None:
    """What the garbage collector does once an owner is gone: delete its dependants (and
    theirs), or with ``orphan`` drop the ownerReference. Done at once, not in the
    background: the emulator has no finalizers or graceful deletion."""
    for res_name, ns, name in store.dependants_of(uid):
        st = store.get(res_name, ns, name)
        if st is None:
            continue
        if orphan:
            obj = json.loads(st.raw)
            refs = [r for r in obj["metadata"].get("ownerReferences") or []
                    if r.get("uid") != uid]
            if refs:
                obj["metadata"]["ownerReferences"] = refs
            else:
                obj["metadata"].pop("ownerReferences", None)
            store.put(res_name, obj, "MODIFIED", prev=st, source="gc")
        else:
            store.remove(res_name, ns, name, source="gc")
            collect_garbage(store, st.uid)


def delete_collection(store: Store, res: Resource, ns: Optional[str], q) -> Result:
    label, field = matchers(res, q)
    dry = _dry_run(q)
    victims = [st for st in list(store.iter_objects(res.name, ns))
               if (label is None or label(st.labels)) and (field is None or field(st))]
    items = []
    for st in victims:
        if dry:
            items.append(st.obj)
        else:
            items.append(store.remove(res.name, st.namespace, st.name).obj)
            collect_garbage(store, st.uid)
    return {"kind": res.list_kind, "apiVersion": res.api_version,
            "metadata": {"resourceVersion": str(store.rv)}, "items": items}
