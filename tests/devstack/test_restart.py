"""A second `make run` finds the cluster as the first left it.

The emulator used to keep its objects in memory only: after a restart the watcher listed an empty
cluster and every deployment in the database became DELETED. Its objects now live under the data
directory (`.data/emulator`), like PostgreSQL's and NATS's."""

from __future__ import annotations

import time

import pytest
import requests
from kubernetes import client, config

from tests.devstack.helpers import devstack_env, start_devstack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

ALICE = {"X-User-Id": "alice"}
HTTP_TIMEOUT = 60  # a bound against a hung server only


def wait_until_applied(base: str, identifier: str, **expected) -> dict:
    """The deployment once every request of it is finished, it is HEALTHY and shows `expected`
    (the test's timeout bounds the wait)."""
    while True:
        detail = requests.get(f"{base}/api/v1/deployments/{identifier}", headers=ALICE, timeout=HTTP_TIMEOUT).json()
        finished = all(r["status"] != "CREATED" for r in detail.get("recent_requests", []))
        if finished and detail.get("health") == "HEALTHY" and all(detail.get(k) == v for k, v in expected.items()):
            return detail
        if detail.get("status") == "DELETED" or any(r["status"] == "FAILURE" for r in detail.get("recent_requests", [])):
            return detail  # settled the wrong way: let the caller's assertion show it
        time.sleep(0.2)


def live_uid(kubeconfig: str, name: str) -> str:
    api = client.AppsV1Api(config.new_client_from_config(config_file=kubeconfig))
    try:
        return api.read_namespaced_deployment(name, "default").metadata.uid
    finally:
        api.api_client.close()


def test_a_second_make_run_finds_the_cluster_as_the_first_left_it(data_dir):
    env = devstack_env(data_dir)
    kubeconfig = str(data_dir / "kubeconfig")

    first = start_devstack(env)
    try:
        first.wait_until_serving()
        created = requests.post(f"{first.base}/api/v1/deployments/requests/create", headers=ALICE, timeout=HTTP_TIMEOUT,
                                json={"identifier": "hello", "image": "nginx:1.27"})
        assert created.status_code == 202, created.text
        before = wait_until_applied(first.base, "hello")
        assert before["status"] == "CREATED", before
        uid = live_uid(kubeconfig, "hello")
    finally:
        assert first.stop() == 0, first.out.text[-3000:]
    assert any((data_dir / "emulator").iterdir()), "the emulator kept nothing under the data directory"

    second = start_devstack(env)
    try:
        second.wait_until_serving()
        assert live_uid(kubeconfig, "hello") == uid  # the very object the first run created
        # The watcher's first list saw it, and nothing vanished.
        second.out.wait_for(r"listed 1 managed deployment\(s\).*; 0 vanished", 60, second.proc)
        # Still k8sdm's to change: an UPDATE is applied to it.
        changed = requests.patch(f"{second.base}/api/v1/deployments/requests/hello", headers=ALICE,
                                 json={"replicas": 2}, timeout=HTTP_TIMEOUT)
        assert changed.status_code == 202, changed.text
        after = wait_until_applied(second.base, "hello", replicas=2, available_replicas=2)
        assert after["status"] == "CREATED", after
        assert [r["status"] for r in after["recent_requests"]] == ["SUCCESS", "SUCCESS"], after
        assert live_uid(kubeconfig, "hello") == uid
    finally:
        assert second.stop() == 0, second.out.text[-3000:]
