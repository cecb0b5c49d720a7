"""Fidelity point 8: namespaces."""
import json
import threading

import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from .helpers import deployment

pytestmark = pytest.mark.timeout(30)


def test_default_namespaces_exist_at_startup(core):
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public"} <= names


def test_a_namespace_can_be_created_read_listed_and_deleted(core):
    ns = core.create_namespace({"metadata": {"name": "team-a", "labels": {"team": "a"}}})
    assert ns.status.phase == "Active"
    assert ns.metadata.labels == {"team": "a", "kubernetes.io/metadata.name": "team-a"}
    assert core.read_namespace("team-a").metadata.uid == ns.metadata.uid
    assert [n.metadata.name for n in core.list_namespace(label_selector="team=a").items] == ["team-a"]
    out = core.delete_namespace("team-a")
    assert out["status"]["phase"] == "Terminating"
    with pytest.raises(ApiException) as e:
        core.read_namespace("team-a")
    assert e.value.status == 404
    assert json.loads(e.value.body)["message"] == 'namespaces "team-a" not found'


def test_creating_an_existing_namespace_is_409(core):
    with pytest.raises(ApiException) as e:
        core.create_namespace({"metadata": {"name": "default"}})
    assert e.value.status == 409
    assert json.loads(e.value.body)["message"] == 'namespaces "default" already exists'


def test_the_default_namespace_cannot_be_deleted(core):
    with pytest.raises(ApiException) as e:
        core.delete_namespace("default")
    assert e.value.status == 403


def test_deleting_a_namespace_deletes_its_deployments_with_events(k8s_emulator, core, apps):
    k8s_emulator.pause_controller()
    core.create_namespace({"metadata": {"name": "doomed"}})
    apps.create_namespaced_deployment("doomed", deployment("a"))
    apps.create_namespaced_deployment("doomed", deployment("b"))
    apps.create_namespaced_deployment("default", deployment("survivor"))
    rv = str(k8s_emulator.resource_version)
    core.delete_namespace("doomed")
    w = watch.Watch()
    evs = list(w.stream(apps.list_deployment_for_all_namespaces, resource_version=rv,
                        timeout_seconds=1))
    assert sorted((e["type"], e["object"].metadata.name) for e in evs) == [
        ("DELETED", "a"), ("DELETED", "b")]
    assert apps.list_namespaced_deployment("doomed").items == []
    assert [d.metadata.name for d in apps.list_deployment_for_all_namespaces().items] == ["survivor"]
    ns_evs = list(watch.Watch().stream(core.list_namespace, resource_version=rv, timeout_seconds=1))
    assert [e["type"] for e in ns_evs] == ["MODIFIED", "DELETED"]


def test_namespaces_can_be_watched(core):
    got = []

    def consume():
        w = watch.Watch()
        for ev in w.stream(core.list_namespace, timeout_seconds=3):
            got.append((ev["type"], ev["object"].metadata.name))
            if ev["object"].metadata.name == "late":
                w.stop()
    t = threading.Thread(target=consume)
    t.start()
    import time
    time.sleep(0.3)
    core.create_namespace({"metadata": {"name": "late"}})
    t.join(5)
    assert ("ADDED", "default") in got and got[-1] == ("ADDED", "late")
