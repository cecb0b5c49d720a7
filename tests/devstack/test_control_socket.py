"""Each api that `make run` starts has a gunicorn control socket of its own, in its data directory.

gunicorn's default is one path per user (~/.gunicorn/gunicorn.ctl): a second gunicorn took it over,
and stopping either removed the other's, so `gunicornc` reached the wrong server or none."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from gunicorn.ctl.client import ControlClient

from devstack._proc import free_port, wait_for_port
from devstack.supervisor import ROOT, api_command

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def start_api(tmp_path):
    procs = []

    def start(name: str) -> tuple[subprocess.Popen, int, str]:
        port = free_port()
        data_dir = tmp_path / name
        data_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
        log = open(data_dir / "gunicorn.log", "wb")
        proc = subprocess.Popen(api_command(port=port, control_socket=data_dir / "gunicorn.ctl"), cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_for_port("127.0.0.1", port, timeout=60, proc=proc, what="gunicorn")
        control_socket = data_dir / "gunicorn.ctl"
        while not control_socket.exists():  # the arbiter opens it after binding
            assert proc.poll() is None, (data_dir / "gunicorn.log").read_text()
            time.sleep(0.05)
        return proc, port, str(control_socket)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def bind_of(control_socket: str) -> str:
    with ControlClient(control_socket, timeout=10) as client:
        return client.send_command("show config")["bind"][0]


def test_stopping_one_api_leaves_the_control_socket_of_another_in_place(start_api):
    first, first_port, first_socket = start_api("first")
    second, second_port, second_socket = start_api("second")
    assert first_socket != second_socket
    assert bind_of(first_socket) == f"127.0.0.1:{first_port}"
    assert bind_of(second_socket) == f"127.0.0.1:{second_port}"

    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0

    assert os.path.exists(second_socket)
    assert bind_of(second_socket) == f"127.0.0.1:{second_port}"  # still answers, and it is the second api


def test_a_data_directory_too_deep_for_a_unix_socket_gets_no_control_socket_rather_than_a_shared_one(tmp_path):
    deep = tmp_path / ("d" * 100) / "gunicorn.ctl"
    args = api_command(port=8000, control_socket=deep)
    assert "--no-control-socket" in args and "--control-socket" not in args


def test_each_bench_stack_gives_its_api_a_control_socket_of_its_own():
    from tests.bench._stack import BenchStack

    first, second = BenchStack(), BenchStack()
    try:
        sockets = []
        for stack in (first, second):
            args = stack.api_command(free_port(), workers=1)
            socket = args[args.index("--control-socket") + 1]
            assert socket.startswith(str(stack.tmp)), args
            sockets.append(socket)
        assert sockets[0] != sockets[1]
    finally:
        first.stop()
        second.stop()
