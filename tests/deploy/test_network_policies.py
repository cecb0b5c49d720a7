"""docker/k8s/networkpolicies.yaml: the api takes traffic only from the gateway (and Prometheus),
the worker and the watcher only their metrics scrapes; every k8sdm pod is covered by a deny-all.
(Strict schema validation of the file is in test_manifests.py, with every manifest.)"""

from tests.deploy import helpers

GATEWAY = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
           "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}}
PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}


def policies() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in helpers.docs_of_kind("NetworkPolicy")}


def selects(policy: dict, labels: dict) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    assert not policy["spec"]["podSelector"].get("matchExpressions")
    return all(labels.get(k) == v for k, v in wanted.items())


def ingress_of(component: str) -> list[dict]:
    """Every ingress rule that applies to the pods of a component."""
    labels = helpers.workloads()[component]["spec"]["template"]["metadata"]["labels"]
    rules = []
    for policy in policies().values():
        if selects(policy, labels):
            assert policy["spec"]["policyTypes"] == ["Ingress"]
            rules.extend(policy["spec"].get("ingress", []))
    return rules


def container_ports(component: str) -> set[str]:
    spec = helpers.workloads()[component]["spec"]["template"]["spec"]
    return {p["name"] for c in spec["containers"] for p in c.get("ports", [])}


def test_every_pod_of_the_namespace_is_under_a_default_deny():
    deny = policies()["k8sdm-default-deny-ingress"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert {doc["metadata"]["namespace"] for doc in policies().values()} == {"k8sdm"}
    assert {w["metadata"]["namespace"] for w in helpers.workloads().values()} == {"k8sdm"}


def test_the_api_accepts_only_the_gateway_and_prometheus_on_its_http_port():
    rules = ingress_of("api")
    assert len(rules) == 2
    sources = [rule["from"] for rule in rules]
    assert [GATEWAY] in sources and [PROMETHEUS] in sources
    for rule in rules:
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
        for peer in rule["from"]:
            # Namespace AND pod labels in one peer (two peers would mean namespace OR labels);
            # never an ipBlock, never an empty selector (which would match everything).
            assert set(peer) == {"namespaceSelector", "podSelector"}
            assert peer["namespaceSelector"]["matchLabels"] and peer["podSelector"]["matchLabels"]
    assert "http" in container_ports("api")
    service = helpers.docs_of_kind("Service")[0]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_worker_and_watcher_accept_only_metrics_scrapes():
    for component in ("worker", "watcher"):
        rules = ingress_of(component)
        assert rules == [{"from": [PROMETHEUS], "ports": [{"port": "metrics", "protocol": "TCP"}]}], component
        assert "metrics" in container_ports(component), component


def test_the_migration_job_accepts_nothing():
    assert ingress_of("migrate") == []


def test_the_kustomization_ships_the_network_policies():
    text = (helpers.K8S / "kustomization.yaml").read_text()
    assert "networkpolicies.yaml" in text
