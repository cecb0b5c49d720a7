"""`make run` (python -m devstack): the whole product starts, the admin login works from a real
HTTP client, a request goes all the way to the cluster, and Ctrl-C leaves nothing behind."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from devstack._proc import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


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

    def wait_for(self, pattern: str, timeout: float, proc) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match:
                return match
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in the output:\n{self.text[-4000:]}")


def test_make_run_serves_the_product_and_ctrl_c_stops_every_process(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "NATS_URL", "K8SDM_KUBECONFIG", "KUBECONFIG", "DJANGO_SETTINGS_MODULE")}
    api_port = free_port()
    env.update(
        K8SDM_DATA_DIR=str(tmp_path / "data"), K8SDM_ENV="local",
        DEVSTACK_API_PORT=str(api_port), DEVSTACK_PG_PORT=str(free_port()),
        DEVSTACK_NATS_PORT=str(free_port()), DEVSTACK_EMULATOR_PORT=str(free_port()),
        K8SDM_WORKER_METRICS_PORT=str(free_port()), K8SDM_WATCHER_METRICS_PORT=str(free_port()),
    )
    proc = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = Output(proc)
    try:
        banner = out.wait_for(r"admin\s+(http://\S+/admin/)\s+\(login: (\w+) / (\S+)\)", 150, proc)
        admin_url, username, password = banner.groups()
        out.wait_for(r"worker ready", 30, proc)
        out.wait_for(r"this watcher is now active", 30, proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for expected in ("postgres", "nats-server", "kube_emulator", "gunicorn", "runworker", "runwatcher"):
            assert expected in names, f"{expected} is not running"

        # The admin login, from a real HTTP client.
        session = requests.Session()
        login = f"{admin_url}login/"
        session.get(login, timeout=10)
        response = session.post(login, data={"username": username, "password": password, "next": "/admin/",
                                             "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                                headers={"Referer": login}, timeout=10)
        assert response.status_code == 200 and "Site administration" in response.text

        # The first curl the banner suggests, and the deployment it makes.
        base = f"http://127.0.0.1:{api_port}"
        created = requests.post(f"{base}/api/v1/deployments/requests/create", headers={"X-User-Id": "alice"},
                                json={"identifier": "hello", "image": "nginx:1.27"}, timeout=10)
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            detail = requests.get(f"{base}/api/v1/deployments/hello", headers={"X-User-Id": "alice"}, timeout=10)
            if detail.json().get("health") == "HEALTHY":
                break
            time.sleep(0.2)
        assert detail.json()["status"] == "CREATED" and detail.json()["health"] == "HEALTHY", detail.text
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 0, out.text[-3000:]
    assert "stopped everything" in out.text
    still_running = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert still_running == [], [" ".join(c.cmdline()) for c in still_running]
    data = str(tmp_path / "data")
    leftovers = [p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
                 if any(data in part for part in (p.info["cmdline"] or []))]
    assert leftovers == []
