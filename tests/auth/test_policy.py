"""Per-user policy and quotas: checked before anything is stored, safe under concurrency."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User as StaffUser
from django.db import connection

from deployments_app.models import Deployment, DeploymentStatus
from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, change_url, config
from users_app.models import Refusal, User, UserPolicy
from users_app.policy import image_repository, registry_allowed

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(caller):
    return caller("alice@example.com")


def policy_for(external_id: str, **fields) -> UserPolicy:
    user, _ = User.objects.get_or_create(user_external_id=external_id)
    return UserPolicy.objects.update_or_create(user=user, defaults=fields)[0]


def create(client, identifier, **overrides):
    return client.post(CREATE_URL, config(identifier, **overrides), format="json")


def resources(cpu=None, memory=None, requests=False) -> dict:
    values = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"resources": {"requests" if requests else "limits": values}}


def assert_quota(response, limit_name, limit, usage, ask, field):
    assert response.status_code == 422, response.json()
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["fields"] == {field: [f"{limit_name}: limit {limit}, in use {usage}, asked {ask}"]}
    assert limit_name in error["message"]


def counts():
    return Deployment.objects.count(), DeploymentRequest.objects.count()


# --- namespaces and registries ----------------------------------------------------------------


def test_a_namespace_outside_the_users_policy_is_403(alice, settings):
    settings.K8SDM_ALLOWED_NAMESPACES = ["default", "team-a", "team-b"]
    settings.K8SDM_POLICY_NAMESPACES = ["default"]
    response = create(alice, "w1", namespace="team-a")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "namespace_not_allowed"
    assert response.json()["error"]["fields"] == {"namespace": ["not allowed by your policy"]}
    policy_for("alice@example.com", allowed_namespaces=["team-a"])
    assert create(alice, "w1", namespace="team-a").status_code == 202
    assert create(alice, "w2", namespace="default").status_code == 403
    assert counts() == (1, 1)


@pytest.mark.parametrize(
    "image,host,path",
    [("nginx", "docker.io", "library/nginx"), ("nginx:1.27", "docker.io", "library/nginx"),
     ("docker.io/nginx@sha256:" + "a" * 64, "docker.io", "library/nginx"), ("index.docker.io/acme/web:2", "docker.io",
                                                                          "acme/web"),
     ("ghcr.io/acme/web:1", "ghcr.io", "acme/web"), ("localhost:5000/x/y:z", "localhost:5000", "x/y")],
)
def test_image_references_are_normalised(image, host, path):
    assert image_repository(image) == (host, path)


@pytest.mark.parametrize(
    "image,allowed",
    [("nginx:1.27", True), ("docker.io/library/redis:7", True), ("acme/web:1", False), ("docker.io/evil/x", False),
     ("ghcr.io/acme/web:1", True), ("ghcr.io/acme", True), ("ghcr.io/acme-evil/web:1", False),
     ("ghcr.io/other/web", False), ("ghcr.io.evil.example/acme/web", False), ("evil.example/ghcr.io/acme/web", False),
     ("registry.example.com:5000/anything/at/all:1", True), ("registry.example.com/anything", False)],
)
def test_registry_entries_match_exact_hosts_and_path_prefixes(image, allowed):
    entries = ["docker.io/library", "ghcr.io/acme", "registry.example.com:5000"]
    assert registry_allowed(image, entries) is allowed


def test_docker_io_alone_means_all_of_docker_hub_only_when_said(alice, settings):
    settings.K8SDM_POLICY_REGISTRIES = ["docker.io/library"]
    response = create(alice, "w1", image="someone/miner:latest")
    assert response.status_code == 403 and response.json()["error"]["code"] == "registry_not_allowed"
    assert create(alice, "w1", image="nginx:1.27").status_code == 202
    policy_for("alice@example.com", allowed_registries=["docker.io"])
    assert create(alice, "w2", image="someone/miner:latest").status_code == 202


def test_an_update_to_a_disallowed_image_is_refused(alice, settings):
    assert create(alice, "w1").status_code == 202
    settings.K8SDM_POLICY_REGISTRIES = ["ghcr.io/acme"]
    response = alice.patch(change_url("w1"), {"image": "docker.io/evil/x:1"}, format="json")
    assert response.status_code == 403
    assert Deployment.objects.get().desired_config["image"] == "nginx:1.27"
    assert DeploymentRequest.objects.count() == 1


# --- counts and sizes -------------------------------------------------------------------------


def test_max_deployments_counts_live_deployments_only(alice, settings):
    settings.K8SDM_POLICY_MAX_DEPLOYMENTS = "2"
    assert create(alice, "w1").status_code == 202
    assert create(alice, "w2").status_code == 202
    assert_quota(create(alice, "w3"), "max_deployments", "2", "2", "1", "identifier")
    assert counts() == (2, 2)
    Deployment.objects.filter(identifier="w1").update(status=DeploymentStatus.DELETED)
    assert create(alice, "w3").status_code == 202
    # Another user's deployments are theirs alone.
    assert create(alice, "w4").status_code == 422


def test_max_replicas_per_deployment(alice, settings):
    settings.K8SDM_POLICY_MAX_REPLICAS = "3"
    assert_quota(create(alice, "w1", replicas=4), "max_replicas", "3", "0", "4", "replicas")
    assert create(alice, "w1", replicas=3).status_code == 202
    assert_quota(alice.patch(change_url("w1"), {"replicas": 4}, format="json"), "max_replicas", "3", "0", "4",
                 "replicas")


def test_max_replicas_in_total_and_an_update_replaces_its_own_usage(alice, settings):
    settings.K8SDM_POLICY_MAX_REPLICAS_TOTAL = "5"
    assert create(alice, "w1", replicas=3).status_code == 202
    assert_quota(create(alice, "w2", replicas=3), "max_replicas_total", "5", "3", "3", "replicas")
    assert alice.patch(change_url("w1"), {"replicas": 5}, format="json").status_code == 202
    assert_quota(create(alice, "w2", replicas=1), "max_replicas_total", "5", "5", "1", "replicas")
    assert create(alice, "w2", replicas=0).status_code == 202


def test_cpu_and_memory_per_container(alice, settings):
    settings.K8SDM_POLICY_MAX_CPU_PER_CONTAINER = "1"
    settings.K8SDM_POLICY_MAX_MEMORY_PER_CONTAINER = "1Gi"
    assert_quota(create(alice, "w1", **resources(cpu="1500m")), "max_cpu_per_container", "1", "0", "1.5",
                 "resources.limits.cpu")
    assert_quota(create(alice, "w1", **resources(memory="2Gi")), "max_memory_per_container", "1Gi", "0",
                 str(2 * 1024**3), "resources.limits.memory")
    # Without a limit the request is the ask.
    assert_quota(create(alice, "w1", **resources(cpu="2", requests=True)), "max_cpu_per_container", "1", "0", "2",
                 "resources.limits.cpu")
    assert create(alice, "w1", **resources(cpu="1", memory="1Gi")).status_code == 202


def test_cpu_and_memory_in_total_count_every_replica(alice, settings):
    settings.K8SDM_POLICY_MAX_CPU_TOTAL = "2"
    settings.K8SDM_POLICY_MAX_MEMORY_TOTAL = "3Gi"
    assert create(alice, "w1", replicas=2, **resources(cpu="500m", memory="1Gi")).status_code == 202
    assert_quota(create(alice, "w2", replicas=2, **resources(cpu="600m")), "max_cpu_total", "2", "1", "1.2",
                 "resources.limits.cpu")
    assert_quota(create(alice, "w2", replicas=1, **resources(memory="2Gi")), "max_memory_total", "3Gi",
                 str(2 * 1024**3), str(2 * 1024**3), "resources.limits.memory")
    assert create(alice, "w2", replicas=2, **resources(cpu="500m", memory="512Mi")).status_code == 202
    assert counts() == (2, 2)


def test_a_users_policy_overrides_the_defaults_and_unlimited_lifts_a_limit(alice, caller, settings):
    settings.K8SDM_POLICY_MAX_DEPLOYMENTS = "1"
    policy_for("alice@example.com", max_deployments="unlimited")
    for i in range(3):
        assert create(alice, f"w{i}").status_code == 202
    bob = caller("bob@example.com")
    assert create(bob, "b1").status_code == 202
    assert create(bob, "b2").status_code == 422
    policy_for("bob@example.com", max_deployments="0")
    Deployment.objects.filter(identifier="b1").update(status=DeploymentStatus.DELETED)
    assert_quota(create(bob, "b2"), "max_deployments", "0", "0", "1", "identifier")


def test_a_replay_of_an_accepted_request_is_not_refused_by_a_full_quota(alice, settings):
    settings.K8SDM_POLICY_MAX_DEPLOYMENTS = "1"
    body = config("w1", request_id="once")
    assert alice.post(CREATE_URL, body, format="json").status_code == 202
    assert alice.post(CREATE_URL, body, format="json").status_code == 200


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_cannot_both_take_the_last_free_slot(caller, settings):
    settings.K8SDM_POLICY_MAX_DEPLOYMENTS = "3"
    racer = caller("racer@example.com")
    assert create(racer, "r0").status_code == 202
    assert create(racer, "r1").status_code == 202
    n = 8
    barrier = threading.Barrier(n)
    statuses: list = [None] * n

    def run(i):
        try:
            barrier.wait(10)
            statuses[i] = create(caller("racer@example.com"), f"race-{i}").status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [202] + [422] * (n - 1), statuses
    assert Deployment.objects.filter(owner__user_external_id="racer@example.com").count() == 3


# --- audit ------------------------------------------------------------------------------------


def test_refusals_are_recorded_and_shown_on_the_users_admin_page(alice, client, settings):
    settings.K8SDM_POLICY_MAX_REPLICAS = "2"
    assert create(alice, "w1").status_code == 202
    response = alice.post(CREATE_URL, config("w2", replicas=5), format="json", REMOTE_ADDR="127.0.0.3")
    assert response.status_code == 422
    refusal = Refusal.objects.get()
    assert (refusal.kind, refusal.code, refusal.claimed_identity, refusal.source_address) == (
        "quota", "quota_exceeded", "alice@example.com", "127.0.0.3")
    assert "max_replicas" in refusal.detail
    staff = StaffUser.objects.create_superuser("ops", "ops@example.com", "pw-ops-123456")
    client.force_login(staff)
    user = User.objects.get(user_external_id="alice@example.com")
    page = client.get(f"/admin/users_app/user/{user.pk}/change/").content.decode()
    assert "Recent refusals" in page and "quota_exceeded" in page
    assert client.get("/admin/users_app/userpolicy/").status_code == 200
    assert client.get("/admin/users_app/refusal/").status_code == 200


def test_the_admin_refuses_a_policy_with_a_malformed_limit(client):
    staff = StaffUser.objects.create_superuser("ops", "ops@example.com", "pw-ops-123456")
    client.force_login(staff)
    user = User.objects.create(user_external_id="alice@example.com")
    response = client.post("/admin/users_app/userpolicy/add/", {
        "user": user.pk, "max_cpu_total": "lots", "max_deployments": "-1", "allowed_namespaces": '"default"',
        "allowed_registries": "null",
    })
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"max_cpu_total", "max_deployments", "allowed_namespaces"}
    assert not UserPolicy.objects.exists()


def test_the_asks_the_totals_add_up_follow_the_desired_config_and_the_migration_fills_old_rows(alice, settings):
    """Each row keeps what its desired config asks (replicas, CPU and memory x replicas) for the
    quota's one aggregate; the migration that added the columns computed them for existing rows."""
    import importlib
    from decimal import Decimal

    from django.apps import apps

    settings.K8SDM_POLICY_MAX_CPU_TOTAL = "100"
    assert create(alice, "w1", replicas=2, **resources(cpu="250m", memory="1Gi")).status_code == 202
    assert alice.patch(change_url("w1"), {"replicas": 3}, format="json").status_code == 202
    row = Deployment.objects.get(identifier="w1")
    assert (row.ask_replicas, row.ask_cpu, row.ask_memory) == (3, Decimal("0.75"), Decimal(3 * 1024**3))
    Deployment.objects.filter(pk=row.pk).update(ask_replicas=0, ask_cpu=0, ask_memory=0)
    importlib.import_module("deployments_app.migrations.0005_deployment_asks").fill_asks(apps, None)
    row.refresh_from_db()
    assert (row.ask_replicas, row.ask_cpu, row.ask_memory) == (3, Decimal("0.75"), Decimal(3 * 1024**3))


def test_a_create_checks_its_quota_in_two_statements_whatever_the_user_owns(alice, settings):
    """The user's row is locked with its policy joined (one statement), then the usage is one
    aggregate: no statement per deployment, no config read back."""
    from django.test.utils import CaptureQueriesContext

    policy_for("alice@example.com", max_deployments="100")
    for n in range(5):
        assert create(alice, f"w{n}").status_code == 202
    with CaptureQueriesContext(connection) as queries:
        assert create(alice, "w9").status_code == 202
    sql = [q["sql"].replace('"', "") for q in queries.captured_queries]  # the ORM quotes names, plain SQL not
    locks = [s for s in sql if "FOR UPDATE" in s and "users_app_user " in s.split("FROM", 1)[1][:40] + " "]
    assert len(locks) == 1 and "users_app_userpolicy" in locks[0], sql
    assert not [s for s in sql if s.startswith("SELECT users_app_userpolicy")], sql
    usage = [s for s in sql if "COUNT(" in s and "deployments_app_deployment" in s]
    assert len(usage) == 1 and "desired_config" not in usage[0], sql
