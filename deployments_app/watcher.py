"""The watcher: an informer on managed Deployments that tells the worker which keys to look at.

Level-triggered: it only ever publishes "look at namespace/name" (a SyncDeployment message with
Nats-Msg-Id namespace/name/resourceVersion, so a replayed event is dropped by JetStream); the worker
re-reads the live object and decides. Per watched namespace (or all namespaces) it:
  1. lists the Deployments carrying the managed-by label and publishes every key, plus every key
     the database still holds as live that the list no longer has (deleted while nobody watched);
  2. watches from the list's resourceVersion with bookmarks, a server timeout and a client read
     timeout, resuming from the last resourceVersion seen (bookmarks included) when a stream ends;
  3. relists on 410 Gone and every K8SDM_RESYNC_SECONDS; backs off exponentially with jitter on
     other errors.
Bursts for one key are coalesced: only the newest resourceVersion of a key waiting to be
published is sent.

Why not kubernetes.informer.SharedInformer: it keeps a full object cache we do not need (memory at
10,000 Deployments), deserialises every event into models (the main CPU cost), and exposes no hook
for "after every relist, report keys that vanished", which is the heart of 6.5.

Only one watcher is active: it holds a Postgres advisory lock on a connection of its own. Others
stand by and take over within a second or two of the holder dying (its connection closes, so the
lock goes with it, kill -9 included). The holder checks that it still has the lock and stops
watching if it lost it (e.g. Postgres restarted).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import connection
from prometheus_client import Counter, Gauge, Histogram

from deployments_app import k8s
from deployments_app.config import MANAGED_SELECTOR
from deployments_app.models import Deployment, DeploymentStatus
from k8sdm.messaging.publisher import Publisher
from k8sdm.runtime import db_hygiene
from k8sdm.messaging.messages import SyncDeployment

logger = logging.getLogger(__name__)

EVENTS = Counter("k8sdm_watcher_events_total", "Watch events received", ["type"])
RELISTS = Counter("k8sdm_watcher_relists_total", "Full lists of managed Deployments", ["reason"])
WATCH_RESTARTS = Counter("k8sdm_watcher_watch_restarts_total", "Watch streams (re)opened", ["reason"])
PUBLISHED = Counter("k8sdm_watcher_published_total", "Sync keys published")
PUBLISH_FAILURES = Counter("k8sdm_watcher_publish_failures_total", "Sync keys that failed to publish (retried)")
LAST_EVENT = Gauge("k8sdm_watcher_last_event_timestamp_seconds", "When the last event or bookmark arrived")
LAG = Histogram("k8sdm_watcher_publish_lag_seconds", "From receiving an event to JetStream acking its key",
                buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))
ACTIVE = Gauge("k8sdm_watcher_active", "1 while this process is the active watcher")

LEADER_LOCK = (0x6B38, 0x7761)  # advisory lock key: ("k8", "wa")
REPORT_SECONDS = 60.0  # how often the active watcher logs its publishing lag


class LeaderLock:
    """A session-level Postgres advisory lock on a dedicated connection."""

    def __init__(self, dsn: dict):
        self.dsn = dsn
        self.conn: psycopg.Connection | None = None

    def try_acquire(self) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(**self.dsn, autocommit=True)
            row = self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LEADER_LOCK).fetchone()
            return bool(row[0])
        except psycopg.Error as exc:
            logger.warning("cannot reach Postgres for leader election: %s", exc)
            self.release()
            return False

    def still_held(self) -> bool:
        try:
            row = self.conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND classid = %s AND objid = %s AND granted",
                LEADER_LOCK,
            ).fetchone()
            return row[0] > 0
        except (psycopg.Error, AttributeError):
            return False

    def release(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()  # closing the session releases the lock
            except psycopg.Error:
                pass
            self.conn = None


def _dsn() -> dict:
    """Django's own connection parameters, for the lock's dedicated connection."""
    return {**connection.get_connection_params(), "application_name": "k8sdm-watcher-leader"}


class KeyPublisher:
    """Coalesces keys and publishes them from a thread of its own; a failed key is kept and retried."""

    def __init__(self, publisher):
        self.publisher = publisher
        self._pending: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Condition()
        self._lags: list[float] = []  # since the last report
        self._thread = threading.Thread(target=self._run, name="sync-publisher", daemon=True)
        self._thread.start()

    def offer(self, namespace: str, name: str, msg_rv: str) -> None:
        with self._lock:
            self._pending[(namespace, name)] = (msg_rv, time.monotonic())
            self._lock.notify()

    def backlog(self) -> int:
        with self._lock:
            return len(self._pending)

    def _run(self) -> None:
        delay = 0.1
        while True:
            with self._lock:
                while not self._pending:
                    self._lock.wait(0.5)
                batch, self._pending = self._pending, {}
            items = list(batch.items())
            messages = [SyncDeployment(namespace=ns, name=name, resource_version=rv) for (ns, name), (rv, _) in items]
            results = self.publisher.publish_many([(m.subject, m.to_bytes(), m.msg_id) for m in messages])
            failed = 0
            now = time.monotonic()
            with self._lock:
                for ((key, (rv, received)), result) in zip(items, results):
                    if result.ok:
                        LAG.observe(now - received)
                        self._lags.append(now - received)
                    else:
                        failed += 1
                        self._pending.setdefault(key, (rv, received))  # a newer offer wins
            PUBLISHED.inc(len(items) - failed)
            if failed:
                PUBLISH_FAILURES.inc(failed)
                logger.warning("could not publish %d sync key(s) (%s); retrying in %.1fs",
                               failed, next(r.error for r in results if not r.ok), delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                delay = 0.1

    def take_lags(self) -> list[float]:
        with self._lock:
            lags, self._lags = self._lags, []
        return lags

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.backlog() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.backlog()


@dataclass
class DeploymentWatcher:
    stop: threading.Event
    publisher: Publisher
    namespaces: list[str] | None = field(default_factory=lambda: watched_namespaces())
    watch_timeout: int = field(default_factory=lambda: settings.K8SDM_WATCH_TIMEOUT_SECONDS)
    resync_seconds: float = field(default_factory=lambda: settings.K8SDM_RESYNC_SECONDS)

    def __post_init__(self):
        self.keys = KeyPublisher(self.publisher)
        self._leading = threading.Event()

    # --- leadership ------------------------------------------------------------------------------

    def run(self) -> int:
        lock = LeaderLock(_dsn())
        standing_by = False
        try:
            while not self.stop.is_set():
                if not lock.try_acquire():
                    if not standing_by:
                        logger.info("another watcher is active: standing by")
                        standing_by = True
                    self.stop.wait(1.0)
                    continue
                standing_by = False
                logger.info("this watcher is now active (namespaces: %s)", ", ".join(self.namespaces or ["*"]))
                ACTIVE.set(1)
                self._lead(lock)
                ACTIVE.set(0)
        finally:
            lock.release()
            flushed = self.keys.flush(timeout=3.0)
            logger.info("watcher stopped%s", "" if flushed else f" ({self.keys.backlog()} keys unpublished)")
        return 0

    def _lead(self, lock: LeaderLock) -> None:
        self._leading.set()
        threads = [
            threading.Thread(target=self._watch_namespace, args=(ns,), name=f"watch-{ns or 'all'}", daemon=True)
            for ns in (self.namespaces or [None])
        ]
        for thread in threads:
            thread.start()
        last_report = time.monotonic()
        while not self.stop.is_set():
            self.stop.wait(2.0)
            if time.monotonic() - last_report >= REPORT_SECONDS:
                self._report(time.monotonic() - last_report)
                last_report = time.monotonic()
            if not lock.still_held():
                logger.error("lost the watcher lock (Postgres connection gone?): stopping watches, re-electing")
                lock.release()
                break
        self._leading.clear()
        for thread in threads:
            thread.join(timeout=2.0)  # a thread blocked on a quiet stream is a daemon: it dies with us

    def _report(self, seconds: float) -> None:
        lags = sorted(self.keys.take_lags())
        if lags:
            p50, p99 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]
            logger.info(
                "published %d sync key(s) in the last %.0fs; lag event->ack p50 %.1f ms, p99 %.1f ms; backlog %d",
                len(lags), seconds, p50 * 1000, p99 * 1000, self.keys.backlog(),
            )
        else:
            logger.info("no changes in the last %.0fs; backlog %d", seconds, self.keys.backlog())

    # --- one namespace -------------------------------------------------------------------------

    def _watch_namespace(self, namespace: str | None) -> None:
        label = namespace or "all namespaces"
        rv: str | None = None
        reason = "start"
        last_list = 0.0
        backoff = 0.5
        while self._leading.is_set() and not self.stop.is_set():
            try:
                if rv is None or time.monotonic() - last_list > self.resync_seconds:
                    if rv is not None:
                        reason = "periodic resync"
                    rv = self._relist(namespace, reason)
                    last_list = time.monotonic()
                WATCH_RESTARTS.labels(reason).inc()
                for event in k8s.watch_deployments(
                    namespace=namespace, label_selector=MANAGED_SELECTOR, resource_version=rv, timeout_seconds=self.watch_timeout,
                    read_timeout=self.watch_timeout + 10,
                ):
                    rv = self._on_event(event) or rv
                    if self.stop.is_set() or not self._leading.is_set():
                        return
                reason = "stream ended"
                backoff = 0.5
            except k8s.K8sError as exc:
                if exc.status == 410:
                    logger.info("watch of %s expired at resourceVersion %s (410 Gone): relisting", label, rv)
                    rv, reason = None, "expired (410 Gone)"
                    continue
                delay = backoff * random.uniform(0.5, 1.5)
                logger.warning("watch of %s failed: %s; retrying in %.1fs", label, exc, delay)
                reason = f"error {exc.status or exc.reason}"
                self.stop.wait(delay)
                backoff = min(backoff * 2, 30.0)
            except Exception as exc:  # noqa: BLE001 - never let a thread die silently
                logger.error("watch of %s crashed: %s", label, exc, exc_info=True)
                reason = "crash"
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _on_event(self, event: dict) -> str | None:
        etype = event.get("type", "")
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        EVENTS.labels(etype).inc()
        LAST_EVENT.set_to_current_time()
        rv = meta.get("resourceVersion")
        if etype in ("ADDED", "MODIFIED", "DELETED") and meta.get("name"):
            self.keys.offer(meta.get("namespace", ""), meta["name"], rv or "")
        return rv

    def _relist(self, namespace: str | None, reason: str) -> str:
        started = time.monotonic()
        data = k8s.list_deployments(namespace=namespace, label_selector=MANAGED_SELECTOR)
        rv = data["metadata"]["resourceVersion"]
        live = set()
        for obj in data.get("items") or []:
            meta = obj["metadata"]
            live.add((meta["namespace"], meta["name"]))
            self.keys.offer(meta["namespace"], meta["name"], meta.get("resourceVersion", ""))
        vanished = self._vanished(namespace, live)
        for ns, name in vanished:
            self.keys.offer(ns, name, f"gone@{rv}")
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


def watched_namespaces() -> list[str] | None:
    """None means every namespace."""
    configured = settings.K8SDM_WATCH_NAMESPACES or settings.K8SDM_ALLOWED_NAMESPACES
    if "*" in configured:
        return None
    return list(dict.fromkeys(configured))
