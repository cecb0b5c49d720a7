"""`DeploymentInformer`: list and watch managed Deployments, offering every key that may have
changed to the watcher's KeyPublisher. Level-triggered: it never says what changed, only where to
look (the worker re-reads the live object).

Per watched namespace (or all namespaces), on a thread of its own, it:
  1. lists the Deployments carrying the managed-by label and offers every key, plus every key the
     database still holds as live that the list no longer has (deleted while nobody watched);
  2. watches from the list's resourceVersion with bookmarks, a server timeout and a client read
     timeout, resuming from the last resourceVersion seen (bookmarks included) when a stream ends;
  3. relists on 410 Gone and every `resync_seconds`; backs off (k8sdm.backoff) on other errors,
     logging an outage of the Kubernetes API once when it starts and once when it ends.
`stop()` sets the stop flag, cancels the open watch streams and joins the threads. Every offer
carries the leadership term's token (`term`): once the term ends, a thread that is still running
(stuck in a read past its join) publishes nothing (deployments_app/key_publisher.py).

Why not kubernetes.informer.SharedInformer: it keeps a full object cache we do not need (memory at
10,000 Deployments), deserialises every event into models (the main CPU cost), and exposes no hook
for "after every relist, report keys that vanished".
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection
from prometheus_client import Counter, Gauge

from deployments_app import k8s
from deployments_app.config import MANAGED_SELECTOR
from deployments_app.key_publisher import KeyPublisher
from deployments_app.models import Deployment, DeploymentStatus
from k8sdm import backoff
from k8sdm.outages import Outage
from k8sdm.runtime import db_hygiene

logger = logging.getLogger(__name__)

EVENTS = Counter("k8sdm_watcher_events_total", "Watch events received", ["type"])
RELISTS = Counter("k8sdm_watcher_relists_total", "Full lists of managed Deployments", ["reason"])
WATCH_RESTARTS = Counter("k8sdm_watcher_watch_restarts_total", "Watch streams (re)opened", ["reason"])
KUBERNETES = Outage("Kubernetes API", meanwhile="retrying the watch with backoff",
                    refusals="failed list or watch attempt(s)")
LAST_EVENT = Gauge("k8sdm_watcher_last_event_timestamp_seconds", "When the last event or bookmark arrived")


class DeploymentInformer:
    def __init__(self, *, keys: KeyPublisher, term: int, namespaces: list[str] | None, watch_timeout: int,
                 resync_seconds: float):
        self.keys = keys
        self.term = term
        self.namespaces = namespaces
        self.watch_timeout = watch_timeout
        self.resync_seconds = resync_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: set[k8s.WatchStream] = set()
        self._lock = threading.Lock()

    def start(self) -> "DeploymentInformer":
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, args=(ns,), name=f"watch-{ns or 'all'}", daemon=True)
            for ns in (self.namespaces or [None])
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            for stream in self._streams:
                stream.cancel()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            logger.warning("watch thread(s) %s did not stop within %.0fs", ", ".join(alive), timeout)
        self._threads = []

    # --- one namespace -----------------------------------------------------------------------------

    def _run(self, namespace: str | None) -> None:
        try:
            self._watch_namespace(namespace)
        finally:
            connection.close()

    def _watch_namespace(self, namespace: str | None) -> None:
        label = namespace or "all namespaces"
        rv: str | None = None
        reason = "start"
        last_list = 0.0
        retry = backoff.Backoff(base=0.5, cap=30.0, jitter=0.5)
        while not self._stop.is_set():
            try:
                if rv is None or time.monotonic() - last_list > self.resync_seconds:
                    if rv is not None:
                        reason = "periodic resync"
                    rv = self._relist(namespace, reason)
                    last_list = time.monotonic()
                WATCH_RESTARTS.labels(reason).inc()
                stream = k8s.watch_deployments(
                    namespace=namespace, label_selector=MANAGED_SELECTOR, resource_version=rv,
                    timeout_seconds=self.watch_timeout, read_timeout=self.watch_timeout + 10,
                )
                KUBERNETES.recovered()
                with self._lock:
                    self._streams.add(stream)
                try:
                    for event in stream:
                        rv = self._on_event(event) or rv
                        if self._stop.is_set():
                            return
                finally:
                    with self._lock:
                        self._streams.discard(stream)
                reason = "stream ended"
                retry.reset()
            except k8s.K8sError as exc:
                if exc.status == 410:
                    logger.info("watch of %s expired at resourceVersion %s (410 Gone): relisting", label, rv)
                    rv, reason = None, "expired (410 Gone)"
                    continue
                delay = retry.next()
                if not KUBERNETES.ongoing:  # one line per outage, not one per retry
                    logger.warning("watch of %s failed: %s; retrying in %.1fs", label, exc, delay)
                KUBERNETES.refused(exc)
                reason = f"error {exc.status or exc.reason}"
                self._stop.wait(delay)
            except Exception as exc:  # noqa: BLE001 - never let a thread die silently
                delay = retry.next()
                logger.error("watch of %s crashed: %s; retrying in %.1fs", label, exc, delay, exc_info=True)
                reason = "crash"
                self._stop.wait(delay)

    def _on_event(self, event: dict) -> str | None:
        etype = event.get("type", "")
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        EVENTS.labels(etype).inc()
        LAST_EVENT.set_to_current_time()
        rv = meta.get("resourceVersion")
        if etype in ("ADDED", "MODIFIED", "DELETED") and meta.get("name") and not self._stop.is_set():
            self.keys.offer(meta.get("namespace", ""), meta["name"], rv or "", term=self.term)
        return rv

    def _relist(self, namespace: str | None, reason: str) -> str:
        started = time.monotonic()
        data = k8s.list_deployments(namespace=namespace, label_selector=MANAGED_SELECTOR)
        rv = data["metadata"]["resourceVersion"]
        live = set()
        for obj in data.get("items") or []:
            meta = obj["metadata"]
            live.add((meta["namespace"], meta["name"]))
            self.keys.offer(meta["namespace"], meta["name"], meta.get("resourceVersion", ""), term=self.term)
        vanished = self._vanished(namespace, live)
        for ns, name in vanished:
            self.keys.offer(ns, name, f"gone@{rv}", term=self.term)
        RELISTS.labels(reason).inc()
        LAST_EVENT.set_to_current_time()
        logger.info(
            "listed %d managed deployment(s) in %s at resourceVersion %s (%s) in %.0f ms; %d vanished",
            len(live), namespace or "all namespaces", rv, reason, (time.monotonic() - started) * 1000, len(vanished),
        )
        return rv

    def _vanished(self, namespace: str | None, live: set) -> list[tuple[str, str]]:
        db_hygiene()
        try:
            rows = Deployment.objects.exclude(status=DeploymentStatus.DELETED)
            if namespace:
                rows = rows.filter(namespace=namespace)
            return [key for key in rows.values_list("namespace", "identifier") if key not in live]
        finally:
            connection.close()  # a watch thread holds no connection while it waits on the stream
