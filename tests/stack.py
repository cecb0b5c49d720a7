"""Helpers for tests that run real k8sdm processes (runworker, runwatcher) against the test
database, the session's NATS server and the Kubernetes API emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def own_publisher(url: str | None = None):
    """A request publisher of the test's own (to NATS at `url`, default settings.NATS_URL),
    installed as the process's for the block, then stopped; the previous one is put back."""
    from k8sdm.messaging.publisher import Publisher
    from requests_app import publishing

    with publishing.installed(publishing.RequestPublisher(Publisher(name="k8sdm-test", url=url))) as publisher:
        yield publisher


def submit(**kwargs):
    """A request as the API stores it (factory), published the way the API publishes it."""
    from requests_app.outbox import message_for
    from requests_app.publishing import publish_now
    from tests.factories import DeploymentRequestFactory

    req = DeploymentRequestFactory(**kwargs)
    publish_now(message_for(req))
    return req


def wait_until(predicate, *, timeout: float = 60.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test with `message` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message} (last value: {value!r})")
        time.sleep(interval)


FAST_SETTINGS = {
    "K8SDM_RETRY_BASE_SECONDS": 0.05,
    "K8SDM_RETRY_MAX_SECONDS": 0.5,
    "K8SDM_APPLY_MAX_ATTEMPTS": 4,
    "K8SDM_ACK_WAIT_SECONDS": 3.0,
    "K8SDM_OUTBOX_GRACE_SECONDS": 0.3,
    "K8SDM_OUTBOX_INTERVAL_SECONDS": 0.1,
    "K8SDM_K8S_TIMEOUT_SECONDS": 5.0,
    "K8SDM_WATCH_TIMEOUT_SECONDS": 5,
}


def isolate_stream(settings) -> dict:
    """A stream and subject prefix of this test's own, so no message leaks between tests."""
    suffix = uuid.uuid4().hex[:10]
    values = {"K8SDM_STREAM": f"T{suffix}", "K8SDM_SUBJECT_PREFIX": f"t{suffix}"}
    for key, value in {**values, **FAST_SETTINGS}.items():
        setattr(settings, key, value)
    return values


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        wait_until(lambda: text in self.log() or self.proc.poll() is not None, timeout=timeout,
                   message=f"{self.name} to log {text!r}")
        if text not in self.log():
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; a process that overstays is killed (never leaked) and the test fails."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop within {timeout:.0f}s of SIGTERM:\n{self.log()[-3000:]}")
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()


@dataclass
class Stack:
    env: dict
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str]) -> Proc:
        proc = Proc(name, args, self.env, self.tmp / f"{name}-{len(self.procs)}.log").start()
        self.procs.append(proc)
        return proc

    def worker(self, *extra: str, ready: bool = True) -> Proc:
        proc = self._spawn("worker", [sys.executable, "manage.py", "runworker", "--metrics-port", "0", *extra])
        if ready:
            proc.wait_for_log("worker ready")
        return proc

    def watcher(self, *extra: str) -> Proc:
        return self._spawn("watcher", [sys.executable, "manage.py", "runwatcher", "--metrics-port", "0", *extra])

    def api(self) -> tuple[Proc, str]:
        """The api as production runs it: gunicorn on k8sdm.wsgi, on a free port."""
        from devstack._proc import free_port, wait_for_port

        port = free_port()
        proc = self._spawn("api", [sys.executable, "-m", "gunicorn", "k8sdm.wsgi", "--bind", f"127.0.0.1:{port}",
                                   "--workers", "2"])
        wait_for_port("127.0.0.1", port, timeout=30, proc=proc.proc, what="the api")
        return proc, f"http://127.0.0.1:{port}"

    def stop_all(self) -> None:
        errors = []
        for proc in self.procs:
            if proc.proc.poll() is None:
                try:
                    proc.terminate()
                except AssertionError as exc:
                    errors.append(str(exc))
        if errors:
            raise AssertionError("\n".join(errors))

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} ({p.log_path.name}) =====\n{p.log()[-4000:]}" for p in self.procs)


def make_stack(settings, tmp_path: Path, kubeconfig: str, **overrides) -> Stack:
    stream = isolate_stream(settings)
    env = dict(os.environ)
    env.update({key: str(value) for key, value in {**stream, **FAST_SETTINGS}.items()})
    env.update(
        DATABASE_URL=database_url(),
        NATS_URL=settings.NATS_URL,
        K8SDM_KUBECONFIG=kubeconfig,
        K8SDM_ENV="test",
        DATABASE_CONN_MAX_AGE="0",
        PYTHONUNBUFFERED="1",
    )
    env.update({key: str(value) for key, value in overrides.items()})
    for key, value in overrides.items():
        if hasattr(settings, key):
            setattr(settings, key, type(getattr(settings, key))(value))
    return Stack(env=env, tmp=tmp_path)
