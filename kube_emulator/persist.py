"""Persistence of the emulator's objects under a data directory, so that a restart finds
the cluster as it was left (``--data-dir DIR`` / ``EmulatorServer(data_dir=DIR)``).

What is kept: every current object of every kind, as the JSON the API serves, and the
resourceVersion counter (so resourceVersions stay monotonic across restarts). What is
not: the watch event log (a watch or a consistent list from a resourceVersion older than
the restart answers 410 Expired, so clients relist, as after an etcd compaction),
faults, and the simulated controller's memory (it rebuilds itself from the objects).

How: ``DIR/objects.json`` is rewritten whole, ``DEBOUNCE`` seconds after a change (at
most ``MAX_DELAY`` seconds after the first unsaved one, however busy the server is), by
writing ``objects.json.tmp``, fsync, and an atomic rename, so the file is always either
the previous or the new snapshot. The file is written from a worker thread; the bytes
are assembled on the event loop from the stored JSON, so a snapshot is consistent. A
clean stop (SIGTERM/SIGINT, ``EmulatorServer.stop()``) writes the last snapshot.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Optional

from .store import Store

log = logging.getLogger("kube_emulator")
FILENAME = "objects.json"
FORMAT = 1
DEBOUNCE = 0.2
MAX_DELAY = 1.0


class Snapshotter:
    def __init__(self, store: Store, data_dir: str):
        self.store = store
        self.dir = os.path.abspath(data_dir)
        self.path = os.path.join(self.dir, FILENAME)
        self.dirty_since: Optional[float] = None
        self.writes = 0
        self._timer: Optional[asyncio.TimerHandle] = None
        self._writing: Optional[asyncio.Future] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        os.makedirs(self.dir, exist_ok=True)

    # ------------------------------------------------------------------ load
    def load(self) -> int:
        """Put the saved objects into the (empty) store; return how many."""
        try:
            with open(self.path, "rb") as f:
                data = json.load(f)
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            rv = int(data["resourceVersion"])
            objects = data["objects"]
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as e:
            aside = f"{self.path}.unreadable-{int(time.time())}"
            os.replace(self.path, aside)
            log.error("kube-emulator: %s could not be read (%s); it was moved to %s and the "
                      "cluster starts empty", self.path, e, aside)
            return 0
        count = 0
        for res, items in objects.items():
            if res not in self.store.objs:
                log.warning("kube-emulator: skipping %d saved %s (not served)", len(items), res)
                continue
            for obj in items:
                self.store.restore(res, obj)
                count += 1
        self.store.restart_at(rv)
        return count

    # ------------------------------------------------------------------ save
    def start(self) -> None:
        """Follow changes from now on (call on the event loop)."""
        self._loop = asyncio.get_running_loop()
        self.store.listeners.append(self._on_event)

    def _on_event(self, ev, source: str) -> None:
        self.mark_dirty()

    def mark_dirty(self) -> None:
        now = time.monotonic()
        if self.dirty_since is None:
            self.dirty_since = now
        if self._loop is None:
            return
        cap = self.dirty_since + MAX_DELAY - now
        if self._timer is not None:
            if cap <= DEBOUNCE:
                return  # the pending timer fires before the cap anyway
            self._timer.cancel()
        self._timer = self._loop.call_later(max(0.0, min(DEBOUNCE, cap)), self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        if self._writing is not None and not self._writing.done():
            self._timer = self._loop.call_later(DEBOUNCE, self._flush_soon)
            return
        if self.dirty_since is None:
            return
        data = self.snapshot()
        self.dirty_since = None
        self._writing = self._loop.run_in_executor(None, self._write, data)

    def snapshot(self) -> bytes:
        parts = [b'{"format":%d,"resourceVersion":"%d","savedAt":"%s","objects":{' % (
            FORMAT, self.store.rv, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode())]
        first = True
        for res in sorted(self.store.objs):
            items = self.store.objs[res]
            parts.append((b"" if first else b",") + json.dumps(res).encode() + b":[")
            parts.append(b",".join(items[k].raw for k in sorted(items)))
            parts.append(b"]")
            first = False
        parts.append(b"}}\n")
        return b"".join(parts)

    def _write(self, data: bytes) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        try:
            fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(fd)   # the rename itself survives a power cut
            finally:
                os.close(fd)
        except OSError:
            pass
        self.writes += 1

    async def close(self) -> None:
        """Write what is not saved yet (a clean stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is not None:
            await self._writing
        if self.dirty_since is not None:
            self.dirty_since = None
            self._write(self.snapshot())
        if self._on_event in self.store.listeners:
            self.store.listeners.remove(self._on_event)

    def info(self) -> dict:
        return {"data_dir": self.dir, "snapshots_written": self.writes,
                "unsaved": self.dirty_since is not None}
