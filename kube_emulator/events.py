"""core/v1 Events as the components of a cluster record them: one Event per involved
object, type, reason and message (or per reason, for ``aggregate``), whose ``count`` and
``lastTimestamp`` grow when it happens again; removed ``ttl`` seconds after their last
update, like the apiserver's ``--event-ttl`` (1 h)."""
from __future__ import annotations

import json
import time
import uuid
from collections import deque
from typing import Optional

from .clock import now_rfc3339
from .resources import EVENTS
from .store import Store

SOURCE = "controller"
AGGREGATED = ("replicaset-controller",)   # its events are counted per reason (aggregate=True)


def reference(obj: dict) -> dict:
    """The ``involvedObject`` for an object."""
    meta = obj["metadata"]
    ref = {"kind": obj["kind"], "namespace": meta.get("namespace", ""), "name": meta["name"],
           "uid": meta["uid"], "apiVersion": obj["apiVersion"],
           "resourceVersion": meta.get("resourceVersion", "")}
    return ref


class EventRecorder:
    def __init__(self, store: Store, ttl: float = 3600.0):
        self.store = store
        self.ttl = ttl
        # dedup key -> [namespace, event name, monotonic time of its last update]
        self._by_key: dict[tuple, list] = {}
        self._expiry: deque = deque()              # (monotonic time of an update, key)
        self._seq = 0
        self.recorded = 0

    def clear(self) -> None:
        self._by_key.clear()
        self._expiry.clear()

    @staticmethod
    def _key(uid, type_, reason, field_path, component, message, aggregate) -> tuple:
        # the message only by its hash: the key must not hold a second copy of every text
        return (uid, type_, reason, field_path, component,
                None if aggregate else hash(message))

    def rebuild(self) -> None:
        """Index the stored events again (after a restart), so that a repeat is counted
        on the event it repeats and old ones still expire."""
        from .clock import parse_rfc3339
        self.clear()
        now, wall = time.monotonic(), time.time()
        stored = sorted(self.store.iter_objects(EVENTS.name, None),
                        key=lambda st: st.obj.get("lastTimestamp") or "")
        for st in stored:
            obj = st.obj
            inv = obj.get("involvedObject") or {}
            component = (obj.get("source") or {}).get("component", "")
            key = self._key(inv.get("uid"), obj.get("type"), obj.get("reason"),
                            inv.get("fieldPath", ""), component, obj.get("message"),
                            component in AGGREGATED)
            at = now - max(0.0, wall - (parse_rfc3339(obj.get("lastTimestamp")) or wall))
            self._by_key[key] = [st.namespace, st.name, at]
            self._expiry.append((at, key))

    def record(self, involved: dict, type_: str, reason: str, message: str, component: str,
               host: Optional[str] = None, field_path: str = "",
               aggregate: bool = False) -> None:
        ns = involved.get("namespace") or "default"
        ref = dict(involved)
        if field_path:
            ref["fieldPath"] = field_path
        key = self._key(involved["uid"], type_, reason, field_path, component, message,
                        aggregate)
        now = now_rfc3339()
        at = time.monotonic()
        self.recorded += 1
        entry = self._by_key.get(key)
        cur = self.store.get(EVENTS.name, entry[0], entry[1]) if entry else None
        if cur is not None:
            obj = json.loads(cur.raw)
            obj["count"] = int(obj.get("count") or 1) + 1
            obj["lastTimestamp"] = now
            obj["message"] = message
            obj["involvedObject"] = ref
            self.store.put(EVENTS.name, obj, "MODIFIED", prev=cur, source=SOURCE)
            entry[2] = at
        else:
            self._seq += 1
            name = f"{involved['name']}.{time.time_ns() + self._seq:x}"[:253]
            source = {"component": component}
            if host:
                source["host"] = host
            obj = {"kind": "Event", "apiVersion": "v1",
                   "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                                "creationTimestamp": now},
                   "involvedObject": ref, "reason": reason, "message": message,
                   "source": source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                   "type": type_, "eventTime": None, "reportingComponent": component,
                   "reportingInstance": host or ""}
            self.store.put(EVENTS.name, obj, "ADDED", source=SOURCE)
            self._by_key[key] = [ns, name, at]
        self._expiry.append((at, key))

    def expire(self) -> Optional[float]:
        """Delete events not updated for ``ttl`` seconds; return when to look again."""
        now = time.monotonic()
        while self._expiry:
            at, key = self._expiry[0]
            if at + self.ttl > now:
                return at + self.ttl
            self._expiry.popleft()
            entry = self._by_key.get(key)
            if entry is None or entry[2] != at:
                continue  # updated since: a later entry expires it
            del self._by_key[key]
            self.store.remove(EVENTS.name, entry[0], entry[1], source=SOURCE)
        return None
