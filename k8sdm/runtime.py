"""What every long-lived daemon (runworker, runwatcher) needs: a stop flag set by SIGTERM/SIGINT,
Postgres connection hygiene, a metrics port, and a name Postgres shows for its connections."""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


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


def db_hygiene() -> None:
    """Call between units of work (never inside an atomic block): drops connections that are
    broken or past CONN_MAX_AGE, so a Postgres restart heals on its own."""
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
