"""Running `python -m devstack` (what `make run` runs) from a test: free ports, a data directory of
the test's own, and the labelled output read as it comes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack._proc import free_port

ROOT = Path(__file__).resolve().parents[2]

PORT_VARIABLES = ("DEVSTACK_API_PORT", "DEVSTACK_PG_PORT", "DEVSTACK_NATS_PORT", "DEVSTACK_EMULATOR_PORT",
                  "K8SDM_WORKER_METRICS_PORT", "K8SDM_WATCHER_METRICS_PORT", "DEVSTACK_EVENTS_PORT",
                  "K8SDM_NOTIFIER_METRICS_PORT")
BANNER = r"admin\s+(http://\S+/admin/)\s+\(login: (\w+) / (\S+)\)"


@contextmanager
def data_directory():
    """A data directory for make run outside pytest's tmp_path: pytest makes its base directory
    0700 again whenever a session starts, which locks out the PostgreSQL system user the stack
    runs as on a root machine. (Also short enough for the control socket's path.)"""
    parent = Path(tempfile.mkdtemp(prefix="k8sdm-devstack-"))
    try:
        yield parent / "data"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def devstack_env(data_dir: Path, **overrides: str) -> dict:
    """The environment of a fresh shell running `make run`, every port free, data under data_dir."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "NATS_URL", "K8SDM_KUBECONFIG", "KUBECONFIG", "DJANGO_SETTINGS_MODULE",
                        "DJANGO_DEBUG", "GUNICORN_CMD_ARGS")}
    env.update(K8SDM_DATA_DIR=str(data_dir), K8SDM_ENV="local")
    env.update({variable: str(free_port()) for variable in PORT_VARIABLES})
    env.update(overrides)
    return env


class Output:
    def __init__(self, proc):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc):
        for raw in iter(proc.stdout.readline, b""):
            self.lines.append(raw.decode(errors="replace"))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, proc, *, after: int = 0) -> re.Match:
        """The first match of pattern in the output from character `after` on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text[after:])
            if match:
                return match
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in the output:\n{self.text[-4000:]}")

    def join(self) -> None:
        """Every line, once the process has exited."""
        self._thread.join()


@dataclass
class Devstack:
    proc: subprocess.Popen
    out: Output
    env: dict

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['DEVSTACK_API_PORT']}"

    def wait_until_serving(self, timeout: float = 150) -> re.Match:
        """The banner (admin URL, login, password), then the worker and the active watcher."""
        banner = self.out.wait_for(BANNER, timeout, self.proc)
        self.out.wait_for(r"worker ready", 60, self.proc)
        self.out.wait_for(r"this watcher is now active", 60, self.proc)
        return banner

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(60)
        self.out.join()
        return code


def start_devstack(env: dict) -> Devstack:
    proc = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    return Devstack(proc, Output(proc), env)


def run_devstack(env: dict) -> tuple[int, str]:
    """A run expected to end on its own (a refused start): exit code and output."""
    done = subprocess.run([sys.executable, "-m", "devstack"], cwd=ROOT, env=env, capture_output=True)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")
