"""Label selectors (equality- and set-based) and field selectors."""
from __future__ import annotations

import re
from typing import Callable

from .errors import ApiError, bad_request

_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                     r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

Matcher = Callable[[dict], bool]


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _check_key(key: str, sel: str) -> None:
    if not key or len(key) > 317 or not _KEY_RE.match(key):
        raise bad_request(f'unable to parse requirement: invalid label key "{key}": name part must '
                          f"consist of alphanumeric characters, '-', '_' or '.', and must start and "
                          f"end with an alphanumeric character")


def _check_value(v: str) -> None:
    if len(v) > 63 or not _VALUE_RE.match(v):
        raise bad_request(f'unable to parse requirement: invalid label value: "{v}": at key: '
                          f"a valid label must be an empty string or consist of alphanumeric "
                          f"characters, '-', '_' or '.', and must start and end with an "
                          f"alphanumeric character")


_SET_RE = re.compile(r"^\s*([^\s!=<>()]+)\s+(in|notin)\s*\((.*)\)\s*$")
_OP_RE = re.compile(r"^\s*([^\s!=<>()]+)\s*(==|!=|=|<|>)\s*([^\s]*)\s*$")


def parse_label_selector(selector: str | None) -> Matcher | None:
    """Return a predicate over a labels dict, or None for "everything"."""
    if selector is None or not selector.strip():
        return None
    reqs: list[Matcher] = []
    for raw in _split_top(selector):
        part = raw.strip()
        if not part:
            raise bad_request(f'unable to parse requirement: found \'\', expected: identifier '
                              f'(selector "{selector}")')
        m = _SET_RE.match(part)
        if m:
            key, op, vals = m.group(1), m.group(2), m.group(3)
            _check_key(key, selector)
            values = frozenset(v.strip() for v in vals.split(",") if v.strip() != "")
            for v in values:
                _check_value(v)
            if op == "in":
                if not values:
                    raise bad_request("unable to parse requirement: for 'in', 'notin' operators, "
                                      "values set can't be empty")
                reqs.append(lambda lb, k=key, vs=values: k in lb and lb[k] in vs)
            else:
                reqs.append(lambda lb, k=key, vs=values: k not in lb or lb[k] not in vs)
            continue
        m = _OP_RE.match(part)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3)
            _check_key(key, selector)
            if op in ("=", "=="):
                _check_value(val)
                reqs.append(lambda lb, k=key, v=val: lb.get(k) == v)
            elif op == "!=":
                _check_value(val)
                reqs.append(lambda lb, k=key, v=val: lb.get(k) != v)
            else:
                try:
                    num = int(val)
                except ValueError:
                    raise bad_request(f'unable to parse requirement: for \'Gt\', \'Lt\' operators, '
                                      f'the value must be an integer (selector "{selector}")')

                def cmp(lb, k=key, n=num, gt=(op == ">")):
                    if k not in lb:
                        return False
                    try:
                        x = int(lb[k])
                    except ValueError:
                        return False
                    return x > n if gt else x < n
                reqs.append(cmp)
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(key, selector)
            reqs.append(lambda lb, k=key: k not in lb)
            continue
        if re.match(r"^[^\s!=<>(),]+$", part):
            _check_key(part, selector)
            reqs.append(lambda lb, k=part: k in lb)
            continue
        raise bad_request(f'unable to parse requirement: invalid selector "{selector}"')

    def match(labels: dict) -> bool:
        for r in reqs:
            if not r(labels):
                return False
        return True
    return match


def selector_from_label_selector(sel: dict) -> Matcher:
    """Build a matcher from a metav1.LabelSelector (matchLabels / matchExpressions)."""
    ml = dict(sel.get("matchLabels") or {})
    exprs = sel.get("matchExpressions") or []

    def match(labels: dict) -> bool:
        for k, v in ml.items():
            if labels.get(k) != v:
                return False
        for e in exprs:
            k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
            if op == "In" and (k not in labels or labels[k] not in vals):
                return False
            if op == "NotIn" and k in labels and labels[k] in vals:
                return False
            if op == "Exists" and k not in labels:
                return False
            if op == "DoesNotExist" and k in labels:
                return False
        return True
    return match


def label_selector_string(sel: dict) -> str:
    """Render a metav1.LabelSelector the way ``Scale.status.selector`` shows it."""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = e.get("operator")
        vals = ",".join(sorted(e.get("values") or []))
        if op == "In":
            parts.append(f"{e['key']} in ({vals})")
        elif op == "NotIn":
            parts.append(f"{e['key']} notin ({vals})")
        elif op == "Exists":
            parts.append(e["key"])
        elif op == "DoesNotExist":
            parts.append("!" + e["key"])
    return ",".join(sorted(parts))


# Field selectors are evaluated on store.Stored versions (attributes name, namespace, phase).
FIELD_GETTERS = {
    "metadata.name": lambda o: o.name,
    "metadata.namespace": lambda o: o.namespace,
}


def parse_field_selector(selector: str | None, getters: dict | None = None) -> Matcher | None:
    """Return a predicate over a stored object version, or None for "everything"."""
    if selector is None or not selector.strip():
        return None
    getters = getters or FIELD_GETTERS
    reqs = []
    for raw in selector.split(","):
        part = raw.strip()
        if not part:
            continue
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if not m:
            raise bad_request(f'invalid selector: \'{selector}\'; can\'t understand \'{part}\'')
        field, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        getter = getters.get(field)
        if getter is None:
            known = ", ".join(f'"{k}"' for k in getters)
            raise ApiError(400, "BadRequest",
                           f'"{field}" is not a known field selector: only {known}')
        if op == "!=":
            reqs.append(lambda o, g=getter, v=val: g(o) != v)
        else:
            reqs.append(lambda o, g=getter, v=val: g(o) == v)
    if not reqs:
        return None

    def match(obj: dict) -> bool:
        for r in reqs:
            if not r(obj):
                return False
        return True
    return match


def field_selector_name(selector: str | None) -> str | None:
    """If the field selector pins ``metadata.name=X``, return X (for O(1) lookups)."""
    if not selector:
        return None
    for raw in selector.split(","):
        m = re.match(r"^\s*metadata\.name\s*(==|=)\s*(.*?)\s*$", raw)
        if m:
            return m.group(2)
    return None
