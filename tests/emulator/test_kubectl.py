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


# ---------------------------------------------------------------- pods, ReplicaSets, events
def apply_web(kubectl, tmp_path, image="nginx:1.25", replicas=2):
    f = tmp_path / "web.yaml"
    f.write_text(MANIFEST % {"replicas": replicas, "image": image})
    kubectl("apply", "-f", str(f))


def wait_kubectl(kubectl, args, predicate, timeout=15, message=""):
    from .helpers import wait_for
    return wait_for(lambda: (lambda out: predicate(out) and out)(kubectl(*args).stdout),
                    timeout=timeout, interval=0.2, message=message or " ".join(args))


def test_kubectl_get_pods_and_rs_show_the_rollout(kubectl, tmp_path):
    apply_web(kubectl, tmp_path)
    kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    pods = kubectl("get", "pods", "-l", "app=web").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 3 and all(line.split()[1:4] == ["1/1", "Running", "0"]
                                  for line in pods[1:])
    rs = kubectl("get", "rs", "-o", "wide").stdout.splitlines()
    assert rs[0].split()[:5] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    cells = rs[1].split()
    assert cells[0].startswith("web-") and cells[1:4] == ["2", "2", "2"]
    assert "pod-template-hash=" in cells[-1]
    wide = kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert "kube-emulator-node" in wide[1] and "10.244." in wide[1]


def test_kubectl_describe_deployment_names_its_replicasets_and_events(kubectl, tmp_path):
    apply_web(kubectl, tmp_path)
    kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    apply_web(kubectl, tmp_path, image="nginx:1.27")
    kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    out = kubectl("describe", "deployment", "web").stdout
    fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in out.splitlines()
              if line.startswith(("NewReplicaSet:", "OldReplicaSets:"))}
    assert fields["NewReplicaSet"][0].startswith("web-")
    assert fields["NewReplicaSet"][1:] == ["(2/2", "replicas", "created)"]
    assert fields["OldReplicaSets"][0].startswith("web-")
    assert fields["OldReplicaSets"][1:] == ["(0/0", "replicas", "created)"]
    assert "ScalingReplicaSet" in out and "deployment-controller" in out
    assert "Scaled down replica set web-" in out


def test_kubectl_shows_why_pods_fail(kubectl, tmp_path):
    apply_web(kubectl, tmp_path, image="nginx:fail", replicas=1)
    wait_kubectl(kubectl, ["get", "pods"], lambda out: "ImagePullBackOff" in out or
                 "ErrImagePull" in out, message="a pull failure in kubectl get pods")
    events = wait_kubectl(kubectl, ["get", "events"], lambda out: "Error: ErrImagePull" in out)
    assert "Warning" in events and "pod/web-" in events
    name = kubectl("get", "pods", "-o", "name").stdout.split()[0]
    described = kubectl("describe", name).stdout
    assert "Waiting" in described and "Failed to pull image \"nginx:fail\"" in described
    logs = kubectl("logs", name, check=False)
    assert logs.returncode == 1
    assert "is waiting to start" in logs.stderr


def test_kubectl_logs_of_a_deployment_and_of_a_crash(kubectl, tmp_path):
    apply_web(kubectl, tmp_path, replicas=1)
    kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    out = kubectl("logs", "deployment/web", "--tail=1").stdout.splitlines()
    assert len(out) == 1 and out[0].startswith("app: ")
    full = kubectl("logs", "deployment/web", "-c", "app").stdout
    assert "app: listening on port 80" in full
    apply_web(kubectl, tmp_path, image="busybox:crash-7", replicas=1)
    wait_kubectl(kubectl, ["get", "pods"], lambda out: "CrashLoopBackOff" in out,
                 message="CrashLoopBackOff")
    crashing = [line.split()[0] for line in kubectl("get", "pods").stdout.splitlines()[1:]
                if "CrashLoopBackOff" in line][0]
    assert kubectl("logs", crashing, "--previous").stdout.splitlines()[-1] == \
        "app: exiting with code 7"
    described = kubectl("describe", "pod", crashing).stdout
    assert "Exit Code:    7" in described and "CrashLoopBackOff" in described
