"""In-memory object store with one cluster-wide resourceVersion counter, a bounded
event log and watch fan-out.

All methods run on the emulator's event-loop thread; every mutation, and every
"snapshot + register watcher" sequence, is a synchronous block without an ``await``
in it, which on a single-threaded event loop is the lock that guarantees a watcher
neither misses nor doubles an event.
"""
from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from typing import Callable, Iterable, Optional

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj) -> bytes:
    return _dumps(obj).encode()


class Stored:
    """One version of an object: its JSON bytes, plus the parsed dict while it is the
    current version of a resource that keeps it. Superseded versions (kept only by the
    bounded event log) drop the dict and re-parse on demand, so history costs about its
    JSON size in memory. ``fields`` holds the resource's extra field-selector values."""
    __slots__ = ("_obj", "raw", "labels", "name", "namespace", "phase", "uid", "owners",
                 "fields")

    def __init__(self, obj: dict, fields_fn: Optional[Callable[[dict], tuple]] = None):
        self._obj = obj
        self.raw = dumps(obj)
        meta = obj["metadata"]
        self.labels = meta.get("labels") or {}
        self.name = meta.get("name", "")
        self.namespace = meta.get("namespace", "")
        self.uid = meta.get("uid", "")
        refs = meta.get("ownerReferences")
        self.owners = tuple(r.get("uid") for r in refs if isinstance(r, dict)) \
            if isinstance(refs, list) else ()
        st = obj.get("status")
        self.phase = st.get("phase", "") if isinstance(st, dict) else ""
        self.fields = fields_fn(obj) if fields_fn is not None else None

    @property
    def obj(self) -> dict:
        o = self._obj
        if o is None:
            o = json.loads(self.raw)
        return o

    def release(self) -> None:
        self._obj = None


class Event:
    __slots__ = ("rv", "type", "res", "ns", "name", "cur", "prev", "_line")

    def __init__(self, rv: int, type_: str, res: str, ns: str, name: str,
                 cur: Stored, prev: Optional[Stored]):
        self.rv = rv
        self.type = type_
        self.res = res
        self.ns = ns
        self.name = name
        self.cur = cur       # object as of this event (for DELETED: last state, new RV)
        self.prev = prev     # previous state (MODIFIED / DELETED), used for selector transitions
        self._line = None

    def line(self) -> bytes:
        if self._line is None:
            self._line = b'{"type":"' + self.type.encode() + b'","object":' + self.cur.raw + b"}\n"
        return self._line


def event_line(type_: str, raw: bytes) -> bytes:
    return b'{"type":"' + type_.encode() + b'","object":' + raw + b"}\n"


def with_rv(stored: Stored, rv: int) -> bytes:
    obj = dict(stored.obj)
    meta = dict(obj["metadata"])
    meta["resourceVersion"] = str(rv)
    obj["metadata"] = meta
    return dumps(obj)


class Watcher:
    """One open watch stream. Events are queued in a bounded deque; a watcher that
    falls more than ``max_buffer`` events behind is closed (like the apiserver does
    with slow watchers) instead of buffering without bound."""

    def __init__(self, res: str, ns: Optional[str], label_match, field_match,
                 max_buffer: int):
        self.res = res
        self.ns = ns
        self.label_match = label_match
        self.field_match = field_match
        self.buf: deque = deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.close_reason = ""
        self.abort = False
        self.max_buffer = max_buffer
        self.filtered = label_match is not None or field_match is not None
        self.render = None  # optional (type, Stored, rv_override) -> bytes, e.g. Table events

    def matches(self, stored: Stored) -> bool:
        if self.label_match is not None and not self.label_match(stored.labels):
            return False
        if self.field_match is not None and not self.field_match(stored):
            return False
        return True

    def format(self, type_: str, stored: Stored, rv_override: Optional[int]) -> bytes:
        if self.render is not None:
            return self.render(type_, stored, rv_override)
        raw = stored.raw if rv_override is None else with_rv(stored, rv_override)
        return event_line(type_, raw)

    def _same(self, ev: Event) -> bytes:
        if self.render is None:
            return ev.line()
        return self.render(ev.type, ev.cur, None)

    def translate(self, ev: Event) -> Optional[bytes]:
        """The line this watcher must see for ``ev`` (None when filtered out)."""
        if self.ns is not None and ev.ns != self.ns:
            return None
        if not self.filtered:
            return self._same(ev)
        if ev.type == "ADDED":
            return self._same(ev) if self.matches(ev.cur) else None
        if ev.type == "DELETED":
            return self._same(ev) if self.matches(ev.prev or ev.cur) else None
        cur_ok = self.matches(ev.cur)
        prev_ok = ev.prev is not None and self.matches(ev.prev)
        if cur_ok and prev_ok:
            return self._same(ev)
        if cur_ok:
            return self.format("ADDED", ev.cur, None)
        if prev_ok:
            # the object left the selection: DELETED carrying the previous state at the new RV
            return self.format("DELETED", ev.prev, ev.rv)
        return None

    def push(self, line: bytes) -> None:
        if self.closed:
            return
        if len(self.buf) >= self.max_buffer:
            self.close("slow watcher: too many undelivered events")
            return
        self.buf.append(line)
        self.wake.set()

    def close(self, reason: str = "", abort: bool = False) -> None:
        self.closed = True
        self.close_reason = reason
        self.abort = abort
        self.buf.clear()
        self.wake.set()


class Store:
    def __init__(self, event_log_size: int = 10000, watch_buffer: int = 10000):
        self.rv = 1
        self.event_log_size = event_log_size
        self.watch_buffer = watch_buffer
        self.log: deque[Event] = deque(maxlen=event_log_size)
        self.compacted_rv = 1      # RV at which history was last dropped by compact()
        self.objs: dict[str, dict[tuple, Stored]] = {}
        self.by_ns: dict[str, dict[str, dict[str, Stored]]] = {}
        self._sorted: dict[str, Optional[list]] = {}
        self.watchers: dict[str, set[Watcher]] = {}
        self.listeners: list[Callable[[Event, str], None]] = []
        self.events_total = 0
        self.fields_fn: dict[str, Optional[Callable[[dict], tuple]]] = {}
        self.keep_parsed: dict[str, bool] = {}
        # owner uid -> {(res, ns, name)}: the dependants garbage collection deletes
        self.dependants: dict[str, set] = {}

    def register(self, res: str, fields_fn: Optional[Callable[[dict], tuple]] = None,
                 keep_parsed: bool = True) -> None:
        """``fields_fn``: extra field-selector values of an object; ``keep_parsed=False``:
        current versions keep only their JSON (resources the API mostly serves as-is)."""
        self.objs.setdefault(res, {})
        self.by_ns.setdefault(res, {})
        self._sorted.setdefault(res, None)
        self.watchers.setdefault(res, set())
        self.fields_fn[res] = fields_fn
        self.keep_parsed[res] = keep_parsed

    # ------------------------------------------------------------------ reads
    def get(self, res: str, ns: str, name: str) -> Optional[Stored]:
        return self.objs[res].get((ns, name))

    def count(self, res: str) -> int:
        return len(self.objs[res])

    def sorted_keys(self, res: str) -> list:
        keys = self._sorted[res]
        if keys is None:
            keys = sorted(self.objs[res])
            self._sorted[res] = keys
        return keys

    def iter_objects(self, res: str, ns: Optional[str]) -> Iterable[Stored]:
        """Current objects in key order (namespace, name)."""
        if ns is None:
            objs = self.objs[res]
            return (objs[k] for k in self.sorted_keys(res))
        d = self.by_ns[res].get(ns)
        if not d:
            return iter(())
        return (d[n] for n in sorted(d))

    def oldest_replayable_rv(self) -> int:
        """Smallest RV from which a watch can still be resumed."""
        if self.log:
            return self.log[0].rv - 1
        return self.rv

    def events_since(self, rv: int) -> Iterable[Event]:
        if not self.log:
            return iter(())
        start = rv + 1 - self.log[0].rv
        if start < 0:
            start = 0
        return itertools.islice(self.log, start, None)

    def state_at(self, res: str, ns: Optional[str], rv: int) -> dict:
        """Reconstruct {key: Stored} as of ``rv`` by undoing logged events (caller has
        checked that ``rv >= oldest_replayable_rv()``)."""
        state = {k: v for k, v in self.objs[res].items() if ns is None or k[0] == ns}
        later = [e for e in self.events_since(rv) if e.res == res and (ns is None or e.ns == ns)]
        for ev in reversed(later):
            key = (ev.ns, ev.name)
            if ev.type == "ADDED":
                state.pop(key, None)
            else:
                state[key] = ev.prev
        return state

    # ------------------------------------------------------------------ writes
    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, res: str, obj: dict, type_: str, prev: Optional[Stored] = None,
            source: str = "api") -> Stored:
        """Store ``obj`` (whose metadata.resourceVersion is set here)."""
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        st = Stored(obj, self.fields_fn[res])
        ns = obj["metadata"].get("namespace", "")
        name = obj["metadata"]["name"]
        key = (ns, name)
        objs = self.objs[res]
        old = objs.get(key)
        if old is None:
            self._sorted[res] = None
        else:
            if old is not prev:
                old.release()
            if old.owners != st.owners:
                self._unindex_owners(res, old)
        if st.owners:
            for uid in st.owners:
                self.dependants.setdefault(uid, set()).add((res, ns, name))
        objs[key] = st
        self.by_ns[res].setdefault(ns, {})[name] = st
        self._emit(Event(rv, type_, res, ns, name, st, prev), source)
        if prev is not None:
            prev.release()
        if not self.keep_parsed[res]:
            st.release()
        return st

    def restore(self, res: str, obj: dict) -> Stored:
        """Put a saved object back as it was (no event, no new resourceVersion)."""
        st = Stored(obj, self.fields_fn[res])
        ns, name = st.namespace, st.name
        self.objs[res][(ns, name)] = st
        self.by_ns[res].setdefault(ns, {})[name] = st
        self._sorted[res] = None
        for uid in st.owners:
            self.dependants.setdefault(uid, set()).add((res, ns, name))
        if not self.keep_parsed[res]:
            st.release()
        return st

    def restart_at(self, rv: int) -> None:
        """Continue the resourceVersion counter from ``rv``, with no history before it."""
        self.rv = max(self.rv, rv)
        self.log.clear()
        self.compacted_rv = self.rv

    def _unindex_owners(self, res: str, st: Stored) -> None:
        for uid in st.owners:
            deps = self.dependants.get(uid)
            if deps is not None:
                deps.discard((res, st.namespace, st.name))
                if not deps:
                    del self.dependants[uid]

    def dependants_of(self, uid: str) -> list[tuple]:
        """(res, ns, name) of the current objects whose ownerReferences name ``uid``."""
        return sorted(self.dependants.get(uid, ()))

    def remove(self, res: str, ns: str, name: str, source: str = "api") -> Optional[Stored]:
        key = (ns, name)
        prev = self.objs[res].pop(key, None)
        if prev is None:
            return None
        self._sorted[res] = None
        d = self.by_ns[res].get(ns)
        if d is not None:
            d.pop(name, None)
            if not d:
                del self.by_ns[res][ns]
        if prev.owners:
            self._unindex_owners(res, prev)
        rv = self.next_rv()
        obj = dict(prev.obj)
        meta = dict(obj["metadata"])
        meta["resourceVersion"] = str(rv)
        obj["metadata"] = meta
        final = Stored(obj, self.fields_fn[res])
        self._emit(Event(rv, "DELETED", res, ns, name, final, prev), source)
        prev.release()
        return final

    def _emit(self, ev: Event, source: str) -> None:
        self.log.append(ev)
        self.events_total += 1
        watchers = self.watchers[ev.res]
        if watchers:
            for w in watchers:
                line = w.translate(ev)
                if line is not None:
                    w.push(line)
            ev._line = None  # the line is built once per fan-out, not kept in the log
        for fn in self.listeners:
            fn(ev, source)

    # ------------------------------------------------------------------ admin
    def compact(self) -> int:
        self.log.clear()
        self.compacted_rv = self.rv
        return self.rv

    def clear(self) -> None:
        for res in self.objs:
            self.objs[res].clear()
            self.by_ns[res].clear()
            self._sorted[res] = None
        self.dependants.clear()
        self.log.clear()
        self.compacted_rv = self.rv

    def all_watchers(self) -> list[Watcher]:
        return [w for ws in self.watchers.values() for w in ws]
