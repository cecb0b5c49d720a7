"""The watcher: tells the worker which Deployments to look at, with one active at a time.

`DeploymentWatcher.run()` loops until the stop flag is set:
- leader election (deployments_app/leader.py): a Postgres advisory lock on a connection of its
  own; while another watcher holds it, this one logs `another watcher is active: standing by` and
  polls every second;
- once leading, it starts the informer (deployments_app/informer.py: list, watch, relist, report
  vanished keys) and checks every two seconds that it still holds the lock; if it lost it
  (Postgres restarted), it stops the informer and stands for election again;
- keys go out through the KeyPublisher (deployments_app/key_publisher.py), with the process's
  `Publisher` handed in by `runwatcher`; every REPORT_SECONDS the active watcher logs how many keys
  it published and their lag.
On stop it stops the informer, publishes what is pending (bounded), releases the lock and returns 0.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from prometheus_client import Gauge

from deployments_app.informer import DeploymentInformer
from deployments_app.key_publisher import KeyPublisher
from deployments_app.leader import LeaderLock
from k8sdm.messaging.publisher import Publisher

logger = logging.getLogger(__name__)

ACTIVE = Gauge("k8sdm_watcher_active", "1 while this process is the active watcher")

REPORT_SECONDS = 60.0  # how often the active watcher logs its publishing lag


def watched_namespaces() -> list[str] | None:
    """None means every namespace."""
    configured = settings.K8SDM_WATCH_NAMESPACES or settings.K8SDM_ALLOWED_NAMESPACES
    if "*" in configured:
        return None
    return list(dict.fromkeys(configured))


@dataclass
class DeploymentWatcher:
    stop: threading.Event
    publisher: Publisher
    namespaces: list[str] | None = field(default_factory=watched_namespaces)
    watch_timeout: int = field(default_factory=lambda: settings.K8SDM_WATCH_TIMEOUT_SECONDS)
    resync_seconds: float = field(default_factory=lambda: settings.K8SDM_RESYNC_SECONDS)

    def __post_init__(self):
        self.keys = KeyPublisher(self.publisher, coalesce_seconds=settings.K8SDM_SYNC_COALESCE_SECONDS)

    def run(self) -> int:
        lock = LeaderLock()
        self.keys.start()
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
                try:
                    self._lead(lock)
                finally:
                    ACTIVE.set(0)
        finally:
            lock.release()
            left = self.keys.stop(flush_timeout=3.0)
            logger.info("watcher stopped%s", f" ({left} keys unpublished)" if left else "")
        return 0

    def _lead(self, lock: LeaderLock) -> None:
        term = self.keys.begin_term()  # this term's token: offers of any earlier term's threads are dropped
        informer = DeploymentInformer(keys=self.keys, term=term, namespaces=self.namespaces,
                                      watch_timeout=self.watch_timeout, resync_seconds=self.resync_seconds).start()
        last_report = time.monotonic()
        try:
            while not self.stop.is_set():
                self.stop.wait(2.0)
                if time.monotonic() - last_report >= REPORT_SECONDS:
                    self._report(time.monotonic() - last_report)
                    last_report = time.monotonic()
                if not lock.still_held():
                    logger.error("lost the watcher lock (Postgres connection gone?): stopping watches, re-electing")
                    lock.release()
                    break
        finally:
            self.keys.end_term(term)  # before the join: a thread that outlives it publishes nothing
            informer.stop()

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
