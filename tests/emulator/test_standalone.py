"""`python -m kube_emulator`: a standalone process with a kubeconfig, clean exit on signals."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from kubernetes import client, config

from kube_emulator import free_port

pytestmark = pytest.mark.timeout(30)


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("emulator did not listen")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_standalone_server_writes_a_kubeconfig_logs_requests_and_exits_0(tmp_path, sig):
    port = free_port()
    kc = tmp_path / "kubeconfig"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.Popen([sys.executable, "-m", "kube_emulator", "--port", str(port),
                          "--kubeconfig", str(kc)], cwd=root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port)
        api_client = config.new_client_from_config(config_file=str(kc))
        names = [n.metadata.name for n in client.CoreV1Api(api_client).list_namespace().items]
        assert "default" in names
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kc), client_configuration=cfg)
        assert cfg.host == f"http://127.0.0.1:{port}"
        api_client.close()
    finally:
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    assert "GET /api/v1/namespaces 200" in err


def test_port_0_picks_a_free_port_and_reports_it(tmp_path):
    import re
    kc = tmp_path / "kubeconfig"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.Popen([sys.executable, "-m", "kube_emulator", "--port", "0", "--quiet",
                          "--kubeconfig", str(kc)], cwd=root, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert m, line
        assert f"server: http://127.0.0.1:{m.group(1)}" in kc.read_text()
        api_client = config.new_client_from_config(config_file=str(kc))
        assert client.VersionApi(api_client).get_code().minor == "37"
        api_client.close()
    finally:
        p.terminate()
        p.communicate(timeout=10)
    assert p.returncode == 0
