"""Run the emulator in a background thread (for tests and embedding)."""
from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import Any, Optional

from aiohttp import web

from .app import Emulator
from .faults import ErrorRule
from .kubeconfig import DUMMY_TOKEN, write_kubeconfig


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmulatorServer:
    """A Kubernetes API emulator listening on ``host:port`` (a free port by default),
    served by its own event loop in a daemon thread.

    >>> srv = EmulatorServer().start()
    >>> api = kubernetes.client.AppsV1Api(srv.api_client())
    >>> srv.stop()

    All control methods are thread-safe (they run on the server's loop).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, step_delay: float = 0.05,
                 failure_deadline: float = 1.0, event_log_size: int = 10000,
                 watch_buffer: int = 10000, bookmark_interval: float = 1.0,
                 log_requests: bool = False, seed: Optional[int] = None,
                 node_cpu: str = "4", node_memory: str = "16Gi", event_ttl: float = 3600.0,
                 data_dir: Optional[str] = None):
        self.host = host
        self.port = port
        self.emulator = Emulator(step_delay=step_delay, failure_deadline=failure_deadline,
                                 event_log_size=event_log_size, watch_buffer=watch_buffer,
                                 bookmark_interval=bookmark_interval, log_requests=log_requests,
                                 seed=seed, node_cpu=node_cpu, node_memory=node_memory,
                                 event_ttl=event_ttl,
                                 data_dir=os.fspath(data_dir) if data_dir else None)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._ready = threading.Event()
        self._stop_evt: Optional[asyncio.Event] = None
        self._error: Optional[BaseException] = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "EmulatorServer":
        if self._thread is not None:
            return self
        if not self.port:
            self.port = free_port(self.host)
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("kube emulator did not start in time")
        if self._error is not None:
            raise RuntimeError(f"kube emulator failed to start: {self._error!r}")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # pragma: no cover
            self._error = e
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop_evt = asyncio.Event()
        self._runner = web.AppRunner(self.emulator.make_app(), access_log=None,
                                     handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException as e:
            self._error = e
            self._ready.set()
            await self._runner.cleanup()
            return
        self._ready.set()
        await self._stop_evt.wait()
        await self._runner.cleanup()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop_evt is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop_evt.set)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def call(self, fn, *args, **kwargs) -> Any:
        """Run ``fn(*args, **kwargs)`` on the server loop and return its result."""
        if self._loop is None or self._thread is None:
            return fn(*args, **kwargs)

        async def run():
            return fn(*args, **kwargs)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # ------------------------------------------------------------------ clients
    def configuration(self):
        from kubernetes import client
        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": DUMMY_TOKEN}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.verify_ssl = False
        return cfg

    def api_client(self, pool_maxsize: Optional[int] = None):
        """A new ``kubernetes.client.ApiClient`` pointed at this emulator."""
        from kubernetes import client
        cfg = self.configuration()
        if pool_maxsize:
            cfg.connection_pool_maxsize = pool_maxsize
        return client.ApiClient(cfg)

    def write_kubeconfig(self, path) -> str:
        return write_kubeconfig(path, self.url)

    # ------------------------------------------------------------------ faults
    def set_latency(self, ms: float) -> None:
        self.emulator.faults.latency_ms = float(ms)

    def set_faults(self, spec: dict) -> None:
        """Replace the fault configuration (same JSON as ``POST /_emulator/faults``)."""
        self.emulator.faults.configure(spec)

    def error_rate(self, rate: float, status: int = 503, verb: Optional[str] = None,
                   path_prefix: Optional[str] = None, retry_after: Optional[int] = None) -> None:
        """Fail a fraction ``rate`` of matching requests with ``status``."""
        from .faults import _rule
        self.emulator.faults.add_rule(_rule({"rate": rate, "status": status, "verb": verb,
                                             "path_prefix": path_prefix,
                                             "retry_after": retry_after}))

    def fail_next(self, count: int = 1, status: int = 500, verb: Optional[str] = None,
                  path_prefix: Optional[str] = None, retry_after: Optional[int] = None) -> None:
        """Fail exactly the next ``count`` matching requests (deterministic)."""
        from .faults import _rule
        self.emulator.faults.add_rule(_rule({"count": count, "status": status, "verb": verb,
                                             "path_prefix": path_prefix,
                                             "retry_after": retry_after}))

    def clear_faults(self) -> None:
        self.emulator.faults.clear()

    @property
    def faults_injected(self) -> int:
        return self.emulator.faults.injected

    def drop_watches(self, abort: bool = False) -> int:
        """End every open watch stream (``abort=True`` cuts the TCP connection)."""
        return self.call(self.emulator.drop_watches, abort)

    def compact(self) -> int:
        """Forget the event log: any older resourceVersion now answers 410 Expired."""
        return self.call(self.emulator.compact)

    def pause_controller(self) -> None:
        self.call(self.emulator.controller.configure, paused=True)

    def resume_controller(self) -> None:
        self.call(self.emulator.controller.configure, paused=False)

    def configure_controller(self, step_delay: Optional[float] = None,
                             failure_deadline: Optional[float] = None,
                             paused: Optional[bool] = None, node_cpu: Optional[str] = None,
                             node_memory: Optional[str] = None) -> None:
        self.call(self.emulator.controller.configure, paused=paused, step_delay=step_delay,
                  failure_deadline=failure_deadline, node_cpu=node_cpu,
                  node_memory=node_memory)

    def set_bookmark_interval(self, seconds: float) -> None:
        self.emulator.bookmark_interval = float(seconds)

    def reset(self) -> None:
        """Delete everything (back to the default namespaces), clear faults, resume the
        controller with its start-up settings, drop watches. The RV counter keeps going."""
        self.call(self.emulator.reset)

    def stats(self) -> dict:
        return self.call(self.emulator.stats)

    @property
    def resource_version(self) -> int:
        return self.emulator.store.rv
