"""How a live Deployment maps onto status, health and drift."""

import pytest

from deployments_app.models import DeploymentHealth, DeploymentStatus
from deployments_app.config import DeploymentConfig
from deployments_app.sync import deployment_sync, drift_of, health_of, status_of
from tests.factories import DeploymentFactory


def live(*, generation=1, observed=1, replicas=2, updated=2, available=2, ready=2, conditions=None, image="nginx:1.27",
         rv="10", owner="", uid="u-1"):
    return {
        "metadata": {"name": "web", "namespace": "default", "generation": generation, "resourceVersion": rv,
                     "uid": uid, "labels": {"app.kubernetes.io/managed-by": "k8s-deployment-manager"},
                     "annotations": {"k8sdm.io/owner": owner}},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated,
                   "availableReplicas": available, "readyReplicas": ready, "conditions": conditions or []},
    }


def test_a_rolled_out_deployment_is_created_and_healthy():
    obj = live()
    assert status_of(obj) == DeploymentStatus.CREATED
    assert health_of(obj) == DeploymentHealth.HEALTHY


def test_the_first_rollout_is_created_but_still_progressing():
    obj = live(observed=0, updated=0, available=0, ready=0)
    assert status_of(obj) == DeploymentStatus.CREATED
    assert health_of(obj) == DeploymentHealth.PROGRESSING


def test_a_later_spec_change_not_yet_observed_is_updating():
    assert status_of(live(generation=3, observed=2)) == DeploymentStatus.UPDATING
    assert status_of(live(generation=3, observed=3, updated=1)) == DeploymentStatus.UPDATING
    assert health_of(live(generation=3, observed=2)) == DeploymentHealth.PROGRESSING


def test_a_progress_deadline_exceeded_condition_is_degraded():
    cond = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    assert health_of(live(updated=0, available=0, conditions=cond)) == DeploymentHealth.DEGRADED
    failure = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}]
    assert health_of(live(conditions=failure)) == DeploymentHealth.DEGRADED


def test_drift_names_each_field_where_the_cluster_differs_from_the_desired_config(settings):
    for name in ("CPU_REQUEST", "MEMORY_REQUEST", "CPU_LIMIT", "MEMORY_LIMIT"):
        setattr(settings, f"K8SDM_DEFAULT_{name}", "")  # no default resources: the live object has none
    observed = DeploymentConfig.from_live(live(replicas=5, image="nginx:1.28"))
    drift = drift_of({"identifier": "web", "image": "nginx:1.27", "replicas": 2}, observed)
    assert drift == {
        "image": {"desired": "nginx:1.27", "live": "nginx:1.28"},
        "replicas": {"desired": 2, "live": 5},
    }
    assert drift_of({"identifier": "web", "image": "nginx:1.28", "replicas": 5}, observed) == {}


@pytest.mark.django_db
def test_sync_writes_the_live_state_and_then_nothing_when_unchanged():
    row = DeploymentFactory(identifier="web", desired_config={"identifier": "web", "image": "nginx:1.27", "replicas": 2})
    owner = row.owner.user_external_id
    first = deployment_sync(namespace="default", name="web", live=live(owner=owner), created=True)
    row.refresh_from_db()
    assert first.changed
    assert (row.status, row.health, row.available_replicas, row.resource_version, row.uid, row.drift) == (
        DeploymentStatus.CREATED, DeploymentHealth.HEALTHY, 2, "10", "u-1", {})
    synced_at = row.last_synced_at
    again = deployment_sync(namespace="default", name="web", live=live(owner=owner))
    row.refresh_from_db()
    assert not again.changed and row.last_synced_at == synced_at


@pytest.mark.django_db
def test_sync_never_writes_an_older_read_over_a_newer_one():
    row = DeploymentFactory(identifier="web", status=DeploymentStatus.CREATED, uid="u-1")
    owner = row.owner.user_external_id
    deployment_sync(namespace="default", name="web", live=live(rv="20", replicas=3, updated=3, available=3, owner=owner))
    result = deployment_sync(namespace="default", name="web",
                             live=live(rv="15", replicas=1, updated=1, available=1, owner=owner))
    row.refresh_from_db()
    assert not result.changed and row.replicas == 3


@pytest.mark.django_db
def test_sync_marks_a_vanished_deployment_deleted_but_leaves_an_initiated_one_alone():
    created = DeploymentFactory(identifier="gone", status=DeploymentStatus.CREATED)
    pending = DeploymentFactory(identifier="soon", status=DeploymentStatus.INITIATED)
    deployment_sync(namespace="default", name="gone", live=None)
    deployment_sync(namespace="default", name="soon", live=None)
    created.refresh_from_db()
    pending.refresh_from_db()
    assert created.status == DeploymentStatus.DELETED
    assert pending.status == DeploymentStatus.INITIATED


@pytest.mark.django_db
def test_sync_records_nothing_for_a_deployment_k8sdm_was_never_asked_for():
    result = deployment_sync(namespace="default", name="stranger", live=live())
    assert not result.changed and "not managed" in result.reason


def test_the_health_reason_says_why_from_the_conditions():
    from deployments_app.sync import health_reason_of

    deadline = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": 'ReplicaSet "web-abc" has timed out progressing.'}]
    obj = live(updated=0, available=0, conditions=deadline)
    assert health_reason_of(obj, health_of(obj)) == 'ProgressDeadlineExceeded: ReplicaSet "web-abc" has timed out progressing.'
    failure = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                "message": "pods \"web-abc-x\" is forbidden: exceeded quota: q"}]
    obj = live(conditions=failure)
    assert health_reason_of(obj, health_of(obj)).startswith("FailedCreate: pods")
    obj = live(observed=0, updated=1, available=0, conditions=[{"type": "Progressing", "status": "True",
                                                                  "reason": "ReplicaSetUpdated"}])
    assert health_reason_of(obj, health_of(obj)) == "0 of 2 replicas available, 1 updated (ReplicaSetUpdated)"
    assert health_reason_of(live(), health_of(live())) == ""


@pytest.mark.django_db
def test_the_sync_stores_the_health_reason():
    row = DeploymentFactory(identifier="web", status=DeploymentStatus.CREATED, uid="u-1")
    owner = row.owner.user_external_id
    cond = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]
    deployment_sync(namespace="default", name="web", live=live(updated=0, available=0, conditions=cond, owner=owner))
    row.refresh_from_db()
    assert row.health == DeploymentHealth.DEGRADED
    assert row.health_reason == "ProgressDeadlineExceeded: timed out"
    deployment_sync(namespace="default", name="web", live=live(rv="11", owner=owner))
    row.refresh_from_db()
    assert row.health_reason == ""


@pytest.mark.django_db
def test_sync_never_mirrors_an_object_before_the_rows_create_succeeded():
    row = DeploymentFactory(identifier="web")  # INITIATED: its CREATE is pending or failed
    result = deployment_sync(namespace="default", name="web", live=live(owner=row.owner.user_external_id))
    row.refresh_from_db()
    assert not result.changed
    assert (row.status, row.uid, row.image) == (DeploymentStatus.INITIATED, "", "")


@pytest.mark.django_db
@pytest.mark.parametrize("change, why", [
    ({"uid": "someone-elses"}, "replaced outside k8sdm"),
    ({"owner": "mallory"}, "owner annotation"),
])
def test_sync_lets_go_of_an_object_that_is_not_the_one_k8sdm_created(change, why):
    row = DeploymentFactory(identifier="web", status=DeploymentStatus.CREATED, uid="u-1", image="nginx:1.27")
    obj = live(**{"owner": row.owner.user_external_id, "image": "stranger:1", **change})
    result = deployment_sync(namespace="default", name="web", live=obj)
    row.refresh_from_db()
    assert result.changed
    assert (row.status, row.uid, row.image) == (DeploymentStatus.DELETED, "u-1", "nginx:1.27")
    assert row.status_reason.startswith("not owned by k8sdm") and why in row.status_reason


@pytest.mark.django_db
def test_sync_lets_go_of_an_object_without_the_managed_by_label():
    row = DeploymentFactory(identifier="web", status=DeploymentStatus.CREATED, uid="u-1")
    obj = live(owner=row.owner.user_external_id)
    obj["metadata"]["labels"] = {}
    deployment_sync(namespace="default", name="web", live=obj)
    row.refresh_from_db()
    assert row.status == DeploymentStatus.DELETED and "labelled" in row.status_reason


@pytest.mark.django_db
def test_drift_in_env_is_logged_without_the_values(caplog):
    row = DeploymentFactory(identifier="web", status=DeploymentStatus.CREATED, uid="u-1",
                            applied_config={"identifier": "web", "namespace": "default", "image": "nginx:1.27",
                                            "replicas": 2, "env": [{"name": "TOKEN", "value": "s3cret-old"}]})
    obj = live(owner=row.owner.user_external_id)
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "TOKEN", "value": "s3cret-new"}]
    with caplog.at_level("WARNING", logger="deployments_app.sync"):
        deployment_sync(namespace="default", name="web", live=obj)
    row.refresh_from_db()
    assert row.drift["env"]["live"] == [{"name": "TOKEN", "value": "s3cret-new"}]  # the owner sees it in the API
    record = next(r for r in caplog.records if r.getMessage().startswith("drift on default/web"))
    assert "s3cret" not in repr(record.__dict__)
    assert record.drift["env"]["live"] == [{"name": "TOKEN", "value": "<redacted>"}]
