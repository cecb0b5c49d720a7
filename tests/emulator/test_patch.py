"""Fidelity point 6: strategic merge, JSON merge and JSON patches."""
import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import deployment

pytestmark = pytest.mark.timeout(30)

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"


@pytest.fixture
def dep(k8s_emulator, k8s_api_client):
    k8s_emulator.pause_controller()
    body = deployment("web")
    c = body["spec"]["template"]["spec"]["containers"][0]
    c["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    c["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox:1"})
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    client.AppsV1Api(k8s_api_client).create_namespaced_deployment("default", body)
    return k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments/web"


def patch(url, ctype, body):
    import json
    return requests.patch(url, data=json.dumps(body), headers={"Content-Type": ctype}, timeout=5)


def containers(obj):
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


def test_a_strategic_patch_merges_containers_by_name(dep):
    r = patch(dep, SMP, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.27"}]}}}})
    assert r.status_code == 200, r.text
    cs = containers(r.json())
    assert cs["app"]["image"] == "nginx:1.27"
    assert cs["app"]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]  # kept
    assert "sidecar" in cs  # the other container is kept


def test_a_strategic_patch_merges_env_by_name_and_null_deletes_a_key(dep):
    r = patch(dep, SMP, {"metadata": {"labels": {"app": None, "new": "x"}},
                         "spec": {"template": {"spec": {"containers": [
                             {"name": "app", "env": [{"name": "B", "value": "20"},
                                                     {"name": "C", "value": "3"}]}]}}}})
    assert r.status_code == 200, r.text
    env = containers(r.json())["app"]["env"]
    assert {e["name"]: e["value"] for e in env} == {"A": "1", "B": "20", "C": "3"}
    assert r.json()["metadata"]["labels"] == {"new": "x"}


def test_a_strategic_patch_delete_directive_removes_a_list_element(dep):
    r = patch(dep, SMP, {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "$patch": "delete"},
        {"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}}}})
    assert r.status_code == 200, r.text
    cs = containers(r.json())
    assert list(cs) == ["app"]
    assert [e["name"] for e in cs["app"]["env"]] == ["B"]


def test_a_strategic_patch_replace_directive_replaces_a_map(dep):
    r = patch(dep, SMP, {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["labels"] == {"only": "this"}


def test_a_strategic_patch_merges_ports_volumes_and_mounts_by_their_keys(dep):
    r = patch(dep, SMP, {"spec": {"template": {"spec": {
        "volumes": [{"name": "cache", "emptyDir": {}}],
        "containers": [{"name": "app",
                        "ports": [{"containerPort": 443}],
                        "volumeMounts": [{"mountPath": "/data", "readOnly": True},
                                         {"name": "cache", "mountPath": "/cache"}]}]}}}})
    assert r.status_code == 200, r.text
    obj = r.json()
    app = containers(obj)["app"]
    assert [p["containerPort"] for p in app["ports"]] == [80, 443]
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True},
                                   {"name": "cache", "mountPath": "/cache"}]
    assert [v["name"] for v in obj["spec"]["template"]["spec"]["volumes"]] == ["data", "cache"]


def test_a_merge_patch_replaces_lists_wholesale(dep):
    r = patch(dep, MERGE, {"spec": {"replicas": 6, "template": {"spec": {"containers": [
        {"name": "only", "image": "busybox:2"}]}}}})
    assert r.status_code == 200, r.text
    cs = containers(r.json())
    assert list(cs) == ["only"] and r.json()["spec"]["replicas"] == 6


def test_a_json_patch_supports_every_operation(dep):
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels/added", "value": "yes"},
        {"op": "copy", "from": "/metadata/labels/added", "path": "/metadata/labels/copied"},
        {"op": "move", "from": "/metadata/labels/copied", "path": "/metadata/labels/moved"},
        {"op": "remove", "path": "/spec/template/spec/containers/1"},
        {"op": "add", "path": "/spec/template/spec/containers/0/env/-",
         "value": {"name": "Z", "value": "26"}},
        {"op": "add", "path": "/metadata/annotations", "value": {"example.com/c": "x"}},
        {"op": "add", "path": "/metadata/annotations/example.com~1d", "value": "escaped"},
    ]
    r = patch(dep, JSONP, ops)
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["labels"] == {"app": "web", "added": "yes", "moved": "yes"}
    assert list(containers(obj)) == ["app"]
    assert containers(obj)["app"]["env"][-1] == {"name": "Z", "value": "26"}
    assert obj["metadata"]["annotations"] == {"example.com/c": "x", "example.com/d": "escaped"}


def test_a_failing_json_patch_test_operation_is_422_and_changes_nothing(dep):
    r = patch(dep, JSONP, [{"op": "test", "path": "/spec/replicas", "value": 99},
                           {"op": "replace", "path": "/spec/replicas", "value": 5}])
    assert r.status_code == 422
    assert r.json()["reason"] == "Invalid"
    assert requests.get(dep, timeout=5).json()["spec"]["replicas"] == 2


def test_a_malformed_patch_is_400(dep):
    r = requests.patch(dep, data="{not json", headers={"Content-Type": MERGE}, timeout=5)
    assert r.status_code == 400
    assert r.json()["reason"] == "BadRequest"


def test_patching_a_missing_object_is_404(dep):
    r = patch(dep.replace("/web", "/nope"), MERGE, {"spec": {"replicas": 1}})
    assert r.status_code == 404
    assert r.json()["message"] == 'deployments.apps "nope" not found'


def test_the_official_client_patches_with_strategic_merge_and_json_patch(k8s_api_client, dep):
    apps = client.AppsV1Api(k8s_api_client)
    d = apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "nginx:1.28"}]}}}})
    imgs = {c.name: c.image for c in d.spec.template.spec.containers}
    assert imgs == {"app": "nginx:1.28", "sidecar": "busybox:1"}   # strategic: merged by name
    d = apps.patch_namespaced_deployment("web", "default",
                                         [{"op": "replace", "path": "/spec/replicas", "value": 1}])
    assert d.spec.replicas == 1


def test_dry_run_validates_without_storing(dep, k8s_api_client):
    apps = client.AppsV1Api(k8s_api_client)
    d = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 9}},
                                         dry_run="All")
    assert d.spec.replicas == 9
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 2


def test_the_official_client_can_force_a_merge_patch_and_gets_415_for_apply(k8s_api_client, dep):
    apps = client.AppsV1Api(k8s_api_client)
    d = apps.patch_namespaced_deployment(
        "web", "default", {"spec": {"template": {"spec": {"containers": [
            {"name": "solo", "image": "busybox:3"}]}}}},
        _content_type="application/merge-patch+json")
    assert [c.name for c in d.spec.template.spec.containers] == ["solo"]  # lists replaced
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 1}},
                                         field_manager="me",
                                         _content_type="application/apply-patch+yaml")
    assert e.value.status == 415
