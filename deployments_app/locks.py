"""The per-deployment lock: one deployment's requests and syncs run one at a time, across every
worker process.

A session-level Postgres advisory lock keyed by the deployment's id (`lock_key_sql`, the one place
the key is formed; callers that read a row and take its lock in one round trip embed it in their
SQL). Session level, so no transaction stays open across a Kubernetes call, and a killed worker's
lock dies with its connection. Taken on the thread's Django connection: release it on the same
thread (`unlock`).
"""

from __future__ import annotations

import threading
import time

from django.db import DatabaseError, connection

from k8sdm import backoff

# The high bits keep these keys apart from any other advisory lock; the id goes below.
LOCK_BASE = 0x6B38 << 40


def lock_key_sql(deployment_id_sql: str) -> str:
    """The SQL expression of the lock key for a deployment id given as SQL (a column or `%s`)."""
    return f"({LOCK_BASE} + {deployment_id_sql})"


def try_lock(deployment_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({lock_key_sql('%s')})", [deployment_id])
        return bool(cursor.fetchone()[0])


def unlock(deployment_id: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_unlock({lock_key_sql('%s')})", [deployment_id])
    except DatabaseError:
        connection.close()  # a lost connection has released the lock already


def acquire(deployment_id: int, *, wait: float, stop: threading.Event | None = None, heartbeat=None) -> bool:
    """Try for up to `wait` seconds (polling with a short backoff); False if another holds it
    that long or the stop flag is set. `heartbeat()` is called between tries."""
    deadline = time.monotonic() + wait
    retry = backoff.Backoff(base=0.01, cap=0.2, jitter=0.0)
    while True:
        if try_lock(deployment_id):
            return True
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            return False
        if heartbeat:
            heartbeat()
        time.sleep(retry.next())
