"""Fidelity point 7: the simulated Deployment controller, /status and /scale."""
import time

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .helpers import condition, deployment, rolled_out, wait_for

pytestmark = pytest.mark.timeout(30)


def read(apps, name="web"):
    return apps.read_namespaced_deployment(name, "default")


def test_a_new_deployment_becomes_available_with_real_conditions(apps):
    apps.create_namespaced_deployment("default", deployment("web", replicas=3))
    d = wait_for(lambda: (lambda d: d if rolled_out(d) else None)(read(apps)), message="rollout")
    st = d.status
    assert (st.replicas, st.updated_replicas, st.ready_replicas, st.available_replicas) == (3, 3, 3, 3)
    assert st.unavailable_replicas is None
    assert st.observed_generation == 1
    avail, prog = condition(d, "Available"), condition(d, "Progressing")
    assert (avail.status, avail.reason) == ("True", "MinimumReplicasAvailable")
    assert (prog.status, prog.reason) == ("True", "NewReplicaSetAvailable")
    assert prog.message.startswith('ReplicaSet "web-') and "successfully progressed" in prog.message
    assert avail.last_update_time is not None and avail.last_transition_time is not None


def test_a_rollout_goes_through_an_observable_updating_phase(k8s_emulator, apps):
    """A watcher sees generation > observedGeneration, then updated < desired, then done."""
    apps.create_namespaced_deployment("default", deployment("web", replicas=4))
    wait_for(lambda: rolled_out(read(apps)), message="first rollout")
    rv = read(apps).metadata.resource_version
    apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
    phases = []
    reasons = []
    w = watch.Watch()
    for ev in w.stream(apps.list_namespaced_deployment, "default", resource_version=rv,
                       field_selector="metadata.name=web", timeout_seconds=5):
        d = ev["object"]
        st = d.status
        if (st.observed_generation or 0) < d.metadata.generation:
            phases.append("unobserved")
        elif (st.updated_replicas or 0) < d.spec.replicas or \
                (st.available_replicas or 0) < d.spec.replicas or (st.replicas or 0) > d.spec.replicas:
            phases.append("updating")
        else:
            phases.append("done")
        p = condition(d, "Progressing")
        reasons.append(p.reason if p else None)
        if phases[-1] == "done":
            w.stop()
    assert phases[0] == "unobserved" and "updating" in phases and phases[-1] == "done"
    assert "NewReplicaSetCreated" in reasons and reasons[-1] == "NewReplicaSetAvailable"
    d = read(apps)
    assert d.metadata.generation == 2 and d.status.observed_generation == 2


def test_status_writes_bump_the_resource_version_but_never_the_generation(k8s_emulator, apps):
    d = apps.create_namespaced_deployment("default", deployment("web"))
    wait_for(lambda: rolled_out(read(apps)), message="rollout")
    after = read(apps)
    assert int(after.metadata.resource_version) > int(d.metadata.resource_version)
    assert after.metadata.generation == 1


def test_scaling_rolls_toward_the_new_count(apps):
    apps.create_namespaced_deployment("default", deployment("web", replicas=1))
    wait_for(lambda: rolled_out(read(apps)), message="rollout")
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 5}})
    d = wait_for(lambda: (lambda d: d if rolled_out(d) else None)(read(apps)), message="scaled")
    assert d.status.available_replicas == 5 and d.metadata.generation == 2
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 0}})
    d = wait_for(lambda: (lambda d: d if d.status.observed_generation == 3 and
                          not d.status.replicas else None)(read(apps)), message="scaled to 0")
    assert condition(d, "Available").status == "True"


def test_a_failing_image_ends_in_progress_deadline_exceeded(k8s_emulator, apps):
    k8s_emulator.configure_controller(failure_deadline=0.5)
    apps.create_namespaced_deployment("default", deployment("web", replicas=2, image="nginx:fail"))
    d = wait_for(lambda: (lambda d: d if (condition(d, "Progressing") and
                                          condition(d, "Progressing").status == "False") else None)(
        read(apps)), message="deadline")
    prog = condition(d, "Progressing")
    assert prog.reason == "ProgressDeadlineExceeded"
    assert prog.message.endswith("has timed out progressing.")
    assert not d.status.available_replicas
    assert d.status.updated_replicas == 2 and d.status.unavailable_replicas == 2
    assert (condition(d, "Available").status, condition(d, "Available").reason) == (
        "False", "MinimumReplicasUnavailable")


@pytest.mark.parametrize("image", ["fail.invalid/team/app:1.0", "fail.invalid:5000/app",
                                   "registry.example.com/app:fail"])
def test_the_failing_image_convention(image):
    from kube_emulator import image_fails
    assert image_fails(image)


@pytest.mark.parametrize("image", ["nginx:1.25", "nginx", "failing/app:ok", "example.com/fail:1",
                                   "nginx@sha256:abc"])
def test_ordinary_images_do_not_fail(image):
    from kube_emulator import image_fails
    assert not image_fails(image)


def test_a_bad_image_update_keeps_the_old_replicas_available(k8s_emulator, apps):
    k8s_emulator.configure_controller(failure_deadline=0.4)
    apps.create_namespaced_deployment("default", deployment("web", replicas=4))
    wait_for(lambda: rolled_out(read(apps)), message="rollout")
    apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "fail.invalid/nginx:1"}]}}}})
    d = wait_for(lambda: (lambda d: d if condition(d, "Progressing").status == "False" else None)(
        read(apps)), message="deadline")
    assert condition(d, "Progressing").reason == "ProgressDeadlineExceeded"
    assert d.status.available_replicas == 4          # old pods still serve
    assert 0 < d.status.updated_replicas < 4         # new pods created but never available
    assert condition(d, "Available").status == "True"


def test_fixing_the_image_recovers_the_rollout(k8s_emulator, apps):
    k8s_emulator.configure_controller(failure_deadline=0.3)
    apps.create_namespaced_deployment("default", deployment("web", image="nginx:fail"))
    wait_for(lambda: condition(read(apps), "Progressing") and
             condition(read(apps), "Progressing").status == "False", message="deadline")
    apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "nginx:1.25"}]}}}})
    d = wait_for(lambda: (lambda d: d if rolled_out(d) else None)(read(apps)), message="recovered")
    assert condition(d, "Progressing").reason == "NewReplicaSetAvailable"


def test_a_paused_controller_leaves_status_alone_until_resumed(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("web"))
    time.sleep(0.2)
    assert read(apps).status.observed_generation is None
    k8s_emulator.resume_controller()
    wait_for(lambda: rolled_out(read(apps)), message="rollout after resume")


def test_the_status_subresource_changes_only_status(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("web"))
    d = read(apps)
    d.status = client.V1DeploymentStatus(replicas=7, observed_generation=1)
    d.spec.replicas = 9  # ignored on /status
    out = apps.replace_namespaced_deployment_status("web", "default", d)
    assert out.status.replicas == 7 and out.spec.replicas == 2
    out = apps.patch_namespaced_deployment_status("web", "default",
                                                  {"status": {"readyReplicas": 1},
                                                   "spec": {"replicas": 11}})
    assert out.status.ready_replicas == 1 and out.spec.replicas == 2
    got = apps.read_namespaced_deployment_status("web", "default")
    assert got.status.replicas == 7


def test_the_main_resource_ignores_status_changes(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("web"))
    out = apps.patch_namespaced_deployment("web", "default", {"status": {"replicas": 42}})
    assert out.status.replicas is None


def test_the_scale_subresource_reads_and_writes_replicas(k8s_emulator, apps):
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    wait_for(lambda: rolled_out(read(apps)), message="rollout")
    sc = apps.read_namespaced_deployment_scale("web", "default")
    assert sc.kind == "Scale" and sc.api_version == "autoscaling/v1"
    assert sc.spec.replicas == 2 and sc.status.replicas == 2 and sc.status.selector == "app=web"
    sc.spec.replicas = 3
    out = apps.replace_namespaced_deployment_scale("web", "default", sc)
    assert out.spec.replicas == 3
    d = read(apps)
    assert d.spec.replicas == 3 and d.metadata.generation == 2
    out = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 1}})
    assert out.spec.replicas == 1
    assert read(apps).metadata.generation == 3
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment_scale("web", "default", sc)  # stale resourceVersion
    assert e.value.status == 409


def test_a_negative_scale_is_422(k8s_emulator):
    url = k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments"
    requests.post(url, json=__import__("tests.emulator.helpers", fromlist=["x"]).deployment("web"),
                  timeout=5)
    r = requests.patch(url + "/web/scale", data='{"spec":{"replicas":-1}}',
                       headers={"Content-Type": "application/merge-patch+json"}, timeout=5)
    assert r.status_code == 422
    assert r.json()["message"].startswith('Scale.autoscaling "web" is invalid: spec.replicas')


def test_a_failing_image_with_zero_replicas_still_completes(apps):
    apps.create_namespaced_deployment("default", deployment("web", replicas=0, image="nginx:fail"))
    d = wait_for(lambda: (lambda d: d if condition(d, "Progressing") and
                          condition(d, "Progressing").reason == "NewReplicaSetAvailable" else None)(
        read(apps)), message="complete")
    assert condition(d, "Available").status == "True"
