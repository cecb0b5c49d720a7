"""`make run` checks every port it will listen on before it starts or announces anything, and
names the variable that moves a port that is taken, shared or invalid."""

from __future__ import annotations

import socket

import pytest

from tests.devstack.helpers import PORT_VARIABLES, devstack_env, run_devstack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def listener():
    """A port some other process listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def assert_refused_before_anything_started(code: int, output: str, data_dir) -> None:
    assert code != 0, output
    assert "k8sdm is running" not in output
    assert "starting PostgreSQL" not in output and "starting NATS" not in output
    assert "starting the Kubernetes API emulator" not in output
    assert not data_dir.exists()  # nothing was created either


@pytest.mark.parametrize("variable", PORT_VARIABLES)
def test_a_taken_port_stops_make_run_naming_the_variable_that_moves_it(variable, listener, tmp_path):
    data_dir = tmp_path / "data"
    code, output = run_devstack(devstack_env(data_dir, **{variable: str(listener)}))
    assert_refused_before_anything_started(code, output, data_dir)
    assert f"port {listener} (" in output and "is taken by another process" in output, output
    assert f"set {variable} to a free port" in output, output
    assert sum(v in output for v in PORT_VARIABLES) == 1, output  # only the one that is taken


def test_every_taken_port_is_named_at_once(tmp_path):
    holders = []
    env = devstack_env(tmp_path / "data")
    try:
        for variable in ("DEVSTACK_API_PORT", "DEVSTACK_EMULATOR_PORT"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            holders.append(sock)
            env[variable] = str(sock.getsockname()[1])
        code, output = run_devstack(env)
    finally:
        for sock in holders:
            sock.close()
    assert_refused_before_anything_started(code, output, tmp_path / "data")
    assert "set DEVSTACK_API_PORT to a free port" in output and "set DEVSTACK_EMULATOR_PORT to a free port" in output


def test_two_parts_on_one_port_are_refused_naming_both_variables(tmp_path):
    env = devstack_env(tmp_path / "data")
    env["DEVSTACK_NATS_PORT"] = env["DEVSTACK_API_PORT"]
    code, output = run_devstack(env)
    assert_refused_before_anything_started(code, output, tmp_path / "data")
    assert f"DEVSTACK_API_PORT and DEVSTACK_NATS_PORT are both {env['DEVSTACK_API_PORT']}" in output, output


@pytest.mark.parametrize("value", ["eighty", "70000"])
def test_a_port_that_is_not_a_port_number_is_refused_naming_the_variable(value, tmp_path):
    code, output = run_devstack(devstack_env(tmp_path / "data", DEVSTACK_PG_PORT=value))
    assert_refused_before_anything_started(code, output, tmp_path / "data")
    assert f"DEVSTACK_PG_PORT={value}" in output or f"DEVSTACK_PG_PORT='{value}'" in output, output


def test_a_port_of_a_part_that_is_not_started_is_not_checked(listener, tmp_path):
    """With DATABASE_URL set, make run starts no PostgreSQL: DEVSTACK_PG_PORT may be anything."""
    env = devstack_env(tmp_path / "data", DEVSTACK_PG_PORT=str(listener), DATABASE_URL="postgres://x@127.0.0.1:1/x",
                       DEVSTACK_API_PORT=str(listener))
    code, output = run_devstack(env)
    assert code != 0
    assert "set DEVSTACK_API_PORT to a free port" in output
    assert "DEVSTACK_PG_PORT" not in output
