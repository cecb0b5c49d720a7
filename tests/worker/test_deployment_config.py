"""DeploymentConfig is the one mapping between a config and the Deployment object: what it writes
to the cluster (through the Kubernetes API, the emulator) reads back as the same config, field by
field, and a change made by someone else shows up as drift."""

from dataclasses import fields

import pytest

from deployments_app import k8s
from deployments_app.config import (
    MANAGED_BY_LABEL,
    MANAGED_FIELDS,
    NAME_LABEL,
    OWNER_ANNOTATION,
    REQUEST_ANNOTATION,
    DeploymentConfig,
)

FULL = {
    "identifier": "roundtrip",
    "namespace": "default",
    "image": "registry.example.com/team/app:1.2.3",
    "replicas": 3,
    "labels": {"tier": "web", "example.com/team": "a"},
    "annotations": {"team": "a", "example.com/note": "hello"},
    "env": [{"name": "A", "value": "1"}, {"name": "EMPTY", "value": ""}],
    "ports": [{"name": "http", "container_port": 8080, "protocol": "TCP"},
              {"name": "", "container_port": 9090, "protocol": "UDP"}],
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
    "command": ["/bin/app"],
    "args": ["--port", "8080"],
    "restarted_at": "2025-01-01T12:00:00.000000Z",
}


def change(mutate) -> dict:
    """Read, change and PUT the live object as kubectl would, re-reading when the emulator's
    controller wrote the status in between (409 Conflict)."""
    for _ in range(50):
        live = k8s.get_deployment("default", "roundtrip")
        try:
            return k8s.replace_deployment(mutate(live))
        except k8s.K8sError as exc:
            if not exc.conflict:
                raise
    raise AssertionError("the object kept changing")


def test_the_full_example_sets_every_field_away_from_its_default():
    defaults = DeploymentConfig(identifier="x", namespace="y", image="z")
    config = DeploymentConfig.from_input(FULL)
    unset = [f.name for f in fields(DeploymentConfig)
             if f.name not in ("identifier", "namespace", "image") and getattr(config, f.name) == getattr(defaults, f.name)]
    assert unset == []  # a new field must be added to FULL, so the round trip covers it


def test_the_stored_form_reads_back_as_the_same_config():
    config = DeploymentConfig.from_input(FULL)
    assert config.to_dict() == FULL
    assert DeploymentConfig.from_input(config.to_dict()) == config


@pytest.mark.django_db
def test_every_field_written_to_the_cluster_reads_back_as_the_same_config(cluster):
    config = DeploymentConfig.from_input(FULL)
    created = k8s.create_deployment(config.to_manifest(owner="alice@example.com", request_pk=7))
    live = k8s.get_deployment("default", "roundtrip")
    assert DeploymentConfig.from_live(created) == config
    assert DeploymentConfig.from_live(live) == config
    assert config.drift(DeploymentConfig.from_live(live)) == {}
    meta = live["metadata"]
    assert meta["labels"][NAME_LABEL] == "roundtrip" and MANAGED_BY_LABEL in meta["labels"]
    assert meta["annotations"][OWNER_ANNOTATION] == "alice@example.com"
    assert meta["annotations"][REQUEST_ANNOTATION] == "7"


@pytest.mark.django_db
def test_an_update_laid_over_the_live_object_reads_back_and_keeps_what_others_added(cluster):
    first = DeploymentConfig.from_input({"identifier": "roundtrip", "namespace": "default", "image": "nginx:1.27"})
    k8s.create_deployment(first.to_manifest(owner="alice", request_pk=1))

    def by_someone_else(live):
        live["metadata"]["labels"]["someone.else/label"] = "kept"
        live["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
        return live

    change(by_someone_else)
    second = DeploymentConfig.from_input(FULL)
    change(lambda live: second.apply_to_live(live, owner="alice", request_pk=2))
    after = k8s.get_deployment("default", "roundtrip")
    read = DeploymentConfig.from_live(after)
    assert read.drift(second) == {}
    assert read.labels == {**FULL["labels"], "someone.else/label": "kept"}
    assert {f: getattr(read, f) for f in MANAGED_FIELDS} == {f: getattr(second, f) for f in MANAGED_FIELDS}
    assert after["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert after["metadata"]["annotations"][REQUEST_ANNOTATION] == "2"


@pytest.mark.django_db
def test_a_change_made_outside_k8sdm_is_drift_on_exactly_that_field(cluster):
    config = DeploymentConfig.from_input(FULL)
    k8s.create_deployment(config.to_manifest(owner="alice", request_pk=1))

    def kubectl_edit(live):
        live["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "2"}]
        live["spec"]["replicas"] = 5
        return live

    changed = change(kubectl_edit)
    drift = config.drift(DeploymentConfig.from_live(changed))
    assert drift == {
        "replicas": {"desired": 3, "live": 5},
        "env": {"desired": FULL["env"], "live": [{"name": "A", "value": "2"}]},
    }


def test_merge_replaces_each_given_field_whole_and_keeps_the_rest():
    config = DeploymentConfig.from_input(FULL)
    merged = config.merge({"labels": {"only": "this"}, "replicas": 1})
    assert merged.labels == {"only": "this"} and merged.replicas == 1
    assert merged.env == config.env and merged.image == config.image


def test_a_config_without_resources_gets_hardened_pods_and_the_default_resources_which_are_not_drift(cluster,
                                                                                                      settings):
    settings.K8SDM_DEFAULT_CPU_LIMIT = "2"
    config = DeploymentConfig.from_input({"identifier": "plain", "image": "nginx:1.27"})
    live = k8s.create_deployment(config.to_manifest(owner="alice", request_pk=1))
    pod = live["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    container = pod["containers"][0]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "2", "memory": "512Mi"}}
    assert config.drift(DeploymentConfig.from_live(live)) == {}
    # Removing them outside k8sdm is drift.
    container.pop("resources")
    assert set(config.drift(DeploymentConfig.from_live(live))) == {"resources"}


def test_the_restricted_profile_runs_as_non_root_without_capabilities_also_after_an_update(cluster, settings):
    config = DeploymentConfig.from_input({"identifier": "strict", "image": "nginx:1.27",
                                          "resources": {"limits": {"cpu": "1"}}})
    live = k8s.create_deployment(config.to_manifest(owner="alice", request_pk=1))
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
    settings.K8SDM_POD_SECURITY_RESTRICTED = True
    updated = k8s.replace_deployment(config.apply_to_live(live, owner="alice", request_pk=2))
    pod = updated["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": True}
    assert pod["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False,
                                                       "capabilities": {"drop": ["ALL"]}}
    assert config.drift(DeploymentConfig.from_live(updated)) == {}
