"""Fidelity point 3: label selectors (equality and set-based) and field selectors."""
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import deployment

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def apps(k8s_api_client, k8s_emulator):
    k8s_emulator.pause_controller()
    api = client.AppsV1Api(k8s_api_client)
    api.create_namespaced_deployment("default", deployment("a", labels={"tier": "fe", "env": "prod"}))
    api.create_namespaced_deployment("default", deployment("b", labels={"tier": "be", "env": "dev"}))
    api.create_namespaced_deployment("default", deployment("c", labels={"tier": "db"}))
    return api


def names(api, **kw):
    return sorted(d.metadata.name for d in api.list_namespaced_deployment("default", **kw).items)


@pytest.mark.parametrize("selector,expected", [
    ("tier=fe", ["a"]),
    ("tier==be", ["b"]),
    ("tier!=fe", ["b", "c"]),
    ("tier in (fe,be)", ["a", "b"]),
    ("tier notin (fe, be)", ["c"]),
    ("env", ["a", "b"]),
    ("!env", ["c"]),
    ("env,tier!=be", ["a"]),
    ("env notin (prod)", ["b", "c"]),
    ("app in (a,c),tier", ["a", "c"]),
])
def test_it_filters_lists_by_label_selector(apps, selector, expected):
    assert names(apps, label_selector=selector) == expected


@pytest.mark.parametrize("selector,expected", [
    ("metadata.name=a", ["a"]),
    ("metadata.name==b", ["b"]),
    ("metadata.name!=a", ["b", "c"]),
    ("metadata.namespace=default", ["a", "b", "c"]),
    ("metadata.namespace!=default", []),
    ("metadata.name!=a,metadata.name!=b", ["c"]),
])
def test_it_filters_lists_by_field_selector(apps, selector, expected):
    assert names(apps, field_selector=selector) == expected


def test_an_unsupported_field_selector_is_a_400(apps):
    with pytest.raises(ApiException) as e:
        apps.list_namespaced_deployment("default", field_selector="spec.replicas=1")
    assert e.value.status == 400
    assert "not a known field selector" in e.value.body


def test_a_malformed_label_selector_is_a_400(apps):
    with pytest.raises(ApiException) as e:
        apps.list_namespaced_deployment("default", label_selector="tier in (")
    assert e.value.status == 400


def test_the_all_namespaces_list_spans_namespaces(apps, k8s_api_client):
    client.CoreV1Api(k8s_api_client).create_namespace({"metadata": {"name": "other"}})
    apps.create_namespaced_deployment("other", deployment("a", labels={"tier": "fe"}))
    got = apps.list_deployment_for_all_namespaces(label_selector="tier=fe")
    assert sorted((d.metadata.namespace, d.metadata.name) for d in got.items) == [
        ("default", "a"), ("other", "a")]
    got = apps.list_deployment_for_all_namespaces(field_selector="metadata.namespace=other")
    assert [d.metadata.name for d in got.items] == ["a"]
