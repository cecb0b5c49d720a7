"""The identity header through a real gunicorn (the server `make run` and production use).

gunicorn's default (`--header-map drop`) drops any header with an underscore before Django sees it,
so `X_User_Id` can never pose as `X-User-Id`. With `--header-map dangerous` it maps both to one
environ key and joins the values: the API refuses that as ambiguous (401). Run gunicorn with the
default or `--header-map refuse` (README "API").
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
from requests_app.models import DeploymentRequest

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    """start(*extra_args) -> port of a gunicorn serving k8sdm.wsgi on the test database."""
    procs = []

    def start(*extra: str) -> int:
        port = free_port()
        env = {**os.environ, "DATABASE_URL": _database_url(), "K8SDM_ENV": "test", "DJANGO_DEBUG": "0",
               "DJANGO_SETTINGS_MODULE": "k8sdm.settings", "K8SDM_RATE_LIMIT": "off"}
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
    return response.status, json.loads(raw) if raw else None


CREATE = "/api/v1/deployments/requests/create"


def test_through_gunicorn_a_request_with_the_header_is_accepted(gunicorn):
    port = gunicorn()
    status, body = call(port, "POST", CREATE, [("X-User-Id", "alice")], {"identifier": "gw", "image": "nginx"})
    assert status == 202, body
    assert DeploymentRequest.objects.get().user.user_external_id == "alice"


def test_through_gunicorn_an_underscore_header_alone_is_dropped_so_the_caller_is_unidentified(gunicorn):
    port = gunicorn()
    status, body = call(port, "POST", CREATE, [("X_User_Id", "mallory")], {"identifier": "gw", "image": "nginx"})
    assert status == 401
    assert body["error"]["code"] == "missing_identity"
    assert not DeploymentRequest.objects.exists()


def test_through_gunicorn_an_underscore_header_cannot_override_the_gateways(gunicorn):
    port = gunicorn()
    status, body = call(port, "GET", "/api/v1/requests/", [("X-User-Id", "alice"), ("X_User_Id", "mallory")])
    assert status == 200  # mallory's copy never reached Django


def test_through_gunicorn_in_dangerous_mode_both_headers_are_refused_as_ambiguous(gunicorn):
    port = gunicorn("--header-map", "dangerous")
    for headers in ([("X-User-Id", "alice"), ("X_User_Id", "mallory")], [("X_User_Id", "mallory"), ("X-User-Id", "alice")]):
        status, body = call(port, "POST", CREATE, headers, {"identifier": "gw", "image": "nginx"})
        assert status == 401
        assert body["error"]["code"] == "ambiguous_identity"
    assert not DeploymentRequest.objects.exists()


def test_through_gunicorn_a_large_body_is_413_json(gunicorn):
    port = gunicorn()
    body = {"identifier": "gw", "image": "nginx", "annotations": {"a": "x" * 70_000}}
    status, answer = call(port, "POST", CREATE, [("X-User-Id", "alice")], body)
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"
