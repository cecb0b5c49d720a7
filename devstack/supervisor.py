"""`make run`: start the whole product locally and stop all of it on Ctrl-C.

Starts, unless the environment points elsewhere: PostgreSQL (DATABASE_URL), NATS JetStream
(NATS_URL) and the Kubernetes API emulator (K8SDM_KUBECONFIG / in-cluster config), each with its
data under .data/; then migrates, makes an admin login, and runs the api, worker and watcher
with their output interleaved and labelled. Ctrl-C or SIGTERM stops everything it started, apps
first, servers last. A second run reuses the data, the emulator's objects included: a cluster
that forgot everything would make the watcher mark every deployment DELETED.

Every port the stack will listen on is checked before anything starts: a taken port stops the
run at once with the name of the variable that moves it, never after a "running" banner.
The api runs with Django's DEBUG off unless DJANGO_DEBUG says otherwise: its technical error
pages show the settings to anyone who can reach the port.
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

from ._proc import port_free, wait_for_port
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


class StartupError(Exception):
    """The stack cannot start; the message says why and what to change."""


@dataclass(frozen=True)
class Port:
    what: str
    port: int
    variable: str


# In the data directory while a make run uses it (`make clean-data` checks it too).
PID_FILE = "devstack.pid"

# A Unix socket path must fit sun_path (108 bytes with the terminating NUL).
MAX_UNIX_SOCKET_PATH = 107


def _live_pid(pid_file: Path) -> int | None:
    """The pid in pid_file if that process is alive."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except PermissionError:  # alive, another user's
        return pid
    except (OSError, ValueError):
        return None
    return pid


def api_command(*, port: int, control_socket: Path) -> list[str]:
    """The api as `make run` starts it, with a gunicorn control socket of its own.

    gunicorn's default socket path is one per user (~/.gunicorn/gunicorn.ctl): a second gunicorn
    took it over, and stopping either one removed the other's. A path too long for a Unix socket
    gets no control socket rather than a shared one.
    """
    # Threads, as docker/gunicorn.conf.py: a long-poll (`?wait=N`) holds a thread, not a process.
    args = [PYTHON, "-m", "gunicorn", "k8sdm.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--threads", "4", "--access-logfile", "-", "--graceful-timeout", "10"]
    return [*args, *control_socket_args(control_socket)]


def control_socket_args(control_socket: Path) -> list[str]:
    """gunicorn arguments for a control socket at `control_socket` (never the shared default), or
    none at all when the path is too long for a Unix socket. The bench stacks use it too."""
    if len(os.fsencode(control_socket)) <= MAX_UNIX_SOCKET_PATH:
        return ["--control-socket", str(control_socket)]
    return ["--no-control-socket"]


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
    worker_metrics_port: int = 9101
    watcher_metrics_port: int = 9102
    events_port: int = 8001
    notifier_metrics_port: int = 9103
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

    def planned_ports(self) -> list[Port]:
        """Every TCP port this run will listen on, with the variable that moves it."""
        ports = [Port("the api", self.api_port, "DEVSTACK_API_PORT")]
        if not self.env.get("DATABASE_URL"):
            ports.append(Port("PostgreSQL", self.pg_port, "DEVSTACK_PG_PORT"))
        if not self.env.get("NATS_URL"):
            ports.append(Port("NATS", self.nats_port, "DEVSTACK_NATS_PORT"))
        if self._emulator_needed():
            ports.append(Port("the Kubernetes API emulator", self.emulator_port, "DEVSTACK_EMULATOR_PORT"))
        if self.worker_metrics_port:  # 0: no metrics server
            ports.append(Port("the worker's metrics", self.worker_metrics_port, "K8SDM_WORKER_METRICS_PORT"))
        if self.watcher_metrics_port:
            ports.append(Port("the watcher's metrics", self.watcher_metrics_port, "K8SDM_WATCHER_METRICS_PORT"))
        ports.append(Port("the events server (SSE)", self.events_port, "DEVSTACK_EVENTS_PORT"))
        if self.notifier_metrics_port:
            ports.append(Port("the notifier's metrics", self.notifier_metrics_port, "K8SDM_NOTIFIER_METRICS_PORT"))
        return ports

    def check_ports(self) -> None:
        """Refuse to start, naming each variable to change, if any port is invalid, shared or taken."""
        problems = []
        seen: dict[int, Port] = {}
        for port in self.planned_ports():
            if not 0 < port.port < 65536:
                problems.append(f"{port.variable}={port.port} is not a TCP port (1-65535)")
            elif port.port in seen:
                problems.append(f"{seen[port.port].variable} and {port.variable} are both {port.port}: "
                                f"give {port.what} a port of its own with {port.variable}")
            elif not port_free("127.0.0.1", port.port):
                problems.append(f"port {port.port} ({port.what}) is taken by another process: stop it, "
                                f"or set {port.variable} to a free port")
            seen.setdefault(port.port, port)
        if problems:
            raise StartupError("cannot start:\n  " + "\n  ".join(problems))

    def check_data_dir(self) -> None:
        """One stack per data directory: its servers would fight over the same files."""
        pid = _live_pid(self.data_dir / PID_FILE)
        if pid is not None:
            raise StartupError(f"cannot start: another make run (pid {pid}) is using {self.data_dir}: stop it, "
                               "or set K8SDM_DATA_DIR to another directory")

    def start_servers(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / PID_FILE).write_text(f"{os.getpid()}\n")
        # Static files are served from the apps (whitenoise's finders); an existing STATIC_ROOT
        # spares every api worker a warning about a missing one.
        if not self.env.get("DJANGO_STATIC_ROOT"):
            (self.data_dir / "static").mkdir(exist_ok=True)
            self.env["DJANGO_STATIC_ROOT"] = str(self.data_dir / "static")
        if not self.env.get("DATABASE_URL"):
            self.say("stack", f"starting PostgreSQL on 127.0.0.1:{self.pg_port} (data in {self.data_dir / 'postgres'})")
            pipe = self._log_pipe("postgres")
            pg = PostgresServer(self.data_dir / "postgres", self.pg_port).start(log_file=pipe)
            pipe.close()
            self.servers.append(pg)
            self.env["DATABASE_URL"] = pg.url
        else:
            self.say("stack", "using DATABASE_URL from the environment")
        if not self.env.get("NATS_URL"):
            self.say("stack", f"starting NATS JetStream on 127.0.0.1:{self.nats_port} (data in {self.data_dir / 'nats'})")
            pipe = self._log_pipe("nats")
            nats = NatsServer(self.data_dir / "nats", self.nats_port).start(log_file=pipe)
            pipe.close()
            self.servers.append(nats)
            self.env["NATS_URL"] = nats.url
        else:
            self.say("stack", "using NATS_URL from the environment")
        if self._cluster_configured():
            self.say("stack", "using the configured Kubernetes cluster")
        elif self._emulator_needed():
            kubeconfig = self.data_dir / "kubeconfig"
            objects = self.data_dir / "emulator"
            self.say("stack", f"no cluster configured: starting the Kubernetes API emulator on "
                              f"127.0.0.1:{self.emulator_port} (objects in {objects})")
            child = self.spawn(
                "kube-emu",
                [PYTHON, "-m", "kube_emulator", "--port", str(self.emulator_port), "--kubeconfig", str(kubeconfig),
                 "--data-dir", str(objects)],
            )
            wait_for_port("127.0.0.1", self.emulator_port, timeout=30, proc=child.proc, what="the emulator")
            self.env["K8SDM_KUBECONFIG"] = str(kubeconfig)

    def _emulator_needed(self) -> bool:
        return not self._cluster_configured() and (ROOT / "kube_emulator").is_dir()

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
        api = self.spawn("api", api_command(port=self.api_port, control_socket=self.data_dir / "gunicorn.ctl"))
        # The event stream (SSE) is served by an ASGI server next to the WSGI api.
        self.spawn(
            "events",
            [PYTHON, "-m", "uvicorn", "k8sdm.asgi:application", "--host", "127.0.0.1", "--port", str(self.events_port),
             "--no-access-log", "--timeout-graceful-shutdown", "5"],
        )
        if (ROOT / "events_app/management/commands/runnotifier.py").exists():
            self.spawn("notifier", [PYTHON, "manage.py", "runnotifier"])
        if (ROOT / "requests_app/management/commands/runworker.py").exists():
            self.spawn("worker", [PYTHON, "manage.py", "runworker"])
        if (ROOT / "deployments_app/management/commands/runwatcher.py").exists():
            self.spawn("watcher", [PYTHON, "manage.py", "runwatcher"])
        wait_for_port("127.0.0.1", self.api_port, timeout=30, proc=api.proc, what="the api")

    # --- stopping ---------------------------------------------------------------------------

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        if not (self.children or self.servers or _live_pid(self.data_dir / PID_FILE) == os.getpid()):
            return
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
        if _live_pid(self.data_dir / PID_FILE) == os.getpid():
            (self.data_dir / PID_FILE).unlink()
        self.say("stack", "stopped everything")

    def run(self) -> int:
        def on_signal(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            self.check_ports()
            self.check_data_dir()
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
        except (StartupError, RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
            for line in [*str(exc).splitlines(), "k8sdm did not start"]:
                self.say("stack", line)
            return 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()

    def _debug(self) -> bool:
        return self.env.get("DJANGO_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")

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
            f"  debug      {'on' if self._debug() else 'off (DJANGO_DEBUG=true make run turns it on)'}",
            "  try (the README's \"First run\" explains the answers):",
            f"    curl -s -X POST {base}/api/v1/deployments/requests/create -H 'X-User-Id: alice' \\",
            "      -H 'Content-Type: application/json' -d '{\"identifier\": \"hello\", \"image\": \"nginx:1.27\"}'",
            f"    curl -s {base}/api/v1/deployments/hello -H 'X-User-Id: alice'",
            "",
        ]:
            self.say("stack", line)


def _port_from(env: dict, variable: str, default: int) -> int:
    value = env.get(variable, "") or str(default)
    try:
        return int(value)
    except ValueError:
        raise StartupError(f"{variable}={value!r} is not a port number") from None


def stack_env(environ) -> dict:
    """The environment of every process of the stack: the caller's, with DEBUG off unless asked for."""
    env = dict(environ)
    env.setdefault("DJANGO_DEBUG", "false")
    return env


def main() -> int:
    env = stack_env(os.environ)
    try:
        sup = Supervisor(
            data_dir=Path(env.get("K8SDM_DATA_DIR") or ROOT / ".data").resolve(),
            api_port=_port_from(env, "DEVSTACK_API_PORT", 8000),
            pg_port=_port_from(env, "DEVSTACK_PG_PORT", 55432),
            nats_port=_port_from(env, "DEVSTACK_NATS_PORT", 54222),
            emulator_port=_port_from(env, "DEVSTACK_EMULATOR_PORT", 58080),
            worker_metrics_port=_port_from(env, "K8SDM_WORKER_METRICS_PORT", 9101),
            watcher_metrics_port=_port_from(env, "K8SDM_WATCHER_METRICS_PORT", 9102),
            events_port=_port_from(env, "DEVSTACK_EVENTS_PORT", 8001),
            notifier_metrics_port=_port_from(env, "K8SDM_NOTIFIER_METRICS_PORT", 9103),
            env=env,
        )
    except StartupError as exc:
        print(f"stack     | cannot start: {exc}", file=sys.stderr)
        return 1
    return sup.run()
