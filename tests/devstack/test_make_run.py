"""`make run` (python -m devstack): the whole product starts, the admin login works from a real
HTTP client, the banner's own curl commands take a request all the way to the cluster, and Ctrl-C
leaves nothing behind."""

import json
import subprocess
import time

import psutil
import pytest
import requests

from tests.devstack.helpers import devstack_env, start_devstack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def banner_commands(output: str) -> list[str]:
    """The shell commands under the banner's "try", continuation lines joined, labels removed."""
    lines = [line.split("| ", 1)[1] for line in output.splitlines() if line.startswith("stack")]
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("try"))
    commands, current = [], ""
    for line in lines[start + 1:]:
        if not line.strip():
            break
        current += line.strip().removesuffix("\\")
        if not line.rstrip().endswith("\\"):
            commands.append(current)
            current = ""
    return commands


def test_make_run_serves_the_product_and_ctrl_c_stops_every_process(data_dir):
    stack = start_devstack(devstack_env(data_dir))
    try:
        admin_url, username, password = stack.wait_until_serving().groups()
        children = psutil.Process(stack.proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for expected in ("postgres", "nats-server", "kube_emulator", "gunicorn", "runworker", "runwatcher",
                         "uvicorn", "runnotifier"):
            assert expected in names, f"{expected} is not running"

        # The admin login, from a real HTTP client.
        session = requests.Session()
        login = f"{admin_url}login/"
        session.get(login, timeout=60)
        response = session.post(login, data={"username": username, "password": password, "next": "/admin/",
                                             "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                                headers={"Referer": login}, timeout=60)
        assert response.status_code == 200 and "Operations dashboard" in response.text

        # The banner's curl commands as a newcomer pastes them: the CREATE, then the follow-up GET.
        create, follow_up = banner_commands(stack.out.text)
        accepted = json.loads(subprocess.run(["bash", "-c", create], capture_output=True, check=True).stdout)
        assert accepted["action"] == "CREATE" and accepted["identifier"] == "hello", accepted
        while True:  # the follow-up GET, repeated until the rollout is done (the test's timeout bounds it)
            detail = json.loads(subprocess.run(["bash", "-c", follow_up], capture_output=True, check=True).stdout)
            if detail.get("health") == "HEALTHY" and [r["status"] for r in detail["recent_requests"]] == ["SUCCESS"]:
                break
            time.sleep(0.2)
        assert detail["status"] == "CREATED" and detail["image"] == "nginx:1.27", detail
    finally:
        code = stack.stop()
    assert code == 0, stack.out.text[-3000:]
    assert "stopped everything" in stack.out.text
    assert "Traceback" not in stack.out.text and "Warning" not in stack.out.text, stack.out.text
    assert not (data_dir / "devstack.pid").exists()  # make clean-data may go ahead
    still_running = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert still_running == [], [" ".join(c.cmdline()) for c in still_running]
    leftovers = [p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
                 if any(str(data_dir) in part for part in (p.info["cmdline"] or []))]
    assert leftovers == []
