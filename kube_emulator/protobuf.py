"""A minimal decoder for Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``).

Typed kubectl commands (``kubectl create namespace``, ``kubectl create deployment``) send
their bodies as protobuf. This decodes the subset of the Namespace and Deployment messages
those commands produce into the JSON form. A field number it does not know is an error
(answered 415) rather than silently dropped data.
"""
from __future__ import annotations

import datetime

MAGIC = b"k8s\x00"


class ProtobufError(Exception):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ProtobufError(f"unsupported wire type {wt}")
        yield num, wt, v


# message name -> {field number: (json name, type, repeated)}
# types: str, int, bool, map (map<string,string>), time, intorstr, quantity_map, or a message name
S, I, B = "str", "int", "bool"
SCHEMA: dict[str, dict[int, tuple]] = {
    "ObjectMeta": {1: ("name", S, False), 2: ("generateName", S, False),
                   3: ("namespace", S, False), 5: ("uid", S, False),
                   6: ("resourceVersion", S, False), 7: ("generation", I, False),
                   8: ("creationTimestamp", "time", False), 11: ("labels", "map", False),
                   12: ("annotations", "map", False), 14: ("finalizers", S, True)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False),
                  3: ("status", "NamespaceStatus", False)},
    "NamespaceSpec": {1: ("finalizers", S, True)},
    "NamespaceStatus": {1: ("phase", S, False)},
    "Deployment": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "DeploymentSpec", False),
                   3: ("status", "Ignored", False)},
    "Ignored": {},
    "DeploymentSpec": {1: ("replicas", I, False), 2: ("selector", "LabelSelector", False),
                       3: ("template", "PodTemplateSpec", False),
                       4: ("strategy", "DeploymentStrategy", False),
                       5: ("minReadySeconds", I, False), 6: ("revisionHistoryLimit", I, False),
                       7: ("paused", B, False), 9: ("progressDeadlineSeconds", I, False)},
    "DeploymentStrategy": {1: ("type", S, False), 2: ("rollingUpdate", "RollingUpdate", False)},
    "RollingUpdate": {1: ("maxUnavailable", "intorstr", False), 2: ("maxSurge", "intorstr", False)},
    "LabelSelector": {1: ("matchLabels", "map", False),
                      2: ("matchExpressions", "LabelSelectorRequirement", True)},
    "LabelSelectorRequirement": {1: ("key", S, False), 2: ("operator", S, False),
                                 3: ("values", S, True)},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "PodSpec", False)},
    "PodSpec": {2: ("containers", "Container", True), 3: ("restartPolicy", S, False),
                4: ("terminationGracePeriodSeconds", I, False), 6: ("dnsPolicy", S, False),
                7: ("nodeSelector", "map", False), 8: ("serviceAccountName", S, False),
                19: ("schedulerName", S, False), 20: ("initContainers", "Container", True)},
    "Container": {1: ("name", S, False), 2: ("image", S, False), 3: ("command", S, True),
                  4: ("args", S, True), 5: ("workingDir", S, False),
                  6: ("ports", "ContainerPort", True), 7: ("env", "EnvVar", True),
                  8: ("resources", "ResourceRequirements", False),
                  13: ("terminationMessagePath", S, False), 14: ("imagePullPolicy", S, False),
                  20: ("terminationMessagePolicy", S, False)},
    "ContainerPort": {1: ("name", S, False), 2: ("hostPort", I, False),
                      3: ("containerPort", I, False), 4: ("protocol", S, False),
                      5: ("hostIP", S, False)},
    "EnvVar": {1: ("name", S, False), 2: ("value", S, False)},
    "ResourceRequirements": {1: ("limits", "quantity_map", False),
                             2: ("requests", "quantity_map", False)},
}


# non-pointer int fields of the Go types, for which 0 means "not set" (omitempty)
ZERO_IS_UNSET = {"generation", "hostPort", "minReadySeconds"}


def _int(v: int, bits: int = 64) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_map(entries: list[bytes], quantity: bool = False) -> dict:
    out = {}
    for e in entries:
        k = v = ""
        for num, wt, val in _fields(e):
            if num == 1:
                k = val.decode()
            elif num == 2:
                if quantity:
                    for qn, _, qv in _fields(val):
                        if qn == 1:
                            v = qv.decode()
                else:
                    v = val.decode()
        out[k] = v
    return out


def _decode_time(buf: bytes):
    secs = 0
    for num, wt, val in _fields(buf):
        if num == 1:
            secs = _int(val)
    if not buf:
        return None
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _decode_intorstr(buf: bytes):
    typ, ival, sval = 0, 0, ""
    for num, wt, val in _fields(buf):
        if num == 1:
            typ = val
        elif num == 2:
            ival = _int(val)
        elif num == 3:
            sval = val.decode()
    return sval if typ == 1 else ival


def decode_message(buf: bytes, name: str) -> dict:
    schema = SCHEMA[name]
    out: dict = {}
    maps: dict[str, list] = {}
    for num, wt, val in _fields(buf):
        if name == "Ignored":
            continue
        if num not in schema:
            if (wt == 2 and not val) or (wt == 0 and val == 0):
                continue  # Go's generated marshallers write empty non-pointer fields
            raise ProtobufError(f"field {num} of {name} is not supported by the emulator's "
                                f"protobuf decoder")
        key, typ, repeated = schema[num]
        if typ in ("map", "quantity_map"):
            maps.setdefault(key, []).append(val)
            continue
        if typ == S:
            v = val.decode()
            if not v and not repeated:
                continue  # omitempty
        elif typ == I:
            v = _int(val)
            if v == 0 and key in ZERO_IS_UNSET:
                continue
        elif typ == B:
            v = bool(val)
            if not v:
                continue
        elif typ == "time":
            v = _decode_time(val)
        elif typ == "intorstr":
            v = _decode_intorstr(val)
        else:
            v = decode_message(val, typ)
        if repeated:
            out.setdefault(key, []).append(v)
        else:
            out[key] = v
    for key, entries in maps.items():
        out[key] = _decode_map(entries, quantity=schema_type(schema, key) == "quantity_map")
    return out


def schema_type(schema: dict, key: str) -> str:
    for k, typ, _ in schema.values():
        if k == key:
            return typ
    return ""


def decode(raw: bytes) -> dict:
    """Decode a ``k8s\\0``-prefixed runtime.Unknown envelope into a JSON-like dict."""
    if not raw.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    api_version = kind = ""
    inner = b""
    for num, wt, val in _fields(raw[len(MAGIC):]):
        if num == 1:
            for tn, _, tv in _fields(val):
                if tn == 1:
                    api_version = tv.decode()
                elif tn == 2:
                    kind = tv.decode()
        elif num == 2:
            inner = val
    if kind not in ("Namespace", "Deployment"):
        raise ProtobufError(f"protobuf bodies of kind {kind!r} are not supported")
    obj = decode_message(inner, kind)
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj
