"""A throwaway k8sdm stack for benchmarks: PostgreSQL, NATS, the emulator and real processes.

Everything on free ports under a temporary directory, torn down on exit (no leftovers)."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from devstack._proc import free_port, wait_for_port  # noqa: E402
from devstack.nats import NatsServer  # noqa: E402
from devstack.postgres import PostgresServer  # noqa: E402
from devstack.supervisor import control_socket_args  # noqa: E402


class BenchStack:
    """production=True runs the product as it ships: K8SDM_ENV=production (DEBUG off, JSON logs,
    production defaults for every knob) and the api under docker/gunicorn.conf.py."""

    def __init__(self, *, emulator_args: tuple[str, ...] = (), production: bool = False):
        self.production = production
        self.tmp = Path(tempfile.mkdtemp(prefix="k8sdm-bench-"))
        self.pg = PostgresServer(self.tmp / "pg", free_port(), fast_unsafe=False)
        self.nats = NatsServer(self.tmp / "nats", free_port())
        self.emulator_port = free_port()
        self.kubeconfig = self.tmp / "kubeconfig"
        self.emulator_args = emulator_args
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        atexit.register(self.stop)

    def start(self) -> "BenchStack":
        self.pg.start()
        self.nats.start()
        self.spawn("emulator", [sys.executable, "-m", "kube_emulator", "--port", str(self.emulator_port),
                                "--kubeconfig", str(self.kubeconfig), "--quiet", *self.emulator_args])
        wait_for_port("127.0.0.1", self.emulator_port, timeout=30, what="emulator")
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=self.pg.url, NATS_URL=self.nats.url, K8SDM_KUBECONFIG=str(self.kubeconfig),
            K8SDM_ENV="test", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="k8sdm.settings",
            K8SDM_OUTBOX_GRACE_SECONDS="1", K8SDM_OUTBOX_INTERVAL_SECONDS="0.2",
            # Benchmarks create thousands of deployments from one address: no rate limits, no quotas.
            K8SDM_RATE_LIMIT="off", K8SDM_RATE_LIMIT_PER_ADDRESS="off", K8SDM_POLICY_MAX_DEPLOYMENTS="unlimited",
            K8SDM_POLICY_MAX_REPLICAS_TOTAL="unlimited", K8SDM_POLICY_MAX_CPU_TOTAL="unlimited",
            K8SDM_POLICY_MAX_MEMORY_TOTAL="unlimited",
        )
        if self.production:
            for name in ("K8SDM_OUTBOX_GRACE_SECONDS", "K8SDM_OUTBOX_INTERVAL_SECONDS"):
                del self.env[name]
            self.env.update(K8SDM_ENV="production", DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
                            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
                            # header mode behind a gateway on this machine (the system check refuses it open)
                            K8SDM_TRUSTED_PROXIES="127.0.0.1/32")
        os.environ.update({k: v for k, v in self.env.items() if k.startswith(("DATABASE_", "NATS_", "K8SDM_", "LOG_", "DJANGO_"))})
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        return self

    def django(self):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "k8sdm.settings")
        import django

        django.setup()

    def spawn(self, name: str, args: list[str], **env) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        proc = subprocess.Popen(args, cwd=ROOT, env={**(self.env or os.environ), **env}, stdout=log,
                                stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def worker(self, name: str = "worker", **env) -> subprocess.Popen:
        proc = self.spawn(name, [sys.executable, "manage.py", "runworker", "--metrics-port", "0"], **env)
        self.wait_log(name, "worker ready")
        return proc

    def watcher(self, name: str = "watcher", **env) -> subprocess.Popen:
        proc = self.spawn(name, [sys.executable, "manage.py", "runwatcher", "--metrics-port", "0"], **env)
        self.wait_log(name, "now active")
        return proc

    def api_command(self, port: int, workers: int = 4) -> list[str]:
        """The api's gunicorn: as docker/k8s/api.yaml runs it (production: its config file has no
        control socket), else with a control socket of this stack's own, never the per-user default
        (~/.gunicorn/gunicorn.ctl) that one stack's stop would remove from under another."""
        if self.production:
            return [sys.executable, "-m", "gunicorn", "--config", "docker/gunicorn.conf.py",
                    "--bind", f"127.0.0.1:{port}", "k8sdm.wsgi"]
        return [sys.executable, "-m", "gunicorn", "k8sdm.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--log-level", "warning", *control_socket_args(self.tmp / "gunicorn.ctl")]

    def api(self, workers: int = 4) -> str:
        port = free_port()
        if self.production:  # as docker/k8s/api.yaml runs it, on a local port
            proc = self.spawn("api", self.api_command(port), PROMETHEUS_MULTIPROC_DIR=str(self.tmp / "prometheus"))
        else:
            proc = self.spawn("api", self.api_command(port, workers))
        wait_for_port("127.0.0.1", port, timeout=30, proc=proc, what="api")
        self.api_port = port
        return f"http://127.0.0.1:{port}"

    def api_queue(self) -> int:
        """Connections waiting in the api's accept queue (requests sent that no worker took yet)."""
        port = f":{getattr(self, 'api_port', 0):04X}"
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(port) and fields[3] == "0A":  # LISTEN: rx_queue is the accept backlog
                return int(fields[4].split(":")[1], 16)
        return 0

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def wait_log(self, name: str, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not log {text!r}:\n{self.log(name)[-2000:]}")
            time.sleep(0.05)

    def rss_mb(self, name: str) -> float:
        try:
            return psutil.Process(self.procs[name].pid).memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            return 0.0

    def cpu_seconds(self, name: str) -> float:
        """CPU time (user + system) of a process and all its descendants, reaped ones included."""
        pid = {"postgres": self.pg.proc and self.pg.proc.pid, "nats": self.nats.proc and self.nats.proc.pid}.get(name)
        return tree_cpu_seconds(pid or self.procs[name].pid)

    def stop_proc(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        for name in list(self.procs):
            self.stop_proc(name)
        self.nats.stop()
        self.pg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def tree_cpu_seconds(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]
