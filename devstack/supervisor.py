"""`make run`: start the whole product locally and stop all of it on Ctrl-C.

Starts, unless the environment points elsewhere: PostgreSQL (DATABASE_URL), NATS JetStream
(NATS_URL) and the Kubernetes API emulator (K8SDM_KUBECONFIG / in-cluster config), each with its
data under .data/; then migrates, makes an admin login, and runs the api, worker and watcher
with their output interleaved and labelled. Ctrl-C or SIGTERM stops everything it started, apps
first, servers last, and a second run reuses the data.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._proc import port_open, wait_for_port
from .nats import NatsServer
from .postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

COLORS = ["36", "33", "35", "32", "34", "31", "96", "93"]


def _pdeathsig() -> None:
    """Ask Linux to SIGTERM the child if the supervisor dies, even by kill -9."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 12.0


@dataclass
class Supervisor:
    data_dir: Path
    api_port: int
    pg_port: int
    nats_port: int
    emulator_port: int
    env: dict = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)
    servers: list = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _width: int = 9

    # --- output -----------------------------------------------------------------------------

    def say(self, name: str, line: str) -> None:
        color = COLORS[hash(name) % len(COLORS)]
        label = f"{name:<{self._width}}"
        if sys.stdout.isatty():
            label = f"\033[{color}m{label}\033[0m"
        with self._lock:
            sys.stdout.write(f"{label} | {line.rstrip()}\n")
            sys.stdout.flush()

    def _pump(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.say(name, raw.decode(errors="replace"))
        stream.close()

    def _log_pipe(self, name: str):
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "rb")
        threading.Thread(target=self._pump, args=(name, reader), daemon=True).start()
        return os.fdopen(write_fd, "wb")

    # --- starting ---------------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], **kwargs) -> Child:
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
            preexec_fn=_pdeathsig,
        )
        threading.Thread(target=self._pump, args=(name, proc.stdout), daemon=True).start()
        child = Child(name, proc, **kwargs)
        self.children.append(child)
        return child

    def start_servers(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.env.get("DATABASE_URL"):
            self.say("stack", f"starting PostgreSQL on 127.0.0.1:{self.pg_port} (data in {self.data_dir / 'postgres'})")
            if port_open("127.0.0.1", self.pg_port):
                raise SystemExit(f"port {self.pg_port} is taken: stop what uses it or set DEVSTACK_PG_PORT")
            pipe = self._log_pipe("postgres")
            pg = PostgresServer(self.data_dir / "postgres", self.pg_port).start(log_file=pipe)
            pipe.close()
            self.servers.append(pg)
            self.env["DATABASE_URL"] = pg.url
        else:
            self.say("stack", "using DATABASE_URL from the environment")
        if not self.env.get("NATS_URL"):
            self.say("stack", f"starting NATS JetStream on 127.0.0.1:{self.nats_port} (data in {self.data_dir / 'nats'})")
            if port_open("127.0.0.1", self.nats_port):
                raise SystemExit(f"port {self.nats_port} is taken: stop what uses it or set DEVSTACK_NATS_PORT")
            pipe = self._log_pipe("nats")
            nats = NatsServer(self.data_dir / "nats", self.nats_port).start(log_file=pipe)
            pipe.close()
            self.servers.append(nats)
            self.env["NATS_URL"] = nats.url
        else:
            self.say("stack", "using NATS_URL from the environment")
        if self._cluster_configured():
            self.say("stack", "using the configured Kubernetes cluster")
        elif (ROOT / "kube_emulator").is_dir():
            kubeconfig = self.data_dir / "kubeconfig"
            self.say("stack", f"no cluster configured: starting the Kubernetes API emulator on 127.0.0.1:{self.emulator_port}")
            child = self.spawn(
                "kube-emu",
                [PYTHON, "-m", "kube_emulator", "--port", str(self.emulator_port), "--kubeconfig", str(kubeconfig)],
            )
            wait_for_port("127.0.0.1", self.emulator_port, timeout=30, proc=child.proc, what="the emulator")
            self.env["K8SDM_KUBECONFIG"] = str(kubeconfig)

    def _cluster_configured(self) -> bool:
        return bool(
            self.env.get("K8SDM_KUBECONFIG") or self.env.get("KUBERNETES_SERVICE_HOST") or self.env.get("KUBECONFIG")
        )

    def manage(self, *args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, check=True)

    def ensure_admin(self) -> tuple[str, str]:
        password_file = self.data_dir / "admin-password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        code = (
            "from django.contrib.auth import get_user_model as g\n"
            "U = g()\n"
            "u = U.objects.filter(username='admin').first() or U(username='admin', email='admin@localhost')\n"
            "u.is_staff = u.is_superuser = True\n"
            f"u.set_password({password!r}); u.save()\n"
        )
        self.manage("shell", "--no-imports", "-c", code)
        return "admin", password

    def start_apps(self) -> None:
        self.spawn(
            "api",
            [PYTHON, "-m", "gunicorn", "k8sdm.wsgi", "--bind", f"127.0.0.1:{self.api_port}", "--workers", "2",
             "--access-logfile", "-", "--graceful-timeout", "10"],
        )
        if (ROOT / "requests_app/management/commands/runworker.py").exists():
            self.spawn("worker", [PYTHON, "manage.py", "runworker"])
        if (ROOT / "deployments_app/management/commands/runwatcher.py").exists():
            self.spawn("watcher", [PYTHON, "manage.py", "runwatcher"])
        wait_for_port("127.0.0.1", self.api_port, timeout=30, proc=self.children[-1].proc, what="the api")

    # --- stopping ---------------------------------------------------------------------------

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.say("stack", "stopping...")
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(child.stop_signal)
        for child in reversed(self.children):
            try:
                child.proc.wait(child.stop_timeout)
            except subprocess.TimeoutExpired:
                self.say("stack", f"{child.name} did not stop in {child.stop_timeout:.0f}s: killing it")
                os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        for server in reversed(self.servers):
            server.stop()
        self.say("stack", "stopped everything")

    def run(self) -> int:
        def on_signal(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            self.start_servers()
            self.say("stack", "applying migrations")
            self.manage("migrate", "--no-input", "-v", "0")
            username, password = self.ensure_admin()
            self.start_apps()
            self.banner(username, password)
            while True:
                for child in self.children:
                    if child.proc.poll() is not None:
                        self.say("stack", f"{child.name} exited with code {child.proc.returncode}: stopping the stack")
                        return 1
                time.sleep(0.3)
        except KeyboardInterrupt:
            return 0
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()

    def banner(self, username: str, password: str) -> None:
        base = f"http://127.0.0.1:{self.api_port}"
        for line in [
            "",
            "k8sdm is running. Ctrl-C stops everything.",
            f"  admin      {base}/admin/   (login: {username} / {password})",
            f"  API        {base}/api/v1/",
            f"  API docs   {base}/api/docs/",
            f"  health     {base}/healthz  {base}/readyz  {base}/metrics",
            f"  postgres   {self.env['DATABASE_URL']}",
            f"  nats       {self.env['NATS_URL']}",
            f"  kubeconfig {self.env.get('K8SDM_KUBECONFIG', '(in-cluster or default)')}",
            "  try:",
            f"    curl -s -X POST {base}/api/v1/deployments/requests/create -H 'X-User-Id: alice' \\",
            "      -H 'Content-Type: application/json' -d '{\"identifier\": \"hello\", \"image\": \"nginx:1.27\"}'",
            "",
        ]:
            self.say("stack", line)


def main() -> int:
    env = os.environ
    sup = Supervisor(
        data_dir=Path(env.get("K8SDM_DATA_DIR", ROOT / ".data")).resolve(),
        api_port=int(env.get("DEVSTACK_API_PORT", "8000")),
        pg_port=int(env.get("DEVSTACK_PG_PORT", "55432")),
        nats_port=int(env.get("DEVSTACK_NATS_PORT", "54222")),
        emulator_port=int(env.get("DEVSTACK_EMULATOR_PORT", "58080")),
    )
    return sup.run()
