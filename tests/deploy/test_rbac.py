"""The ServiceAccounts get exactly the Kubernetes permissions listed here, and nothing more.

Allowed (DESIGN section 7, issue 7):
- migrate: nothing (no binding, no token mounted);
- api: read-only for a diagnosis (issue 14): get/list pods and events, get pods/log, in the
  target namespaces only, nothing else (the Deployment itself comes from its row);
- worker: get/create/update/delete apps/deployments (exactly the verbs it calls), in the target
  namespaces only;
- watcher: get/list/watch apps/deployments, in the target namespaces only;
no wildcard, nothing on Secrets, no ClusterRole with a write verb.
"""

from collections import defaultdict

from tests.deploy import helpers

ALLOWED = {
    "k8sdm-worker": {("apps", "deployments", frozenset({"get", "create", "update", "delete"}))},
    "k8sdm-watcher": {("apps", "deployments", frozenset({"get", "list", "watch"}))},
    "k8sdm-api": {
        ("", "pods", frozenset({"get", "list"})), ("", "events", frozenset({"get", "list"})),
        ("", "pods/log", frozenset({"get"})),
    },
}
NO_PERMISSIONS = {"k8sdm-migrate", "k8sdm-events", "k8sdm-notifier"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate", "*"}
TARGET_NAMESPACES = {"default"}


def rbac_docs():
    docs = helpers.all_docs(include_examples=True)
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
             for d in docs if d["kind"] in ("Role", "ClusterRole")}
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    return roles, bindings


def grants() -> dict[str, dict[str, set]]:
    """service account -> namespace ('*' for cluster-wide) -> {(apiGroup, resource, frozenset(verbs))}."""
    roles, bindings = rbac_docs()
    result: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for binding in bindings:
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else "*"
        role_ns = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], role_ns, ref["name"]))
        assert role is not None, f"{binding['metadata']['name']} refers to {ref}, which is not shipped"
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", f"bindings are for ServiceAccounts only: {subject}"
            assert subject["namespace"] == "k8sdm"
            for rule in role["rules"]:
                assert "nonResourceURLs" not in rule and "resourceNames" not in rule
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        result[subject["name"]][scope].add((group, resource, frozenset(rule["verbs"])))
    return result


def test_the_worker_the_watcher_and_the_api_get_exactly_their_verbs_in_each_target_namespace():
    found = grants()
    for account, expected in ALLOWED.items():
        assert set(found[account]) == TARGET_NAMESPACES, f"{account} is bound in {set(found[account])}"
        for namespace in TARGET_NAMESPACES:
            assert found[account][namespace] == expected, f"{account} in {namespace}: {found[account][namespace]}"


def test_no_other_service_account_is_bound_to_anything():
    assert set(grants()) == set(ALLOWED)
    for account in NO_PERMISSIONS:
        assert account not in grants()


def test_no_rule_uses_a_wildcard_or_touches_secrets():
    roles, _ = rbac_docs()
    for role in roles.values():
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: wildcard in {field}"
            assert not {"secrets", "pods/exec", "serviceaccounts/token"} & set(rule["resources"])


def test_no_cluster_role_can_write():
    roles, bindings = rbac_docs()
    for (kind, _, name), role in roles.items():
        if kind == "ClusterRole":
            for rule in role["rules"]:
                assert not WRITE_VERBS & set(rule["verbs"]), f"ClusterRole {name} can write"
    assert not [b for b in bindings if b["kind"] == "ClusterRoleBinding" and b["roleRef"]["kind"] == "ClusterRole"
                and any(WRITE_VERBS & set(r["verbs"]) for r in roles[("ClusterRole", None, b["roleRef"]["name"])]["rules"])]


def test_only_the_accounts_with_grants_mount_a_service_account_token():
    accounts = {sa["metadata"]["name"]: sa for sa in helpers.docs_of_kind("ServiceAccount")}
    assert set(accounts) == NO_PERMISSIONS | set(ALLOWED)
    for name in NO_PERMISSIONS:
        assert accounts[name]["automountServiceAccountToken"] is False
    for component, workload in helpers.workloads().items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == f"k8sdm-{component}"
        assert pod["automountServiceAccountToken"] is (f"k8sdm-{component}" in ALLOWED)


def test_the_grants_cover_what_the_kubernetes_adapter_calls():
    # deployments_app/k8s.py: read/create/replace/delete_namespaced_deployment (worker),
    # list/watch (watcher). If it starts calling something else, the Roles must follow.
    source = (helpers.ROOT / "deployments_app" / "k8s.py").read_text()
    calls = set(__import__("re").findall(r"\b(?:api|apps\(\)|core\(\))\.(\w+)", source))
    assert "read_namespaced_deployment" in calls
    assert calls <= {
        "read_namespaced_deployment", "create_namespaced_deployment", "replace_namespaced_deployment",
        "delete_namespaced_deployment", "list_namespaced_deployment", "list_deployment_for_all_namespaces",
        # the api's diagnosis reads (k8sdm-api)
        "list_namespaced_pod", "list_namespaced_event", "read_namespaced_pod_log",
    }, calls
    assert {"list_namespaced_pod", "list_namespaced_event", "read_namespaced_pod_log"} <= calls


def test_the_documented_recipe_for_another_namespace_grants_the_same_there(tmp_path):
    # docs/deploying.md: sed 's/namespace: default$/namespace: team-a/' rbac-targets.yaml
    import re

    import yaml

    text = (helpers.K8S / "rbac-targets.yaml").read_text()
    copied = re.sub(r"namespace: default$", "namespace: team-a", text, flags=re.M)
    docs = [d for d in yaml.safe_load_all(copied) if d]
    assert {d["metadata"]["namespace"] for d in docs} == {"team-a"}
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        assert binding["subjects"][0]["namespace"] == "k8sdm"
    rules = {d["metadata"]["name"]: {(g, r, frozenset(rule["verbs"])) for rule in d["rules"]
                                     for g in rule["apiGroups"] for r in rule["resources"]}
             for d in docs if d["kind"] == "Role"}
    assert rules == ALLOWED


def test_the_workers_verbs_are_exactly_the_verbs_it_calls_through_a_whole_lifecycle(stack, cluster):
    """A real worker applies a CREATE, an UPDATE, a DELETE and the syncs after each; the
    emulator counts each call by verb (the test itself makes none meanwhile)."""
    from deployments_app.models import Deployment
    from requests_app.models import RequestAction, RequestStatus
    from tests.stack import submit, wait_until

    def done(req):
        req.refresh_from_db()
        return req.status != RequestStatus.CREATED

    before = dict(cluster.stats()["requests"]["by_verb"])
    stack.worker()
    create = submit()
    wait_until(lambda: done(create), message="the CREATE")
    deployment = Deployment.objects.get(pk=create.deployment_id)
    update = submit(deployment=deployment, user=deployment.owner, action=RequestAction.UPDATE,
                    config={**create.config, "replicas": 2})
    wait_until(lambda: done(update), message="the UPDATE")
    delete = submit(deployment=deployment, user=deployment.owner, action=RequestAction.DELETE, config={})
    wait_until(lambda: done(delete), message="the DELETE")
    assert [r.status for r in (create, update, delete)] == [RequestStatus.SUCCESS] * 3, [
        r.error for r in (create, update, delete)]
    after = cluster.stats()["requests"]["by_verb"]
    called = {verb for verb, count in after.items() if count > before.get(verb, 0)}
    (granted,) = [verbs for group, resource, verbs in ALLOWED["k8sdm-worker"] if resource == "deployments"]
    assert called == set(granted)


def test_the_apis_diagnosis_and_logs_call_exactly_what_its_role_grants(db, cluster, apps_api):
    """A diagnosis and a logs read of a failing deployment (pods, ReplicaSet and pod events, logs):
    the emulator counts each call by RBAC rule; the api's Role grants those and nothing more."""
    from rest_framework.test import APIClient

    from deployments_app import diagnosis, k8s
    from deployments_app.config import DeploymentConfig
    from deployments_app.sync import deployment_sync
    from tests import factories

    user = factories.UserFactory(user_external_id="rbac@example.com")
    cfg = DeploymentConfig.from_input({"identifier": "rbac", "image": "nginx:fail", "replicas": 2})
    factories.DeploymentFactory(owner=user, identifier="rbac", desired_config=cfg.to_dict())
    apps_api.create_namespaced_deployment("default", cfg.to_manifest(owner=user.user_external_id, request_pk=1))
    deployment_sync(namespace="default", name="rbac", live=k8s.get_deployment("default", "rbac"), created=True)
    api = APIClient()
    api.credentials(HTTP_X_USER_ID="rbac@example.com")
    before = dict(cluster.stats()["requests"]["by_rule"])
    diagnosis.clear_cache()
    body = api.get("/api/v1/deployments/rbac/diagnosis").json()
    assert len(body["pods"]) == 2, body
    logs = api.get("/api/v1/deployments/rbac/logs")
    assert logs.status_code in (200, 409), logs.json()  # 409: the container has not started (image pull)
    after = cluster.stats()["requests"]["by_rule"]
    called = {rule for rule, count in after.items() if count > before.get(rule, 0)}
    granted = {f"{group}/{resource} {verb}" for group, resource, verbs in ALLOWED["k8sdm-api"] for verb in verbs}
    assert called <= granted, called - granted
    assert called == {"/pods list", "/events list", "/pods/log get"}
