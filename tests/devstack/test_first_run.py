"""What a newcomer meets on the first `make run`: every link of the banner answers, Django's debug
pages are off (they showed the settings to anyone sending a bad Host header), the api has a
control socket of its own, and an api that dies at start is reported as such."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests
from gunicorn.ctl.client import ControlClient

from devstack._proc import free_port, wait_for_port
from devstack.supervisor import ROOT, api_command, stack_env
from tests.devstack.helpers import data_directory, devstack_env, start_devstack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ALICE = {"X-User-Id": "alice"}

# What Django's technical error page shows and an error page for strangers never should.
# A bound against a hung server only: the machine may be busy.
HTTP_TIMEOUT = 60

SETTINGS_DUMP = ("DATABASES", "NATS_URL", "SECRET_KEY", "DisallowedHost", "Traceback")


@pytest.fixture(scope="module")
def running():
    """One `make run` for the tests of this module, serving."""
    with data_directory() as data_dir:
        stack = start_devstack(devstack_env(data_dir))
        try:
            stack.wait_until_serving()
        except BaseException:
            stack.stop()
            raise
        yield stack
        code = stack.stop()
        assert code == 0, stack.out.text[-3000:]


def test_every_link_of_the_banner_answers(running):
    banner = running.out.text.split("k8sdm is running")[1].split("    curl")[0]
    links = [url for line in banner.splitlines() if line.startswith("stack")
             for url in line.split() if url.startswith("http://")]
    assert f"{running.base}/api/v1/" in links and f"{running.base}/admin/" in links
    for url in links:
        response = requests.get(url, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    index = requests.get(f"{running.base}/api/v1/", timeout=HTTP_TIMEOUT).json()
    for endpoint in index["docs"].values():
        assert requests.get(f"{running.base}{endpoint}", timeout=HTTP_TIMEOUT).status_code == 200, endpoint


def test_the_root_leads_to_the_api_index(running):
    response = requests.get(f"{running.base}/", timeout=HTTP_TIMEOUT)
    assert response.history and response.history[0].status_code == 302
    assert response.url == f"{running.base}/api/v1/"
    assert response.json()["endpoints"]


def test_debug_is_off_so_a_bad_host_header_gets_no_settings_dump(running):
    response = requests.get(f"{running.base}/admin/", headers={"Host": "evil.example.com"}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 400
    for secret in SETTINGS_DUMP:
        assert secret not in response.text, secret
    assert "debug      off" in running.out.text


def test_the_api_answers_a_bad_host_header_on_an_api_path_in_the_json_error_shape(running):
    response = requests.get(f"{running.base}/api/v1/deployments/", headers={"Host": "evil.example.com"},
                            timeout=HTTP_TIMEOUT)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert not any(secret in response.text for secret in SETTINGS_DUMP)


def test_the_api_has_a_control_socket_of_its_own_in_the_data_directory(running):
    control_socket = os.path.join(running.env["K8SDM_DATA_DIR"], "gunicorn.ctl")
    with ControlClient(control_socket, timeout=HTTP_TIMEOUT) as client:
        config = client.send_command("show config")
    assert config["bind"] == [f"127.0.0.1:{running.env['DEVSTACK_API_PORT']}"]


def test_debug_stays_available_by_env_var(tmp_path):
    """The api as make run starts it, with DJANGO_DEBUG=true: Django's debug page is back."""
    port = free_port()
    env = stack_env({**os.environ, "DJANGO_DEBUG": "true", "K8SDM_ENV": "local"})
    env.pop("GUNICORN_CMD_ARGS", None)
    proc = subprocess.Popen(api_command(port=port, control_socket=tmp_path / "gunicorn.ctl"), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, timeout=60, proc=proc, what="gunicorn")
        response = requests.get(f"http://127.0.0.1:{port}/admin/", headers={"Host": "evil.example.com"},
                                timeout=HTTP_TIMEOUT)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert response.status_code == 400
    assert "DisallowedHost" in response.text
    assert stack_env({})["DJANGO_DEBUG"] == "false"


def test_an_api_that_exits_at_start_is_reported_as_the_api_without_waiting_for_its_port(data_dir):
    """The supervisor used to watch the last child it started (the watcher) while waiting for the
    api's port: an api that died at once was only noticed as a timeout 30 s later."""
    env = devstack_env(data_dir, GUNICORN_CMD_ARGS="--workers not-a-number")
    stack = start_devstack(env)
    code = stack.proc.wait()  # ends on its own: the api is dead
    stack.out.join()
    output = stack.out.text
    assert code != 0
    assert "the api exited with code 2 before listening" in output, output[-3000:]
    assert "k8sdm did not start" in output
    assert "k8sdm is running" not in output
    assert "stopped everything" in output


def test_the_readmes_failing_rollout_shows_a_degraded_deployment_and_a_working_image_heals_it(running):
    """The README's "A rollout that fails", as written there."""
    api = f"{running.base}/api/v1"

    def change(**config) -> None:
        response = requests.patch(f"{api}/deployments/requests/web", headers=ALICE, json=config,
                                  timeout=HTTP_TIMEOUT)
        assert response.status_code == 202, response.text

    def settled(health: str) -> dict:
        while True:  # the test's timeout bounds the wait
            detail = requests.get(f"{api}/deployments/web", headers=ALICE, timeout=HTTP_TIMEOUT).json()
            pending = [r for r in detail["recent_requests"] if r["status"] == "CREATED"]
            if not pending and detail["health"] == health:
                return detail
            time.sleep(0.2)

    created = requests.post(f"{api}/deployments/requests/create", headers=ALICE, timeout=HTTP_TIMEOUT,
                            json={"identifier": "web", "image": "nginx:1.27"})
    assert created.status_code == 202, created.text
    settled("HEALTHY")

    change(image="nginx:fail")
    degraded = settled("DEGRADED")
    assert degraded["recent_requests"][0]["status"] == "SUCCESS"  # Kubernetes took the change
    assert degraded["status"] == "CREATED" and degraded["available_replicas"] == 1  # the old replica serves
    progressing = next(c for c in degraded["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "ProgressDeadlineExceeded" and progressing["status"] == "False"

    change(image="nginx:1.27")
    healed = settled("HEALTHY")
    assert healed["image"] == "nginx:1.27" and [r["status"] for r in healed["recent_requests"]] == ["SUCCESS"] * 3
