"""What every long-lived daemon (runworker, runwatcher) needs: a stop flag set by SIGTERM/SIGINT,
Postgres connection hygiene (and its outage, logged once when it starts and once when it ends), a
metrics port, a name Postgres shows for its connections, and an exit that does not wait for a
thread stuck in a network call."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.backends.signals import connection_created

from k8sdm.outages import Outage

logger = logging.getLogger(__name__)

# The daemon's PostgreSQL outage: work is nak'ed (and redelivered) or retried next round meanwhile.
POSTGRES = Outage("PostgreSQL", meanwhile="retrying (messages are redelivered)", refusals="operation(s) retried")


def _postgres_connected(sender, connection, **kwargs) -> None:
    POSTGRES.recovered()


connection_created.connect(_postgres_connected, dispatch_uid="k8sdm.runtime.postgres_connected")


def install_stop_signals(stop: threading.Event) -> None:
    def handler(signum, frame):
        if not stop.is_set():
            logger.info("received %s: finishing in-flight work and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def set_application_name(name: str) -> None:
    """Shown in pg_stat_activity, so ops can tell the api, worker and watcher apart."""
    for alias in settings.DATABASES:
        options = settings.DATABASES[alias].setdefault("OPTIONS", {})
        options["application_name"] = name
        connections[alias].close()


_hygiene = threading.local()


def db_hygiene(*, every: float = 0.0) -> None:
    """Call between units of work (never inside an atomic block): drops connections that are
    broken or past CONN_MAX_AGE, so a Postgres restart heals on its own.

    Each call costs the next query a round trip (CONN_HEALTH_CHECKS' `SELECT 1`). `every`: at
    most that often per thread, except right after a database error on the thread's connection
    (a dead connection fails its unit of work, which is retried, and the next call drops it)."""
    if every:
        now = time.monotonic()
        errored = any(conn.errors_occurred for conn in connections.all(initialized_only=True))
        if not errored and now - getattr(_hygiene, "at", float("-inf")) < every:
            return
        _hygiene.at = now
    close_old_connections()


def start_metrics_server(port: int) -> None:
    if not port:
        return
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr="0.0.0.0" if not settings.LOCAL else "127.0.0.1")
        logger.info("metrics on :%d/metrics", port)
    except OSError as exc:
        logger.warning("metrics port %d unavailable (%s): metrics not exposed", port, exc)


def exit_now(code: int) -> None:
    """Exit with `code` without waiting for threads still running (a handler stuck in a network
    call until its timeout): their messages are unacked, so JetStream redelivers them."""
    stuck = [t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()
             and not t.daemon]
    if stuck:
        logger.warning("exiting with %d thread(s) still busy (%s): their messages will be redelivered",
                       len(stuck), ", ".join(sorted(stuck)[:5]))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
