"""Fidelity points 1 and 2: Status bodies with real reasons/messages, and metadata."""
import json

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import deployment

pytestmark = pytest.mark.timeout(30)


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def test_it_answers_404_not_found_with_a_status_body_for_a_missing_deployment(apps):
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment("web", "default")
    assert e.value.status == 404
    body = status_of(e.value)
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'deployments.apps "web" not found', "reason": "NotFound",
                    "details": {"name": "web", "group": "apps", "kind": "deployments"},
                    "code": 404}


def test_it_answers_409_already_exists_when_creating_a_duplicate(apps):
    apps.create_namespaced_deployment("default", deployment("web"))
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", deployment("web"))
    assert e.value.status == 409
    body = status_of(e.value)
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'deployments.apps "web" already exists'


def test_it_returns_409_conflict_on_a_stale_put(k8s_emulator, apps):
    k8s_emulator.pause_controller()  # its status writes would make `first` stale too
    created = apps.create_namespaced_deployment("default", deployment("web"))
    first = apps.read_namespaced_deployment("web", "default")
    first.spec.replicas = 5
    apps.replace_namespaced_deployment("web", "default", first)
    stale = created
    stale.spec.replicas = 7
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment("web", "default", stale)
    assert e.value.status == 409
    body = status_of(e.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on deployments.apps "web": the object '
                               'has been modified; please apply your changes to the latest version '
                               'and try again')


def test_a_put_with_an_empty_resource_version_is_unconditional(apps):
    apps.create_namespaced_deployment("default", deployment("web"))
    body = deployment("web", replicas=4)
    body["metadata"]["resourceVersion"] = ""
    out = apps.replace_namespaced_deployment("web", "default", body)
    assert out.spec.replicas == 4


def test_a_resource_version_in_a_patch_body_is_a_precondition(k8s_emulator, apps):
    k8s_emulator.pause_controller()  # its status writes would change the resourceVersion
    d = apps.create_namespaced_deployment("default", deployment("web"))
    rv = d.metadata.resource_version
    ok = apps.patch_namespaced_deployment(
        "web", "default", {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 3}})
    assert ok.spec.replicas == 3
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment(
            "web", "default", {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 9}})
    assert e.value.status == 409
    assert status_of(e.value)["reason"] == "Conflict"


def test_it_answers_422_invalid_with_causes(apps):
    bad = deployment("web", replicas=-1)
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", bad)
    assert e.value.status == 422
    body = status_of(e.value)
    assert body["reason"] == "Invalid"
    assert body["message"] == ('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: '
                               'must be greater than or equal to 0')
    assert body["details"]["kind"] == "Deployment"
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid",
                                          "message": "Invalid value: -1: must be greater than or "
                                                     "equal to 0",
                                          "field": "spec.replicas"}]


def test_it_reports_every_missing_required_field(k8s_emulator):
    # (the v37 client validates these client-side, so send the raw request)
    bad = {"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{}]}}}}
    r = requests.post(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      json=bad, timeout=5)
    assert r.status_code == 422
    fields = {c["field"] for c in r.json()["details"]["causes"]}
    assert {"spec.selector", "spec.template.spec.containers[0].name",
            "spec.template.spec.containers[0].image"} <= fields


def test_it_rejects_a_selector_that_does_not_match_the_template_labels(apps):
    bad = deployment("web")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", bad)
    assert e.value.status == 422
    causes = status_of(e.value)["details"]["causes"]
    assert causes[0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in causes[0]["message"]


def test_it_rejects_names_that_are_not_dns_1123(apps, core):
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", deployment("Web_App", app="web"))
    assert e.value.status == 422
    assert status_of(e.value)["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiException) as e:
        core.create_namespace({"metadata": {"name": "a.b"}})   # a subdomain, not a label
    assert e.value.status == 422


def test_spec_selector_is_immutable(apps):
    apps.create_namespaced_deployment("default", deployment("web"))
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment(
            "web", "default", {"spec": {"selector": {"matchLabels": {"app": "web", "x": "y"}},
                                        "template": {"metadata": {"labels": {"x": "y"}}}}})
    assert e.value.status == 422
    causes = status_of(e.value)["details"]["causes"]
    assert any(c["field"] == "spec.selector" and "field is immutable" in c["message"]
               for c in causes)


def test_a_deployment_in_a_missing_namespace_is_404(apps):
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("nowhere", deployment("web"))
    assert e.value.status == 404
    assert status_of(e.value)["message"] == 'namespaces "nowhere" not found'


def test_it_answers_405_for_a_method_the_resource_does_not_allow(k8s_emulator):
    r = requests.post(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments/web",
                      json={}, timeout=5)
    assert r.status_code == 405
    assert r.json()["reason"] == "MethodNotAllowed"


def test_it_answers_415_for_server_side_apply_and_unknown_patch_types(k8s_emulator, apps):
    apps.create_namespaced_deployment("default", deployment("web"))
    url = k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments/web"
    r = requests.patch(url, data="{}", headers={"Content-Type": "application/apply-patch+yaml"},
                       timeout=5)
    assert r.status_code == 415
    assert r.json()["reason"] == "UnsupportedMediaType"
    assert "server-side apply is not supported by this emulator" in r.json()["message"]
    r = requests.patch(url, data="{}", headers={"Content-Type": "text/x-nonsense"}, timeout=5)
    assert r.status_code == 415
    assert r.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the body of the request was in an unknown format - accepted media types "
                   "include: application/json-patch+json, application/merge-patch+json, "
                   "application/strategic-merge-patch+json, application/apply-patch+yaml",
        "reason": "UnsupportedMediaType", "code": 415}


# The apiserver's own answer (content negotiation of object bodies), byte for byte
UNKNOWN_FORMAT = {
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": "the body of the request was in an unknown format - accepted media types "
               "include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    "reason": "UnsupportedMediaType", "code": 415}


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "application/merge-patch+json",
    "application/x-yaml", "*/*", "not a media type"])
def test_a_create_body_in_a_format_the_apiserver_refuses_is_415_and_nothing_is_stored(
        k8s_emulator, apps, content_type):
    url = k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments"
    r = requests.post(url, data=json.dumps(deployment("web")),
                      headers={"Content-Type": content_type}, timeout=5)
    assert (r.status_code, r.json()) == (415, UNKNOWN_FORMAT)
    assert apps.list_namespaced_deployment("default").items == []


def test_an_update_or_delete_body_in_a_refused_format_is_415_and_changes_nothing(
        k8s_emulator, apps):
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    url = k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments/web"
    r = requests.put(url, data=json.dumps(deployment("web", replicas=5)),
                     headers={"Content-Type": "text/plain"}, timeout=5)
    assert (r.status_code, r.json()) == (415, UNKNOWN_FORMAT)
    r = requests.delete(url, data="{}", headers={"Content-Type": "text/plain"}, timeout=5)
    assert (r.status_code, r.json()) == (415, UNKNOWN_FORMAT)
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 2


def test_a_body_without_a_content_type_is_read_as_json_and_charset_is_ignored(k8s_emulator, apps):
    url = k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments"
    r = requests.post(url, data=json.dumps(deployment("plain")).encode(), timeout=5)
    assert r.status_code == 201, r.text
    r = requests.post(url, data=json.dumps(deployment("charset")),
                      headers={"Content-Type": "application/json; charset=utf-8"}, timeout=5)
    assert r.status_code == 201, r.text
    assert [d.metadata.name for d in apps.list_namespaced_deployment("default").items] == [
        "charset", "plain"]


def test_unknown_paths_answer_a_404_status(k8s_emulator):
    r = requests.get(k8s_emulator.url + "/apis/apps/v1/namespaces/default/statefulsets", timeout=5)
    assert r.status_code == 404
    assert r.json()["message"] == "the server could not find the requested resource"


def test_create_fills_in_server_side_metadata(apps):
    d = apps.create_namespaced_deployment("default", deployment("web", labels={"team": "a"}))
    m = d.metadata
    assert m.uid and m.creation_timestamp is not None
    assert m.namespace == "default"
    assert m.generation == 1
    assert int(m.resource_version) > 0
    assert m.labels == {"app": "web", "team": "a"}


def test_resource_versions_come_from_one_cluster_wide_counter(apps, core):
    a = apps.create_namespaced_deployment("default", deployment("a"))
    ns = core.create_namespace({"metadata": {"name": "team-x"}})
    b = apps.create_namespaced_deployment("team-x", deployment("b"))
    rvs = [int(a.metadata.resource_version), int(ns.metadata.resource_version),
           int(b.metadata.resource_version)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_generation_is_bumped_by_spec_changes_only(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("web"))
    d = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "1"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 5}})
    assert d.metadata.generation == 2
    before = d.metadata.resource_version
    d = apps.patch_namespaced_deployment_status(
        "web", "default", {"status": {"observedGeneration": 2, "replicas": 1}})
    assert d.metadata.generation == 2
    assert int(d.metadata.resource_version) > int(before)


def test_a_noop_update_does_not_bump_the_resource_version(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    d = apps.create_namespaced_deployment("default", deployment("web"))
    again = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 2}})
    assert again.metadata.resource_version == d.metadata.resource_version


def test_list_responses_carry_kind_api_version_and_the_current_resource_version(k8s_emulator):
    r = requests.get(k8s_emulator.url + "/apis/apps/v1/deployments", timeout=5).json()
    assert r["kind"] == "DeploymentList" and r["apiVersion"] == "apps/v1"
    assert r["metadata"]["resourceVersion"] == str(k8s_emulator.resource_version)
    r = requests.get(k8s_emulator.url + "/api/v1/namespaces", timeout=5).json()
    assert r["kind"] == "NamespaceList" and r["apiVersion"] == "v1"


def test_delete_returns_a_success_status_and_the_object_is_gone(apps):
    d = apps.create_namespaced_deployment("default", deployment("web"))
    st = apps.delete_namespaced_deployment("web", "default")  # v37 client: a plain dict
    assert st["kind"] == "Status" and st["status"] == "Success"
    assert st["details"] == {"name": "web", "group": "apps", "kind": "deployments",
                             "uid": d.metadata.uid}
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment("web", "default")
    assert e.value.status == 404


def test_delete_honours_preconditions(apps):
    apps.create_namespaced_deployment("default", deployment("web"))
    with pytest.raises(ApiException) as e:
        apps.delete_namespaced_deployment(
            "web", "default", body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(resource_version="1")))
    assert e.value.status == 409


def test_delete_with_the_uid_of_a_replaced_object_is_a_conflict_and_deletes_nothing(apps):
    old = apps.create_namespaced_deployment("default", deployment("web"))
    apps.delete_namespaced_deployment("web", "default")
    new = apps.create_namespaced_deployment("default", deployment("web"))
    with pytest.raises(ApiException) as e:
        apps.delete_namespaced_deployment(
            "web", "default", body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid=old.metadata.uid)))
    assert e.value.status == 409 and "Precondition failed: UID" in e.value.body
    assert apps.read_namespaced_deployment("web", "default").metadata.uid == new.metadata.uid
    apps.delete_namespaced_deployment("web", "default", body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=new.metadata.uid)))
    assert apps.list_namespaced_deployment("default").items == []


def test_labels_and_annotations_are_preserved(apps):
    body = deployment("web")
    body["metadata"]["annotations"] = {"example.com/owner": "team-a"}
    apps.create_namespaced_deployment("default", body)
    d = apps.read_namespaced_deployment("web", "default")
    assert d.metadata.annotations == {"example.com/owner": "team-a"}
    assert d.metadata.labels == {"app": "web"}


def test_pagination_with_limit_and_continue(apps):
    for i in range(5):
        apps.create_namespaced_deployment("default", deployment(f"web-{i}", app="web"))
    page1 = apps.list_namespaced_deployment("default", limit=2)
    assert [d.metadata.name for d in page1.items] == ["web-0", "web-1"]
    assert page1.metadata.remaining_item_count == 3
    apps.delete_namespaced_deployment("web-2", "default")  # the continued list stays consistent
    page2 = apps.list_namespaced_deployment("default", limit=2, _continue=page1.metadata._continue)
    assert [d.metadata.name for d in page2.items] == ["web-2", "web-3"]
    assert page2.metadata.resource_version == page1.metadata.resource_version


def test_a_list_continue_token_older_than_the_event_log_is_410_expired(k8s_emulator, apps):
    for i in range(3):
        apps.create_namespaced_deployment("default", deployment(f"web-{i}", app="web"))
    page1 = apps.list_namespaced_deployment("default", limit=1)
    apps.create_namespaced_deployment("default", deployment("late", app="web"))
    k8s_emulator.compact()
    with pytest.raises(ApiException) as e:
        apps.list_namespaced_deployment("default", limit=1, _continue=page1.metadata._continue)
    assert e.value.status == 410
    assert status_of(e.value)["reason"] == "Expired"


def test_a_list_at_an_exact_resource_version_shows_the_past_or_410(k8s_emulator, apps):
    a = apps.create_namespaced_deployment("default", deployment("a"))
    apps.create_namespaced_deployment("default", deployment("b"))
    old = apps.list_namespaced_deployment("default", resource_version=a.metadata.resource_version,
                                          resource_version_match="Exact")
    assert [d.metadata.name for d in old.items] == ["a"]
    k8s_emulator.compact()
    apps.create_namespaced_deployment("default", deployment("c"))
    with pytest.raises(ApiException) as e:
        apps.list_namespaced_deployment("default", resource_version=a.metadata.resource_version,
                                        resource_version_match="Exact")
    assert e.value.status == 410
    assert status_of(e.value)["reason"] == "Expired"


def test_annotation_changes_bump_generation_like_the_real_apiserver(k8s_emulator, apps):
    """kube-apiserver's Deployment strategy bumps generation on spec *or* annotation changes
    (annotations are copied to ReplicaSets); label changes do not."""
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("web"))
    d = apps.patch_namespaced_deployment("web", "default",
                                         {"metadata": {"annotations": {"example.com/x": "1"}}})
    assert d.metadata.generation == 2


def test_unknown_fields_are_dropped_with_a_warning_header(k8s_emulator):
    body = deployment("web")
    body["spec"]["replica"] = 3            # typo
    body["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "x"
    r = requests.post(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      json=body, timeout=5)
    assert r.status_code == 201
    assert "replica" not in r.json()["spec"]
    warnings = r.headers.getall("Warning") if hasattr(r.headers, "getall") else \
        r.raw.headers.getlist("Warning")
    assert '299 - "unknown field \\"spec.replica\\""' in warnings
    assert any("spec.template.spec.containers[0].imagePolicy" in w for w in warnings)


def test_unknown_fields_are_a_400_with_strict_field_validation(k8s_emulator):
    body = deployment("web")
    body["spec"]["replica"] = 3
    r = requests.post(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      params={"fieldValidation": "Strict"}, json=body, timeout=5)
    assert r.status_code == 400
    assert r.json()["reason"] == "BadRequest"
    assert r.json()["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: '
                                   'strict decoding error: unknown field "spec.replica"')
