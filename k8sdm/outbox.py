"""The transactional outbox's shared parts: claiming pending rows and stamping acknowledged ones.

Two outboxes use them: the requests' (a request row with `published_at IS NULL`,
requests_app/outbox.py) and the events' (an `EventOutbox` row, events_app/outbox.py). A row is
written in the same transaction as the state change it announces; right after the commit the
process publishes it and stamps `published_at` once JetStream acknowledged it; the relay in every
`runworker` (requests_app/relay.py) publishes what that missed (NATS down, the process killed
between commit and publish). Every message carries a Nats-Msg-Id, so a re-publish inside
JetStream's duplicate window is dropped.

- `claim_pending`: claims a batch with `FOR UPDATE SKIP LOCKED` plus a short lease, so several
  relays never publish the same row at once and no transaction is held open across the network.
- `Stamper`: stamps acknowledged rows in batches on a thread of its own, so a response (or a
  worker's transition) never pays a second commit; a lost stamp only means one more publish. It
  lingers `K8SDM_OUTBOX_STAMP_LINGER_SECONDS` after the first ack of a batch, so a burst's acks
  share one UPDATE (and one commit) instead of one each; that must stay well under
  `K8SDM_OUTBOX_GRACE_SECONDS`, after which the relay would publish the row again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30


def claim_pending(*, table: str, returning: str, limit: int, grace_seconds: float) -> list[tuple]:
    """Claim up to `limit` rows of `table` not yet published, created at least `grace_seconds` ago
    (the publisher's own after-commit publish gets that long first), oldest first; return the
    `returning` columns of each. Commits at once; the lease keeps other relays off the rows.
    `table` needs the columns id, created_at, published_at and outbox_lease_until."""
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET outbox_lease_until = %s
            WHERE id IN (
                SELECT id FROM {table}
                WHERE published_at IS NULL
                  AND created_at <= %s
                  AND (outbox_lease_until IS NULL OR outbox_lease_until < %s)
                ORDER BY id
                LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING {returning}
            """,
            [now + timedelta(seconds=LEASE_SECONDS), now - timedelta(seconds=grace_seconds), now, limit],
        )
        return sorted(cursor.fetchall())


class Stamper:
    """Calls `mark(pks)` for the rows JetStream acknowledged, in batches, on a thread of its own."""

    MAX_BATCH = 1000

    def __init__(self, mark: Callable[[list[int]], int], *, what: str = "row", linger: float | None = None):
        self._mark = mark
        self._what = what
        self._linger = settings.K8SDM_OUTBOX_STAMP_LINGER_SECONDS if linger is None else linger
        self._pks: list[int] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._flush = False  # someone waits for the queue to be written: no lingering
        self._busy = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"outbox-stamper-{self._what}", daemon=True)
        self._thread.start()

    def add(self, pk: int) -> None:
        with self._cond:
            self._pks.append(pk)
            self._cond.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        """True once every queued stamp is written (or failed and logged)."""
        with self._cond:
            self._flush = True
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: not self._pks and not self._busy, timeout)
            finally:
                self._flush = False  # later acks linger again

    def stop(self, timeout: float = 5.0) -> None:
        """Stamp what is queued, then end the thread."""
        if self._thread is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._pks and not self._stopping:
                        self._cond.wait()
                    if not self._pks:
                        return
                    # Linger: the acks of a burst arrive within milliseconds of each other.
                    deadline = time.monotonic() + self._linger
                    while (not self._stopping and not self._flush and len(self._pks) < self.MAX_BATCH
                           and (left := deadline - time.monotonic()) > 0):
                        self._cond.wait(left)
                    batch, self._pks, self._busy = self._pks[:self.MAX_BATCH], self._pks[self.MAX_BATCH:], True
                try:
                    close_old_connections()
                    self._mark(batch)
                except DatabaseError as exc:
                    logger.warning("could not stamp %d published %s(s) (%s): the relay will re-publish them",
                                   len(batch), self._what, exc)
                except Exception:  # noqa: BLE001 - one bad batch must not end the thread for good
                    logger.exception("could not stamp %d published %s(s): the relay will re-publish them",
                                     len(batch), self._what)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        finally:
            connection.close()
