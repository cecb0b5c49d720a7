"""Smaller API surfaces: deletecollection, generateName, YAML bodies, dry-run create,
namespace updates, legacy /watch/ paths, discovery documents."""
import json

import pytest
import requests
import yaml
from kubernetes import client

from .helpers import deployment

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def apps(k8s_api_client, k8s_emulator):
    k8s_emulator.pause_controller()
    return client.AppsV1Api(k8s_api_client)


def test_deletecollection_deletes_what_the_selector_matches(apps):
    apps.create_namespaced_deployment("default", deployment("a", labels={"tier": "fe"}))
    apps.create_namespaced_deployment("default", deployment("b", labels={"tier": "fe"}))
    apps.create_namespaced_deployment("default", deployment("c", labels={"tier": "be"}))
    # like the apiserver, the answer is the list of deleted objects (the client's V1Status
    # model would drop the items, so read the raw body)
    out = json.loads(apps.delete_collection_namespaced_deployment(
        "default", label_selector="tier=fe", _preload_content=False).read())
    assert out["kind"] == "DeploymentList"
    assert sorted(i["metadata"]["name"] for i in out["items"]) == ["a", "b"]
    assert [d.metadata.name for d in apps.list_namespaced_deployment("default").items] == ["c"]


def test_generate_name_makes_a_unique_name(apps):
    body = deployment("x")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "web-"
    a = apps.create_namespaced_deployment("default", body)
    b = apps.create_namespaced_deployment("default", body)
    assert a.metadata.name.startswith("web-") and a.metadata.name != b.metadata.name


def test_a_yaml_body_is_accepted(k8s_emulator, apps):
    r = requests.post(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      data=yaml.safe_dump(deployment("from-yaml")),
                      headers={"Content-Type": "application/yaml"}, timeout=5)
    assert r.status_code == 201
    assert apps.read_namespaced_deployment("from-yaml", "default").spec.replicas == 2


def test_a_dry_run_create_stores_nothing(apps):
    d = apps.create_namespaced_deployment("default", deployment("ghost"), dry_run="All")
    assert d.metadata.name == "ghost" and d.metadata.uid
    assert apps.list_namespaced_deployment("default").items == []


def test_namespaces_can_be_updated_and_patched(k8s_api_client):
    core = client.CoreV1Api(k8s_api_client)
    core.create_namespace({"metadata": {"name": "team-b"}})
    ns = core.read_namespace("team-b")
    ns.metadata.labels["owner"] = "b"
    out = core.replace_namespace("team-b", ns)
    assert out.metadata.labels["owner"] == "b"
    out = core.patch_namespace("team-b", {"metadata": {"annotations": {"example.com/x": "y"}}})
    assert out.metadata.annotations == {"example.com/x": "y"}
    assert out.metadata.labels["kubernetes.io/metadata.name"] == "team-b"


def test_the_legacy_watch_path_streams_events(k8s_emulator, apps):
    apps.create_namespaced_deployment("default", deployment("a"))
    with requests.get(k8s_emulator.url + "/apis/apps/v1/watch/namespaces/default/deployments",
                      params={"timeoutSeconds": "1"}, stream=True, timeout=5) as r:
        lines = [json.loads(l) for l in r.iter_lines() if l]
    assert [(l["type"], l["object"]["metadata"]["name"]) for l in lines] == [("ADDED", "a")]


def test_discovery_documents_describe_the_served_resources(k8s_emulator):
    base = k8s_emulator.url
    assert requests.get(base + "/api", timeout=5).json()["versions"] == ["v1"]
    groups = requests.get(base + "/apis", timeout=5).json()
    assert groups["kind"] == "APIGroupList"
    assert [g["name"] for g in groups["groups"]] == ["apps"]
    res = {r["name"]: r for r in requests.get(base + "/apis/apps/v1", timeout=5).json()["resources"]}
    assert res["deployments"]["kind"] == "Deployment" and res["deployments"]["namespaced"]
    assert (res["deployments/scale"]["group"], res["deployments/scale"]["kind"]) == (
        "autoscaling", "Scale")
    core = {r["name"] for r in requests.get(base + "/api/v1", timeout=5).json()["resources"]}
    assert "namespaces" in core
    v = requests.get(base + "/version", timeout=5).json()
    assert (v["major"], v["minor"]) == ("1", "37")


def test_list_output_as_a_table_for_kubectl(k8s_emulator, apps):
    apps.create_namespaced_deployment("default", deployment("a"))
    r = requests.get(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                     headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}, timeout=5)
    t = r.json()
    assert t["kind"] == "Table"
    assert [c["name"] for c in t["columnDefinitions"]][:5] == [
        "Name", "Ready", "Up-to-date", "Available", "Age"]
    assert t["rows"][0]["cells"][:4] == ["a", "0/2", 0, 0]
