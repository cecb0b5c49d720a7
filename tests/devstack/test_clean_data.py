"""`make clean-data` empties what `make run` keeps (PostgreSQL, NATS, the emulator's objects), and
never while a `make run` uses it; two `make run` never share one data directory."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.devstack.helpers import ROOT, devstack_env, run_devstack

pytestmark = pytest.mark.timeout(120)


def make_clean_data(directory) -> subprocess.CompletedProcess:
    env = {**os.environ, "K8SDM_DATA_DIR": str(directory)}
    return subprocess.run(["make", "--no-print-directory", "clean-data"], cwd=ROOT, env=env, capture_output=True,
                          text=True)


@pytest.fixture
def used_data_dir(tmp_path):
    """A data directory as make run leaves it."""
    data = tmp_path / "data"
    for part in ("postgres", "nats/jetstream", "emulator"):
        (data / part).mkdir(parents=True)
        (data / part / "state").write_text("kept between runs")
    (data / "admin-password").write_text("secret")
    return data


def test_make_clean_data_removes_the_database_the_queue_and_the_emulators_objects(used_data_dir):
    done = make_clean_data(used_data_dir)
    assert done.returncode == 0, done.stderr
    assert not used_data_dir.exists()


def test_make_clean_data_refuses_while_a_make_run_uses_the_directory(used_data_dir):
    (used_data_dir / "devstack.pid").write_text(f"{os.getpid()}\n")  # a live process: as make run leaves it
    done = make_clean_data(used_data_dir)
    assert done.returncode != 0
    assert f"make run (pid {os.getpid()}) is using {used_data_dir}" in done.stdout
    assert (used_data_dir / "postgres" / "state").exists() and (used_data_dir / "emulator" / "state").exists()


def test_make_clean_data_ignores_the_pid_of_a_make_run_that_is_gone(used_data_dir):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (used_data_dir / "devstack.pid").write_text(f"{dead.pid}\n")
    assert make_clean_data(used_data_dir).returncode == 0
    assert not used_data_dir.exists()


def test_a_second_make_run_on_the_same_data_directory_is_refused_before_it_starts_anything(used_data_dir):
    (used_data_dir / "devstack.pid").write_text(f"{os.getpid()}\n")
    code, output = run_devstack(devstack_env(used_data_dir))
    assert code != 0
    assert f"another make run (pid {os.getpid()}) is using {used_data_dir}" in output
    assert "K8SDM_DATA_DIR" in output and "starting PostgreSQL" not in output
    assert (used_data_dir / "devstack.pid").read_text() == f"{os.getpid()}\n"  # the other run's, left alone
