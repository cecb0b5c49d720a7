"""Starts a throwaway PostgreSQL and NATS JetStream for the test session.

Loaded with `-p devstack.pytest_plugin` (pytest.ini) so that it runs before pytest-django reads
the settings: unless DATABASE_URL / NATS_URL are already set, it starts both servers on free
ports under a temporary directory, exports the URLs, and stops them when the session ends.
The machine's own PostgreSQL (5432) and NATS (4222) are never used.

Every gunicorn a test starts runs without a control socket (GUNICORN_CMD_ARGS): gunicorn's
default path is one per user, so parallel test sessions, and `make run`, would take it from
each other.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ._proc import free_port
from .nats import NatsServer
from .postgres import PostgresServer

_started: list = []
_tmpdir: Path | None = None


def _stop_all() -> None:
    global _tmpdir
    while _started:
        _started.pop().stop()
    if _tmpdir is not None:
        shutil.rmtree(_tmpdir, ignore_errors=True)
        _tmpdir = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _tmpdir
    # xdist workers inherit the controller's environment, so only the controller starts servers.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    os.environ.setdefault("K8SDM_ENV", "test")
    os.environ.setdefault("GUNICORN_CMD_ARGS", "--no-control-socket")
    need_pg = not os.environ.get("DATABASE_URL")
    need_nats = not os.environ.get("NATS_URL")
    if not (need_pg or need_nats):
        return
    _tmpdir = Path(tempfile.mkdtemp(prefix="k8sdm-test-"))
    atexit.register(_stop_all)
    if need_pg:
        log = open(_tmpdir / "postgres.log", "ab")
        pg = PostgresServer(_tmpdir / "pg", free_port(), fast_unsafe=True).start(log_file=log)
        _started.append(pg)
        os.environ["DATABASE_URL"] = pg.url
    if need_nats:
        log = open(_tmpdir / "nats.log", "ab")
        nats = NatsServer(_tmpdir / "nats", free_port()).start(log_file=log)
        _started.append(nats)
        os.environ["NATS_URL"] = nats.url


def pytest_unconfigure(config):
    _stop_all()


def nats_server_for_tests() -> NatsServer | None:
    """The NatsServer this session started (None if NATS_URL came from outside)."""
    for server in _started:
        if isinstance(server, NatsServer):
            return server
    return None
