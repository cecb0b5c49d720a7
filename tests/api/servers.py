"""A real gunicorn serving k8sdm.wsgi on the test database, and a raw HTTP call to it.

Import the fixture into a test module: `from tests.api.servers import gunicorn  # noqa: F401`.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from devstack._proc import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    """start(*extra_args, **env) -> port of a gunicorn serving k8sdm.wsgi on the test database, with
    `env` over the defaults (rate limit off, text logs); its log is tmp_path / f"gunicorn-{port}.log"."""
    procs = []

    def start(*extra: str, **extra_env: str) -> int:
        port = free_port()
        env = {**os.environ, "DATABASE_URL": _database_url(), "K8SDM_ENV": "test", "DJANGO_DEBUG": "0",
               "DJANGO_SETTINGS_MODULE": "k8sdm.settings", "K8SDM_RATE_LIMIT": "off", "LOG_FORMAT": "text",
               **extra_env}
        log = open(tmp_path / f"gunicorn-{port}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "k8sdm.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             *extra],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append(proc)
        wait_for_port("127.0.0.1", port, timeout=30, proc=proc, what="gunicorn")
        return port

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def call(port: int, method: str, path: str, headers: list[tuple[str, str]], body: dict | None = None):
    """(status, parsed JSON body) of one HTTP request to 127.0.0.1:port; see call_full for headers."""
    status, _, parsed = call_full(port, method, path, headers, body)
    return status, parsed


def call_full(port: int, method: str, path: str, headers: list[tuple[str, str]], body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.putrequest(method, path)
    data = json.dumps(body).encode() if body is not None else b""
    for name, value in headers:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
