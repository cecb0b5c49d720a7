"""PATCH implementations: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and a
strategic merge patch that knows the merge keys of the apps/v1 Deployment schema."""
from __future__ import annotations

import copy
import json
from typing import Any


class PatchError(Exception):
    """Raised for a malformed patch document (answered 400 BadRequest)."""


class PatchConflict(Exception):
    """Raised when a JSON-patch operation cannot be applied (answered 422)."""


# --------------------------------------------------------------------------- merge patch

def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    else:
        target = dict(target)
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target


# --------------------------------------------------------------------------- strategic merge

# field name -> merge key for lists of objects merged by key (patchStrategy=merge).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}
# lists of scalars merged as sets (patchStrategy=merge on a primitive list)
MERGE_PRIMITIVE_LISTS = {"finalizers"}


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    return _smp_map(target if isinstance(target, dict) else {}, patch)


def _smp_map(target: dict, patch: dict) -> dict:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive}")
    result = dict(target)
    retain = patch.get("$retainKeys")
    orders: dict[str, list] = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(v, list):
                result[field] = [x for x in result[field] if x not in v]
            continue
        if v is None:
            result.pop(k, None)
            continue
        cur = result.get(k)
        if isinstance(v, dict):
            result[k] = _smp_map(cur if isinstance(cur, dict) else {}, v)
        elif isinstance(v, list):
            result[k] = _smp_list(k, cur if isinstance(cur, list) else [], v)
        else:
            result[k] = v
    for field, order in orders.items():
        if isinstance(result.get(field), list) and isinstance(order, list):
            result[field] = _apply_order(field, result[field], order)
    if isinstance(retain, list):
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _apply_order(field: str, items: list, order: list) -> list:
    key = MERGE_KEYS.get(field)

    def ident(x):
        if key and isinstance(x, dict):
            return json.dumps(x.get(key), sort_keys=True)
        return json.dumps(x, sort_keys=True)
    wanted = [ident(o) for o in order]
    pos = {w: i for i, w in enumerate(wanted)}
    ordered = sorted((x for x in items if ident(x) in pos), key=lambda x: pos[ident(x)])
    rest = [x for x in items if ident(x) not in pos]
    return ordered + rest


def _smp_list(field: str, target: list, patch: list) -> list:
    # list-level directive: [{"$patch": "replace"}, ...items]
    if any(isinstance(x, dict) and x.get("$patch") == "replace" and len(x) == 1 for x in patch):
        return [copy.deepcopy(x) for x in patch
                if not (isinstance(x, dict) and x.get("$patch") == "replace" and len(x) == 1)]
    key = MERGE_KEYS.get(field)
    if key is None:
        if field in MERGE_PRIMITIVE_LISTS:
            out = list(target)
            for x in patch:
                if x not in out:
                    out.append(x)
            return out
        return [copy.deepcopy(x) for x in patch]
    result = [copy.deepcopy(x) for x in target]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"strategic merge patch: list {field} expects objects")
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        kv = item[key]
        idx = next((i for i, x in enumerate(result)
                    if isinstance(x, dict) and x.get(key) == kv), None)
        d = item.get("$patch")
        if d == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if d == "replace":
            new = {k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"}
            if idx is None:
                result.append(new)
            else:
                result[idx] = new
            continue
        if idx is None:
            result.append(_smp_map({}, item))
        else:
            result[idx] = _smp_map(result[idx], item)
    return result


# --------------------------------------------------------------------------- JSON patch

def _unescape(tok: str) -> str:
    return tok.replace("~1", "/").replace("~0", "~")


def _parse_pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError("path must be a string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer "{path}" must start with "/"')
    return [_unescape(t) for t in path[1:].split("/")]


def _walk(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchConflict(f"doc is missing path: \"{path}\": missing value")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                i = int(t)
            except ValueError:
                raise PatchConflict(f"doc is missing path: \"{path}\": invalid index")
            if i < 0 or i >= len(cur):
                raise PatchConflict(f"doc is missing path: \"{path}\": index out of range")
            cur = cur[i]
        else:
            raise PatchConflict(f"doc is missing path: \"{path}\": missing value")
    return cur


def _get(doc, path):
    return _walk(doc, _parse_pointer(path), path)


def _add(doc, path, value):
    tokens = _parse_pointer(path)
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                i = int(last)
            except ValueError:
                raise PatchConflict(f"add operation does not apply: doc is missing path: \"{path}\"")
            if i < 0 or i > len(parent):
                raise PatchConflict(f"add operation does not apply: doc is missing path: \"{path}\"")
            parent.insert(i, value)
    else:
        raise PatchConflict(f"add operation does not apply: doc is missing path: \"{path}\"")
    return doc


def _remove(doc, path):
    tokens = _parse_pointer(path)
    if not tokens:
        raise PatchConflict("unable to remove the whole document")
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchConflict(f"remove operation does not apply: doc is missing path: \"{path}\"")
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            i = int(last)
        except ValueError:
            raise PatchConflict(f"remove operation does not apply: doc is missing path: \"{path}\"")
        if i < 0 or i >= len(parent):
            raise PatchConflict(f"remove operation does not apply: doc is missing path: \"{path}\"")
        return parent.pop(i)
    raise PatchConflict(f"remove operation does not apply: doc is missing path: \"{path}\"")


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("Unexpected kind: missing op")
        kind = op["op"]
        path = op.get("path")
        if kind == "add":
            if "value" not in op:
                raise PatchError("add operation missing value")
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            if "value" not in op:
                raise PatchError("replace operation missing value")
            tokens = _parse_pointer(path)
            if not tokens:
                doc = copy.deepcopy(op["value"])
                continue
            _get(doc, path)  # must exist
            _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            frm = op.get("from")
            val = _get(doc, frm)
            _remove(doc, frm)
            doc = _add(doc, path, val)
        elif kind == "copy":
            val = copy.deepcopy(_get(doc, op.get("from")))
            doc = _add(doc, path, val)
        elif kind == "test":
            try:
                cur = _get(doc, path)
            except PatchConflict:
                raise PatchConflict(f"testing value {path} failed: test operation does not apply: "
                                    f"doc is missing path: {path}")
            if cur != op.get("value"):
                raise PatchConflict(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc
