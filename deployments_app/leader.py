"""Leader election for the watcher: only one is active.

`LeaderLock` is a session-level Postgres advisory lock held on a connection of its own (a second
Django connection to the same database, so Django's backend is the only Postgres client). Others
stand by and take over within a second or two of the holder dying: its connection closes, so the
lock goes with it, kill -9 included. The holder checks that it still has the lock (`still_held`)
and steps down if it lost it (e.g. Postgres restarted). Use it from one thread.
"""

from __future__ import annotations

import copy
import logging

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

LEADER_LOCK = (0x6B38, 0x7761)  # advisory lock key: ("k8", "wa")


class LeaderLock:
    def __init__(self, *, alias: str = DEFAULT_DB_ALIAS, application_name: str = "k8sdm-watcher-leader"):
        self.alias = alias
        self.application_name = application_name
        self._conn = None
        self._unreachable = False

    def _connection(self):
        if self._conn is None:
            conn = connections.create_connection(self.alias)  # not shared with the thread's own
            conn.settings_dict = copy.deepcopy(conn.settings_dict)
            conn.settings_dict.setdefault("OPTIONS", {})["application_name"] = self.application_name
            self._conn = conn
        return self._conn

    def try_acquire(self) -> bool:
        try:
            with self._connection().cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", LEADER_LOCK)
                held = bool(cursor.fetchone()[0])
        except DatabaseError as exc:
            if not self._unreachable:
                logger.warning("cannot reach Postgres for leader election: %s", exc)
                self._unreachable = True
            self.release()
            return False
        if self._unreachable:
            logger.info("Postgres is reachable again for leader election")
            self._unreachable = False
        return held

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                    "AND classid = %s AND objid = %s AND granted",
                    LEADER_LOCK,
                )
                return cursor.fetchone()[0] > 0
        except DatabaseError:
            return False

    def release(self) -> None:
        """Close the connection: closing the session releases the lock."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except DatabaseError:
                pass
