"""`KeyPublisher`: the watcher's outbox of sync keys, published to JetStream from a thread of its own.

The informer `offer`s keys (namespace/name and the resourceVersion seen) as events arrive; a burst
for one key is coalesced (only the newest resourceVersion waiting is sent). The thread waits
`coalesce_seconds` (K8SDM_SYNC_COALESCE_SECONDS) after the oldest waiting key arrived before it
takes a batch, so the status steps of one rollout (the controller writes 2-3 in a few ms) become one
sync instead of one each. The thread publishes
each batch as SyncDeployment messages with the process's `Publisher` (Nats-Msg-Id
namespace/name/resourceVersion, so a replayed event is dropped by JetStream); a key that failed is
kept (unless a newer offer replaced it) and retried after the shared backoff; a NATS outage is
logged once when it starts and once when it ends. `stop()` tries to
publish what is left for a bounded time, then ends and joins the thread.

Leadership terms: each term of the watcher takes a token (`begin_term`) and its informer offers
keys with it; `end_term` retires it. An offer with a token that is not the current one is dropped,
so a watch thread of an earlier term that outlived its join can never publish after stepping down
or re-election (the one `_leading` flag that served every term let it).
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import Counter, Histogram

from k8sdm import backoff
from k8sdm.messaging.messages import SyncDeployment
from k8sdm.messaging.publisher import Publisher
from k8sdm.outages import Outage

logger = logging.getLogger(__name__)

NATS = Outage("NATS", meanwhile="keeping the sync keys and retrying with backoff", refusals="failed publish round(s)")

PUBLISHED = Counter("k8sdm_watcher_published_total", "Sync keys published")
STALE_OFFERS = Counter("k8sdm_watcher_stale_offers_total", "Keys offered by a watch thread of an ended term (dropped)")
PUBLISH_FAILURES = Counter("k8sdm_watcher_publish_failures_total", "Sync keys that failed to publish (retried)")
LAG = Histogram("k8sdm_watcher_publish_lag_seconds", "From receiving an event to JetStream acking its key",
                buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))


class KeyPublisher:
    def __init__(self, publisher: Publisher, *, coalesce_seconds: float = 0.0):
        self.publisher = publisher
        self.coalesce_seconds = coalesce_seconds
        self._pending: dict[tuple[str, str], tuple[str, float]] = {}
        self._cond = threading.Condition()
        self._lags: list[float] = []  # since the last report
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._term = 0  # the current leadership term's token (0: none)
        self._terms = 0

    def start(self) -> "KeyPublisher":
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sync-key-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self, flush_timeout: float = 3.0) -> int:
        """Publish what is pending for up to `flush_timeout`, then end the thread; returns the
        number of keys left unpublished."""
        deadline = time.monotonic() + flush_timeout
        while self.backlog() and time.monotonic() < deadline and self._thread and self._thread.is_alive():
            time.sleep(0.05)
        self._stopping.set()
        with self._cond:
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(flush_timeout + 3.0)
            self._thread = None
        return self.backlog()

    def begin_term(self) -> int:
        """A new leadership term: returns its token (the only one whose offers are taken)."""
        with self._cond:
            self._terms += 1
            self._term = self._terms
            return self._term

    def end_term(self, term: int) -> None:
        with self._cond:
            if self._term == term:
                self._term = 0

    def offer(self, namespace: str, name: str, msg_rv: str, *, term: int) -> bool:
        """Queue a key for publishing if `term` is the current term; False (dropped) otherwise."""
        with self._cond:
            if term != self._term or not term:
                STALE_OFFERS.inc()
                return False
            self._pending[(namespace, name)] = (msg_rv, time.monotonic())
            self._cond.notify()
            return True

    def backlog(self) -> int:
        with self._cond:
            return len(self._pending)

    def take_lags(self) -> list[float]:
        with self._cond:
            lags, self._lags = self._lags, []
        return lags

    def _run(self) -> None:
        retry = backoff.Backoff(base=0.1, cap=5.0)
        while not self._stopping.is_set():
            with self._cond:
                while not self._pending and not self._stopping.is_set():
                    self._cond.wait(0.5)
                self._coalesce()
                batch, self._pending = self._pending, {}
            if not batch:
                continue
            failed, error = self._publish(batch)
            if failed:
                delay = retry.next()
                PUBLISH_FAILURES.inc(failed)
                if not NATS.ongoing:
                    logger.warning("could not publish %d sync key(s) (%s); retrying in %.1fs", failed, error, delay)
                NATS.refused(error)
                self._stopping.wait(delay)
            else:
                NATS.recovered()
                retry.reset()

    def _coalesce(self) -> None:
        """With the condition held: wait until the oldest waiting key is `coalesce_seconds` old
        (offers that arrive meanwhile replace older ones of the same key). Not when stopping."""
        if not self._pending or self.coalesce_seconds <= 0:
            return
        oldest = min(received for _, received in self._pending.values())
        while not self._stopping.is_set():
            left = oldest + self.coalesce_seconds - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _publish(self, batch: dict) -> tuple[int, str]:
        items = list(batch.items())
        messages = [SyncDeployment(namespace=ns, name=name, resource_version=rv) for (ns, name), (rv, _) in items]
        results = self.publisher.publish_many([(m.subject, m.to_bytes(), m.msg_id) for m in messages])
        failed, error = 0, ""
        now = time.monotonic()
        with self._cond:
            for (key, (rv, received)), result in zip(items, results):
                if result.ok:
                    LAG.observe(now - received)
                    self._lags.append(now - received)
                else:
                    failed += 1
                    error = error or result.error
                    self._pending.setdefault(key, (rv, received))  # a newer offer wins
        PUBLISHED.inc(len(items) - failed)
        return failed, error
