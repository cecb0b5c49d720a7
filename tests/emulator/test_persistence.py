"""``--data-dir`` / ``EmulatorServer(data_dir=...)``: a restart finds the cluster as it was
left, resourceVersions keep growing, and watches from a fresh list work."""
import json
import os
import signal
import subprocess
import sys

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kube_emulator import EmulatorServer, free_port

from .helpers import deployment, rolled_out, wait_for

pytestmark = pytest.mark.timeout(60)


def apis(srv):
    api = srv.api_client()
    return client.AppsV1Api(api), client.CoreV1Api(api)


def test_a_restart_finds_the_objects_and_a_watch_from_a_new_list_works(tmp_path):
    with EmulatorServer(step_delay=0.02, data_dir=tmp_path) as srv:
        apps, core = apis(srv)
        core.create_namespace({"metadata": {"name": "team-a"}})
        apps.create_namespaced_deployment("team-a", deployment("web", replicas=2))
        wait_for(lambda: rolled_out(apps.read_namespaced_deployment("web", "team-a")),
                 message="rolled out")
        core.create_namespaced_resource_quota("team-a", {"metadata": {"name": "q"},
                                                         "spec": {"hard": {"pods": "10"}}})
        before = apps.read_namespaced_deployment("web", "team-a")
        pods_before = sorted(p.metadata.name for p in core.list_namespaced_pod("team-a").items)
        rs_before = [r.metadata.uid for r in apps.list_namespaced_replica_set("team-a").items]
        rv_before = srv.resource_version
    assert (tmp_path / "objects.json").exists()

    with EmulatorServer(step_delay=0.02, data_dir=tmp_path) as srv:
        apps, core = apis(srv)
        after = apps.read_namespaced_deployment("web", "team-a")
        assert (after.metadata.uid, after.metadata.resource_version, after.metadata.generation) \
            == (before.metadata.uid, before.metadata.resource_version, before.metadata.generation)
        assert after.status.to_dict() == before.status.to_dict()
        assert "team-a" in {n.metadata.name for n in core.list_namespace().items}
        assert core.read_namespaced_resource_quota("q", "team-a").spec.hard == {"pods": "10"}
        assert [r.metadata.uid for r in apps.list_namespaced_replica_set("team-a").items] == \
            rs_before
        assert sorted(p.metadata.name for p in core.list_namespaced_pod("team-a").items) == \
            pods_before
        # resourceVersions keep growing from where they were
        listed = apps.list_namespaced_deployment("team-a")
        assert int(listed.metadata.resource_version) >= rv_before
        # an old resourceVersion is history the emulator no longer has: 410, relist
        with pytest.raises(ApiException) as e:
            apps.list_namespaced_deployment("team-a", resource_version="2",
                                            resource_version_match="Exact")
        assert e.value.status == 410
        # a watch from the new list sees what happens next
        w = watch.Watch()
        seen = []
        apps.patch_namespaced_deployment("web", "team-a", {"spec": {"replicas": 3}})
        for ev in w.stream(apps.list_namespaced_deployment, "team-a",
                           resource_version=listed.metadata.resource_version,
                           timeout_seconds=10):
            seen.append((ev["type"], ev["object"].spec.replicas))
            assert int(ev["object"].metadata.resource_version) > int(
                listed.metadata.resource_version)
            if ev["object"].spec.replicas == 3:
                w.stop()
        assert ("MODIFIED", 3) in seen
        # the restarted controller carries on: the new replica comes up in the same ReplicaSet
        dep = wait_for(lambda: (lambda d: rolled_out(d) and d)(
            apps.read_namespaced_deployment("web", "team-a")), message="scaled to 3")
        assert dep.status.available_replicas == 3
        assert [r.metadata.uid for r in apps.list_namespaced_replica_set("team-a").items] == \
            rs_before
        assert set(pods_before) < {p.metadata.name for p in core.list_namespaced_pod(
            "team-a").items}


def test_deletions_are_persisted_too(tmp_path):
    with EmulatorServer(step_delay=0.02, data_dir=tmp_path) as srv:
        apps, core = apis(srv)
        apps.create_namespaced_deployment("default", deployment("gone", replicas=1))
        apps.create_namespaced_deployment("default", deployment("kept", replicas=1))
        apps.delete_namespaced_deployment("gone", "default")
    with EmulatorServer(step_delay=0.02, data_dir=tmp_path) as srv:
        apps, core = apis(srv)
        assert [d.metadata.name for d in apps.list_namespaced_deployment("default").items] == \
            ["kept"]
        assert all(p.metadata.name.startswith("kept-")
                   for p in core.list_namespaced_pod("default").items)


def test_changes_are_saved_while_running_not_only_at_a_clean_stop(tmp_path):
    with EmulatorServer(step_delay=0.02, data_dir=tmp_path) as srv:
        apps, _ = apis(srv)
        apps.create_namespaced_deployment("default", deployment("web", replicas=1))

        def saved_names():
            try:
                data = json.loads((tmp_path / "objects.json").read_bytes())
            except (OSError, ValueError):
                return set()
            return {o["metadata"]["name"] for o in data["objects"]["deployments"]}
        wait_for(lambda: "web" in saved_names(), timeout=15, message="a snapshot with the deployment")
        assert srv.stats()["persistence"]["snapshots_written"] >= 1


def test_the_standalone_server_keeps_its_data_across_a_sigterm_restart(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    data = tmp_path / "data"

    def start():
        port = free_port()
        p = subprocess.Popen([sys.executable, "-m", "kube_emulator", "--port", str(port),
                              "--quiet", "--data-dir", str(data)], cwd=root,
                             stderr=subprocess.PIPE, text=True)
        line = p.stderr.readline()
        assert "listening on" in line, line
        return p, f"http://127.0.0.1:{port}", line

    p, url, _ = start()
    try:
        r = requests.post(url + "/api/v1/namespaces", json={"metadata": {"name": "kept"}},
                          timeout=5)
        assert r.status_code == 201
        rv = int(r.json()["metadata"]["resourceVersion"])
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
    assert p.returncode == 0
    p, url, line = start()
    try:
        assert "objects restored" in line
        ns = requests.get(url + "/api/v1/namespaces/kept", timeout=5).json()
        assert int(ns["metadata"]["resourceVersion"]) == rv
        r = requests.post(url + "/api/v1/namespaces", json={"metadata": {"name": "next"}},
                          timeout=5)
        assert int(r.json()["metadata"]["resourceVersion"]) > rv
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)


def test_an_unreadable_snapshot_is_moved_aside_and_the_cluster_starts_empty(tmp_path):
    (tmp_path / "objects.json").write_text("{not json")
    with EmulatorServer(data_dir=tmp_path) as srv:
        _, core = apis(srv)
        assert "default" in {n.metadata.name for n in core.list_namespace().items}
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith("objects.json.unreadable")]
