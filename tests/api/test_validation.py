"""Bad input is refused with 400 naming the field, before anything is stored."""

from __future__ import annotations

import pytest

from deployments_app.models import Deployment
from deployments_app.validators import image_registry, parse_quantity
from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, change_url, config
from users_app.models import User

pytestmark = pytest.mark.django_db

BAD = [
    # (field overrides, field path named in the error)
    ({"identifier": "Web"}, "identifier"),
    ({"identifier": "-web"}, "identifier"),
    ({"identifier": "web-"}, "identifier"),
    ({"identifier": "w" * 64}, "identifier"),
    ({"identifier": "web.app"}, "identifier"),
    ({"identifier": ""}, "identifier"),
    ({"identifier": 7}, "identifier"),
    ({"namespace": "kube-system"}, "namespace"),
    ({"namespace": "kube-public"}, "namespace"),
    ({"namespace": "kube-node-lease"}, "namespace"),
    ({"namespace": "other"}, "namespace"),
    ({"image": ""}, "image"),
    ({"image": "NGINX"}, "image"),
    ({"image": "nginx:"}, "image"),
    ({"image": "nginx@sha256:short"}, "image"),
    ({"image": "a b"}, "image"),
    ({"image": "x" * 513}, "image"),
    ({"image": ["nginx"]}, "image"),
    ({"replicas": -1}, "replicas"),
    ({"replicas": 21}, "replicas"),
    ({"replicas": "3"}, "replicas"),
    ({"replicas": 1.5}, "replicas"),
    ({"replicas": True}, "replicas"),
    ({"replicas": None}, "replicas"),
    ({"labels": {"bad key": "v"}}, "labels.bad key"),
    ({"labels": {"k": "bad value"}}, "labels.k"),
    ({"labels": {"k": "v" * 64}}, "labels.k"),
    ({"labels": {"k8sdm.io/owner": "me"}}, "labels.k8sdm.io/owner"),
    ({"labels": {"app.kubernetes.io/name": "x"}}, "labels.app.kubernetes.io/name"),
    ({"labels": {"app.kubernetes.io/managed-by": "x"}}, "labels.app.kubernetes.io/managed-by"),
    ({"labels": {"Bad_Prefix/x": "v"}}, "labels.Bad_Prefix/x"),
    ({"labels": {"K8SDM.IO/owner": "me"}}, "labels.K8SDM.IO/owner"),
    ({"labels": {"kubernetes.io/hostname": "n1"}}, "labels.kubernetes.io/hostname"),
    ({"labels": {"Node-Role.Kubernetes.IO/x": "v"}}, "labels.Node-Role.Kubernetes.IO/x"),
    ({"labels": {"k8s.io/x": "v"}}, "labels.k8s.io/x"),
    ({"annotations": {"pod-security.kubernetes.io/enforce": "privileged"}},
     "annotations.pod-security.kubernetes.io/enforce"),
    ({"annotations": {"Sub.K8s.Io/x": "v"}}, "annotations.Sub.K8s.Io/x"),
    ({"annotations": {"x.k8sdm.io/y": "v"}}, "annotations.x.k8sdm.io/y"),
    ({"resources": {"limits": {"cpu": "1e999999999"}}}, "resources.limits.cpu"),
    ({"resources": {"requests": {"cpu": "1025"}}}, "resources.requests.cpu"),
    ({"resources": {"limits": {"memory": "65Ti"}}}, "resources.limits.memory"),
    ({"resources": {"limits": {"memory": "1Ei"}}}, "resources.limits.memory"),
    ({"labels": {"/x": "v"}}, "labels./x"),
    ({"labels": {"k": 1}}, "labels.k"),
    ({"labels": ["k"]}, "labels"),
    ({"labels": {f"k{i}": "v" for i in range(65)}}, "labels"),
    ({"annotations": {"k8sdm.io/last-request": "1"}}, "annotations.k8sdm.io/last-request"),
    ({"annotations": {f"k{i}": "v" * 16000 for i in range(3)}}, "annotations"),
    ({"env": [{"name": "1BAD", "value": "x"}]}, "env[0].name"),
    ({"env": [{"name": "A-B"}]}, "env[0].name"),
    ({"env": [{"name": "A"}, {"name": "A"}]}, "env"),
    ({"env": [{"name": "A", "value": 1}]}, "env[0].value"),
    ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {}}}]}, "env[0].valueFrom"),
    ({"env": [{"name": f"V{i}"} for i in range(101)]}, "env"),
    ({"ports": [{"container_port": 0}]}, "ports[0].container_port"),
    ({"ports": [{"container_port": 65536}]}, "ports[0].container_port"),
    ({"ports": [{"container_port": 80, "protocol": "HTTP"}]}, "ports[0].protocol"),
    ({"ports": [{"container_port": 80, "name": "this-is-too-long-name"}]}, "ports[0].name"),
    ({"ports": [{"container_port": 80, "name": "80"}]}, "ports[0].name"),
    ({"ports": [{"container_port": 80, "name": "a--b"}]}, "ports[0].name"),
    ({"ports": [{"container_port": 80}, {"container_port": 80}]}, "ports"),
    ({"ports": [{"container_port": 80, "name": "h"}, {"container_port": 81, "name": "h"}]}, "ports"),
    ({"ports": [{"container_port": 80, "hostPort": 80}]}, "ports[0].hostPort"),
    ({"ports": [{"container_port": 80 + i} for i in range(21)]}, "ports"),
    ({"resources": {"limits": {"cpu": "lots"}}}, "resources.limits.cpu"),
    ({"resources": {"limits": {"memory": "-1Gi"}}}, "resources.limits.memory"),
    ({"resources": {"limits": {"gpu": "1"}}}, "resources.limits.gpu"),
    ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}}, "resources.requests.cpu"),
    ({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1G"}}}, "resources.requests.memory"),
    ({"command": "sh -c"}, "command"),
    ({"command": [1]}, "command[0]"),
    ({"args": ["x"] * 65}, "args"),
    ({"args": ["x" * 4097]}, "args[0]"),
    # no raw pod spec, no mass assignment
    ({"privileged": True}, "privileged"),
    ({"hostNetwork": True}, "hostNetwork"),
    ({"hostPath": "/"}, "hostPath"),
    ({"serviceAccount": "admin"}, "serviceAccount"),
    ({"serviceAccountName": "admin"}, "serviceAccountName"),
    ({"securityContext": {"privileged": True}}, "securityContext"),
    ({"status": "CREATED"}, "status"),
    ({"user": "someone"}, "user"),
    ({"resource_version": "1"}, "resource_version"),
    ({"request_id": "has space"}, "request_id"),
    ({"request_id": "x" * 129}, "request_id"),
]


@pytest.mark.parametrize("overrides,path", BAD, ids=[p for _, p in BAD])
def test_bad_config_is_400_naming_the_field_and_nothing_is_stored(alice, overrides, path):
    response = alice.post(CREATE_URL, config(**overrides), format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert path in error["fields"], error["fields"]
    assert all(isinstance(r, str) and r for r in error["fields"][path])
    assert not DeploymentRequest.objects.exists()
    assert not Deployment.objects.exists()
    assert not User.objects.exists()


@pytest.mark.parametrize("overrides,path", [b for b in BAD if "identifier" not in b[0] and b[1] != "request_id"][:30])
def test_bad_patches_are_refused_the_same_way(alice, created, overrides, path):
    response = alice.patch(change_url("web"), overrides, format="json")
    assert response.status_code == 400
    assert path in response.json()["error"]["fields"]
    assert DeploymentRequest.objects.count() == 1


def test_missing_required_fields_are_named(alice):
    response = alice.post(CREATE_URL, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"identifier", "image"}


def test_a_body_that_is_not_an_object_is_400(alice):
    response = alice.post(CREATE_URL, ["web"], format="json")
    assert response.status_code == 400
    assert "body" in response.json()["error"]["fields"]


def test_malformed_json_is_400(alice):
    response = alice.post(CREATE_URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"


def test_several_problems_are_reported_together(alice):
    response = alice.post(CREATE_URL, config(replicas=-1, image="BAD", extra=1), format="json")
    assert set(response.json()["error"]["fields"]) == {"replicas", "image", "extra"}


GOOD_IMAGES = [
    "nginx", "nginx:1.27", "library/nginx:latest", "docker.io/library/nginx:1.27",
    "registry.example.com:5000/team/app:v1.2.3-rc_1", "localhost/app", "ghcr.io/o/r/deep/path:1",
    "nginx@sha256:" + "a" * 64, "nginx:1.27@sha256:" + "0" * 64, "[::1]:5000/app:1",
]


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_valid_image_references_are_accepted(alice, image):
    assert alice.post(CREATE_URL, config(image=image), format="json").status_code == 202


@pytest.mark.parametrize(
    "image,registry",
    [("nginx:1.27", "docker.io"), ("library/nginx", "docker.io"), ("ghcr.io/o/r", "ghcr.io"),
     ("localhost:5000/a", "localhost:5000"), ("localhost/a", "localhost"), ("team/app", "docker.io")],
)
def test_the_registry_of_an_image(image, registry):
    assert image_registry(image) == registry


def test_allowed_registries_are_enforced_with_docker_hub_implicit(alice, settings):
    settings.K8SDM_ALLOWED_REGISTRIES = ["registry.example.com"]
    for image in ("nginx:1.27", "ghcr.io/a/b:1"):
        response = alice.post(CREATE_URL, config(image=image), format="json")
        assert response.status_code == 400
        assert "not allowed" in response.json()["error"]["fields"]["image"][0]
    assert alice.post(CREATE_URL, config(image="registry.example.com/a:1"), format="json").status_code == 202
    settings.K8SDM_ALLOWED_REGISTRIES = ["docker.io"]
    assert alice.post(CREATE_URL, config("w2", image="nginx:1.27"), format="json").status_code == 202


def test_kube_system_is_refused_even_when_configured(alice, settings):
    settings.K8SDM_ALLOWED_NAMESPACES = ["default", "kube-system"]
    response = alice.post(CREATE_URL, config(namespace="kube-system"), format="json")
    assert response.status_code == 400
    assert "reserved" in response.json()["error"]["fields"]["namespace"][0]


def test_the_maximum_replicas_comes_from_settings(alice, settings):
    settings.K8SDM_MAX_REPLICAS = 3
    assert alice.post(CREATE_URL, config(replicas=4), format="json").status_code == 400
    assert alice.post(CREATE_URL, config(replicas=3), format="json").status_code == 202


def test_replicas_zero_is_allowed(alice):
    assert alice.post(CREATE_URL, config(replicas=0), format="json").json()["config"]["replicas"] == 0


def test_good_labels_and_annotations_are_kept(alice):
    labels = {"a": "", "example.com/b": "x.y-z_1", "c" * 63: "v" * 63}
    annotations = {"k8s.example.com/note": "any text, even spaces: ok", "x": ""}
    body = alice.post(CREATE_URL, config(labels=labels, annotations=annotations), format="json").json()
    assert body["config"]["labels"] == labels
    assert body["config"]["annotations"] == annotations


@pytest.mark.parametrize(
    "quantity,value",
    [("100m", "0.1"), ("0.5", "0.5"), ("128Mi", str(128 * 2**20)), ("1G", "1000000000"), ("1e3", "1000"), ("2", "2")],
)
def test_quantities_parse(quantity, value):
    from decimal import Decimal

    assert parse_quantity(quantity) == Decimal(value)


def test_an_absurd_quantity_is_refused_with_its_bound_and_the_largest_sane_ones_are_accepted(alice):
    response = alice.post(CREATE_URL, config(resources={"limits": {"cpu": "1e999999999"}}), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["resources.limits.cpu"] == ["must be at most 1024 (cores)"]
    response = alice.post(CREATE_URL, config(resources={"limits": {"cpu": "1024", "memory": "64Ti"},
                                                        "requests": {"cpu": "100m", "memory": "1e3"}}), format="json")
    assert response.status_code != 400, response.json()  # valid input (the default policy's quota may refuse it: 422)


def test_label_keys_under_other_domains_that_merely_contain_kubernetes_are_allowed(alice):
    response = alice.post(CREATE_URL, config(labels={"example.com/kubernetes.io": "x", "mykubernetes.io/x": "y"}),
                          format="json")
    assert response.status_code == 202, response.json()
