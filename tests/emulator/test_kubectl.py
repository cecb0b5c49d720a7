"""The real kubectl (1.37) against the emulator, unchanged, with a generated kubeconfig."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

KUBECTL = str(Path(sys.executable).parent / "kubectl")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: frontend}
spec:
  replicas: %(replicas)d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: %(image)s
        ports: [{containerPort: 80}]
"""


@pytest.fixture
def kubectl(k8s_kubeconfig, tmp_path):
    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl not installed in the virtualenv")

    def run(*args, check=True, timeout=30, stdin=None):
        p = subprocess.run([KUBECTL, "--kubeconfig", k8s_kubeconfig, "--cache-dir",
                            str(tmp_path / "kcache"), *args], capture_output=True, text=True,
                           timeout=timeout, input=stdin)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout}\n{p.stderr}")
        return p
    run.argv = [KUBECTL, "--kubeconfig", k8s_kubeconfig, "--cache-dir", str(tmp_path / "kcache")]
    return run


def apply(kubectl, tmp_path, replicas=2, image="nginx:1.25"):
    f = tmp_path / "web.yaml"
    f.write_text(MANIFEST % {"replicas": replicas, "image": image})
    return kubectl("apply", "-f", str(f))


def get_json(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_kubectl_apply_creates_and_then_configures_a_change(kubectl, tmp_path):
    assert "deployment.apps/web created" in apply(kubectl, tmp_path).stdout
    out = apply(kubectl, tmp_path, replicas=3, image="nginx:1.27").stdout
    assert "deployment.apps/web configured" in out
    d = get_json(kubectl, "deployment", "web")
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert d["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in d["metadata"]["annotations"]
    assert "unchanged" in apply(kubectl, tmp_path, replicas=3, image="nginx:1.27").stdout


def test_kubectl_get_deployments_filters_by_label(kubectl, tmp_path, k8s_api_client):
    from kubernetes import client
    from .helpers import deployment
    apply(kubectl, tmp_path)
    client.AppsV1Api(k8s_api_client).create_namespaced_deployment("default", deployment("api"))
    out = kubectl("get", "deployments", "-l", "tier=frontend").stdout
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"]
    assert [l.split()[0] for l in lines[1:]] == ["web"]
    names = kubectl("get", "deploy", "-l", "app in (web,api)", "-o", "name").stdout.split()
    assert sorted(names) == ["deployment.apps/api", "deployment.apps/web"]


def test_kubectl_get_watch_prints_changes(kubectl, tmp_path):
    apply(kubectl, tmp_path)
    kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    p = subprocess.Popen(kubectl.argv + ["get", "deployments", "-w", "--request-timeout=20s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        header = p.stdout.readline()
        first = p.stdout.readline()
        assert header.split()[:2] == ["NAME", "READY"]
        assert first.split()[:2] == ["web", "2/2"]
        kubectl("scale", "deployment/web", "--replicas=4")
        later = [p.stdout.readline().split() for _ in range(2)]
        assert all(l[0] == "web" for l in later)
        assert any(l[1].endswith("/4") for l in later)
    finally:
        p.kill()
        p.wait(5)


def test_kubectl_patch_strategic_merge_and_json(kubectl, tmp_path):
    apply(kubectl, tmp_path)
    kubectl("patch", "deployment", "web", "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.26"}]}}}}')
    kubectl("patch", "deployment", "web", "--type", "merge", "-p",
            '{"metadata":{"labels":{"patched":"merge"}}}')
    kubectl("patch", "deployment", "web", "--type", "json", "-p",
            '[{"op":"replace","path":"/spec/replicas","value":5}]')
    d = get_json(kubectl, "deployment", "web")
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.26" and c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert d["metadata"]["labels"]["patched"] == "merge"
    assert d["spec"]["replicas"] == 5


def test_kubectl_scale_uses_the_scale_subresource(kubectl, tmp_path):
    apply(kubectl, tmp_path)
    assert "deployment.apps/web scaled" in kubectl("scale", "deployment/web", "--replicas=6").stdout
    assert get_json(kubectl, "deployment", "web")["spec"]["replicas"] == 6


def test_kubectl_rollout_status_ends_with_success(kubectl, tmp_path):
    apply(kubectl, tmp_path, replicas=3)
    p = kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    assert 'deployment "web" successfully rolled out' in p.stdout


def test_kubectl_rollout_status_reports_a_failing_image(kubectl, tmp_path, k8s_emulator):
    k8s_emulator.configure_controller(failure_deadline=0.5)
    apply(kubectl, tmp_path, image="nginx:fail")
    p = kubectl("rollout", "status", "deployment/web", "--timeout=20s", check=False)
    assert p.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in p.stderr


def test_kubectl_delete_removes_the_deployment(kubectl, tmp_path):
    apply(kubectl, tmp_path)
    t0 = time.monotonic()
    assert 'deployment.apps "web" deleted' in kubectl("delete", "deployment", "web").stdout
    assert time.monotonic() - t0 < 5
    p = kubectl("get", "deployment", "web", check=False)
    assert p.returncode != 0
    assert 'deployments.apps "web" not found' in p.stderr


def test_kubectl_sees_the_server_version_and_namespaces(kubectl):
    v = json.loads(kubectl("version", "-o", "json").stdout)
    assert v["serverVersion"]["major"] == "1"
    out = kubectl("get", "namespaces").stdout
    assert "default" in out and "kube-system" in out


def test_kubectl_create_namespace_and_deployment_send_protobuf_that_is_understood(kubectl):
    assert "namespace/team-a created" in kubectl("create", "namespace", "team-a").stdout
    kubectl("-n", "team-a", "create", "deployment", "api", "--image=nginx:1.25",
            "--replicas=2", "--port=8080")
    d = get_json(kubectl, "-n", "team-a", "deployment", "api")
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert (c["name"], c["image"], c["ports"][0]["containerPort"]) == ("nginx", "nginx:1.25", 8080)
    assert d["spec"]["replicas"] == 2 and d["spec"]["selector"] == {"matchLabels": {"app": "api"}}
    kubectl("-n", "team-a", "rollout", "status", "deployment/api", "--timeout=20s")
    assert 'namespace "team-a" deleted' in kubectl("delete", "namespace", "team-a").stdout


def test_kubectl_apply_rejects_a_misspelled_field(kubectl, tmp_path):
    f = tmp_path / "typo.yaml"
    f.write_text((MANIFEST % {"replicas": 1, "image": "nginx:1.25"}).replace(
        "  replicas: 1", "  replica: 1"))
    p = kubectl("apply", "-f", str(f), check=False)
    assert p.returncode != 0
    assert 'unknown field "spec.replica"' in p.stderr
