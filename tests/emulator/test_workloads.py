"""ReplicaSets, Pods, Events and ResourceQuotas kept by the simulated controller, and the
pods/log subresource, through the official client (and plain HTTP where the client hides
the detail)."""
import json
import threading

import pytest
import requests
from kubernetes import watch
from kubernetes.client.rest import ApiException

from .helpers import condition, deployment, rolled_out, wait_for

pytestmark = pytest.mark.timeout(60)


def pods_of(core, app, ns="default"):
    return core.list_namespaced_pod(ns, label_selector=f"app={app}").items


def warnings_for(core, name, ns="default"):
    evs = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
    return {(e.reason, e.message) for e in evs if e.type == "Warning"}


def wait_rolled_out(apps, name, ns="default", timeout=10):
    return wait_for(lambda: rolled_out(apps.read_namespaced_deployment(name, ns)) and
                    apps.read_namespaced_deployment(name, ns), timeout=timeout,
                    message=f"{name} rolled out")


def test_a_deployment_gets_a_replicaset_and_pods_owned_by_it(apps, core):
    dep = apps.create_namespaced_deployment("default", deployment("web", replicas=3))
    wait_rolled_out(apps, "web")
    [rs] = apps.list_namespaced_replica_set("default", label_selector="app=web").items
    h = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{h}"
    [owner] = rs.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "Deployment", "web", dep.metadata.uid, True)
    assert rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": h}
    assert rs.spec.template.metadata.labels == {"app": "web", "pod-template-hash": h}
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert (rs.spec.replicas, rs.status.replicas, rs.status.ready_replicas,
            rs.status.available_replicas) == (3, 3, 3, 3)
    pods = pods_of(core, "web")
    assert len(pods) == 3
    for p in pods:
        assert p.metadata.name.startswith(f"web-{h}-")
        assert [(o.kind, o.name, o.uid) for o in p.metadata.owner_references] == [
            ("ReplicaSet", rs.metadata.name, rs.metadata.uid)]
        assert p.metadata.labels["pod-template-hash"] == h
        assert p.status.phase == "Running" and p.spec.node_name
        [cs] = p.status.container_statuses
        assert (cs.name, cs.ready, cs.restart_count, cs.image) == ("app", True, 0, "nginx:1.25")
        assert cs.state.running.started_at is not None
        assert {c.type: c.status for c in p.status.conditions}["Ready"] == "True"


def test_a_rolling_update_makes_a_new_replicaset_and_scales_the_old_one_down(apps, core):
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    wait_rolled_out(apps, "web")
    apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
    wait_for(lambda: rolled_out(apps.read_namespaced_deployment("web", "default")) and
             len(apps.list_namespaced_replica_set("default").items) == 2 and
             all(p.spec.containers[0].image == "nginx:1.27" for p in pods_of(core, "web")) and
             len(pods_of(core, "web")) == 2, timeout=10, message="rolled out to 1.27")
    sets = {rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs
            for rs in apps.list_namespaced_replica_set("default").items}
    assert (sets["1"].spec.replicas, sets["1"].status.replicas) == (0, 0)
    assert (sets["2"].spec.replicas, sets["2"].status.ready_replicas) == (2, 2)
    assert sets["2"].spec.template.spec.containers[0].image == "nginx:1.27"
    hashes = {p.metadata.labels["pod-template-hash"] for p in pods_of(core, "web")}
    assert hashes == {sets["2"].metadata.labels["pod-template-hash"]}
    reasons = [e.message for e in core.list_namespaced_event(
        "default", field_selector="involvedObject.kind=Deployment,involvedObject.name=web").items]
    assert any(m.startswith(f"Scaled down replica set {sets['1'].metadata.name}") for m in reasons)


def test_deleting_a_deployment_deletes_its_replicasets_and_pods(apps, core):
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    apps.create_namespaced_deployment("default", deployment("other", replicas=1))
    wait_rolled_out(apps, "web")
    wait_rolled_out(apps, "other")
    apps.delete_namespaced_deployment("web", "default")
    # at once: the emulator's garbage collection is synchronous
    assert pods_of(core, "web") == []
    assert apps.list_namespaced_replica_set("default", label_selector="app=web").items == []
    assert len(pods_of(core, "other")) == 1


def test_an_orphaning_delete_keeps_the_replicaset_without_its_owner(apps, core):
    apps.create_namespaced_deployment("default", deployment("web", replicas=1))
    wait_rolled_out(apps, "web")
    apps.delete_namespaced_deployment("web", "default", propagation_policy="Orphan")
    [rs] = apps.list_namespaced_replica_set("default", label_selector="app=web").items
    assert rs.metadata.owner_references is None
    assert len(pods_of(core, "web")) == 1


def test_a_deleted_pod_is_replaced(apps, core):
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    wait_rolled_out(apps, "web")
    victim = pods_of(core, "web")[0].metadata.name
    core.delete_namespaced_pod(victim, "default")
    wait_for(lambda: len(pods_of(core, "web")) == 2 and
             victim not in {p.metadata.name for p in pods_of(core, "web")},
             message="a replacement pod")


def waiting_reasons_seen(core, app, want: set, timeout=10) -> set:
    """Watch the app's pods and collect the container waiting reasons until ``want``."""
    seen = set()
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, "default", label_selector=f"app={app}",
                       timeout_seconds=timeout):
        for cs in ev["object"].status.container_statuses or []:
            if cs.state.waiting is not None:
                seen.add(cs.state.waiting.reason)
        if want <= seen:
            w.stop()
    return seen


def test_an_image_that_cannot_be_pulled_shows_err_image_pull_then_image_pull_back_off(
        apps, core):
    apps.create_namespaced_deployment("default", deployment("bad", replicas=2, image="nginx:fail"))
    assert {"ErrImagePull", "ImagePullBackOff"} <= waiting_reasons_seen(
        core, "bad", {"ErrImagePull", "ImagePullBackOff"})
    pods = pods_of(core, "bad")
    assert len(pods) == 2 and {p.status.phase for p in pods} == {"Pending"}
    name = pods[0].metadata.name
    wait_for(lambda: {("Failed", "Error: ErrImagePull"), ("Failed", "Error: ImagePullBackOff")}
             <= warnings_for(core, name), message="pull failure events")
    assert any(r == "Failed" and m.startswith('Failed to pull image "nginx:fail"')
               for r, m in warnings_for(core, name))
    dep = wait_for(lambda: (lambda d: condition(d, "Progressing").reason ==
                            "ProgressDeadlineExceeded" and d)(
        apps.read_namespaced_deployment("bad", "default")), message="deadline")
    assert (dep.status.replicas, dep.status.updated_replicas, dep.status.unavailable_replicas,
            dep.status.available_replicas) == (2, 2, 2, None)


def test_a_container_that_exits_goes_into_crash_loop_back_off_with_its_exit_code(apps, core):
    apps.create_namespaced_deployment("default",
                                      deployment("crash", replicas=1, image="busybox:crash-3"))

    def crashed():
        [p] = pods_of(core, "crash") or [None]
        cs = p and p.status.container_statuses and p.status.container_statuses[0]
        return cs and cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff" and p
    pod = wait_for(crashed, timeout=10, message="CrashLoopBackOff")
    cs = pod.status.container_statuses[0]
    assert cs.restart_count >= 1 and not cs.ready
    assert (cs.last_state.terminated.exit_code, cs.last_state.terminated.reason) == (3, "Error")
    assert pod.status.phase == "Running"
    assert any(r == "BackOff" and m.startswith("Back-off restarting failed container app")
               for r, m in warnings_for(core, pod.metadata.name))
    dep = apps.read_namespaced_deployment("crash", "default")
    assert not dep.status.available_replicas


def test_a_quota_that_refuses_pods_is_failed_create_on_the_replicaset_until_raised(apps, core):
    core.create_namespaced_resource_quota("default", {
        "metadata": {"name": "small"}, "spec": {"hard": {"pods": "2"}}})
    apps.create_namespaced_deployment("default", deployment("web", replicas=3))
    dep = wait_for(lambda: (lambda d: condition(d, "ReplicaFailure") and d)(
        apps.read_namespaced_deployment("web", "default")), message="ReplicaFailure")
    failure = condition(dep, "ReplicaFailure")
    assert (failure.status, failure.reason) == ("True", "FailedCreate")
    assert "exceeded quota: small, requested: pods=1, used: pods=2, limited: pods=2" in \
        failure.message
    [rs] = apps.list_namespaced_replica_set("default").items
    assert {r for r, _ in warnings_for(core, rs.metadata.name)} == {"FailedCreate"}
    assert (rs.spec.replicas, rs.status.replicas) == (3, 2)
    assert rs.status.conditions[0].type == "ReplicaFailure"
    q = wait_for(lambda: (lambda q: q.status and q.status.used == {"pods": "2"} and q)(
        core.read_namespaced_resource_quota("small", "default")), message="quota status")
    assert q.status.hard == {"pods": "2"}
    core.patch_namespaced_resource_quota("small", "default", {"spec": {"hard": {"pods": "5"}}})
    dep = wait_rolled_out(apps, "web")
    assert condition(dep, "ReplicaFailure") is None
    assert len(pods_of(core, "web")) == 3


def test_a_pod_created_through_the_api_over_quota_is_forbidden(core):
    core.create_namespaced_resource_quota("default", {
        "metadata": {"name": "cpu"}, "spec": {"hard": {"requests.cpu": "1"}}})
    pod = {"metadata": {"name": "big"}, "spec": {"containers": [
        {"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "1500m"}}}]}}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod("default", pod)
    body = json.loads(e.value.body)
    assert (e.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == ('pods "big" is forbidden: exceeded quota: cpu, requested: '
                               'requests.cpu=1500m, used: requests.cpu=0, limited: requests.cpu=1')
    pod["spec"]["containers"][0]["resources"] = {}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod("default", pod)
    assert "failed quota: cpu: must specify cpu for: c" in json.loads(e.value.body)["message"]
    assert core.list_namespaced_pod("default").items == []


def test_a_pod_requesting_more_cpu_than_the_node_has_is_unschedulable(k8s_emulator, apps, core):
    k8s_emulator.configure_controller(node_cpu="2")
    dep = deployment("big", replicas=1)
    dep["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "3"}}
    apps.create_namespaced_deployment("default", dep)
    [pod] = wait_for(lambda: pods_of(core, "big"), message="the pod")
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    [sched] = [c for c in pod.status.conditions if c.type == "PodScheduled"]
    assert (sched.status, sched.reason) == ("False", "Unschedulable")
    assert ("FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 "
            "nodes are available: 1 No preemption victims found for incoming pod.") in \
        warnings_for(core, pod.metadata.name)
    r = requests.get(f"{k8s_emulator.url}/api/v1/namespaces/default/pods/"
                     f"{pod.metadata.name}/log", timeout=5)
    assert (r.status_code, r.text) == (200, "")  # like the apiserver: no node, no logs


def test_pods_and_events_support_field_selectors_and_watch(apps, core):
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    apps.create_namespaced_deployment("default", deployment("bad", replicas=1, image="app:fail"))
    wait_rolled_out(apps, "web")
    running = core.list_namespaced_pod("default", field_selector="status.phase=Running").items
    assert {p.metadata.labels["app"] for p in running} == {"web"}
    name = running[0].metadata.name
    assert [p.metadata.name for p in core.list_namespaced_pod(
        "default", field_selector=f"metadata.name={name}").items] == [name]
    evs = core.list_namespaced_event("default", field_selector=f"involvedObject.name={name},"
                                                               f"involvedObject.kind=Pod").items
    assert evs and {e.involved_object.name for e in evs} == {name}
    assert {e.reason for e in evs} >= {"Scheduled", "Started"}
    assert all(e.count >= 1 and e.first_timestamp and e.last_timestamp for e in evs)
    warnings = core.list_namespaced_event("default", field_selector="type=Warning").items
    assert warnings and all(e.involved_object.name.startswith("bad-") for e in warnings)
    assert core.list_event_for_all_namespaces(field_selector="reason=Scheduled").items
    pending = core.list_pod_for_all_namespaces(field_selector="status.phase=Pending").items
    assert {p.metadata.labels["app"] for p in pending} == {"bad"}
    seen = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, "default", label_selector="app=web",
                       timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    assert {t for t, _ in seen} == {"ADDED"}


def test_pod_logs_honour_tail_lines_since_seconds_timestamps_and_limit_bytes(
        k8s_emulator, apps, core):
    apps.create_namespaced_deployment("default", deployment("web", replicas=1))
    wait_rolled_out(apps, "web")
    [pod] = pods_of(core, "web")
    name = pod.metadata.name
    text = core.read_namespaced_pod_log(name, "default")
    lines = text.splitlines()
    assert lines[0] == (f"kube-emulator: starting container app (image nginx:1.25) in pod "
                        f"default/{name}")
    assert "app: listening on port 80" in lines
    assert core.read_namespaced_pod_log(name, "default", tail_lines=1).splitlines() == lines[-1:]
    assert core.read_namespaced_pod_log(name, "default", tail_lines=0) == ""
    stamped = core.read_namespaced_pod_log(name, "default", timestamps=True).splitlines()
    assert stamped[0].split(" ", 1)[1] == lines[0] and stamped[0][:4].isdigit()
    assert core.read_namespaced_pod_log(name, "default", limit_bytes=10) == text[:10]
    assert len(core.read_namespaced_pod_log(name, "default", since_seconds=3600).splitlines()) \
        == len(lines)
    assert core.read_namespaced_pod_log(name, "default", container="app") == text
    url = f"{k8s_emulator.url}/api/v1/namespaces/default/pods/{name}/log"
    r = requests.get(url, params={"container": "nope"}, timeout=5)
    assert (r.status_code, r.json()["message"]) == (
        400, f"container nope is not valid for pod {name}")
    r = requests.get(url, params={"previous": "true"}, timeout=5)
    assert (r.status_code, r.json()["message"]) == (
        400, f'previous terminated container "app" in pod "{name}" not found')
    r = requests.get(url, params={"tailLines": "-1"}, timeout=5)
    assert (r.status_code, r.json()["reason"]) == (422, "Invalid")
    assert requests.get(url + "x", timeout=5).status_code == 404


def test_logs_of_a_crashed_container_and_of_its_previous_run(apps, core):
    apps.create_namespaced_deployment("default", deployment("crash", image="busybox:crash", replicas=1))

    def restarted_twice():
        [p] = pods_of(core, "crash") or [None]
        cs = p and (p.status.container_statuses or [None])[0]
        return cs and cs.restart_count >= 1 and cs.state.waiting and p
    pod = wait_for(restarted_twice, timeout=10, message="a restart")
    last = core.read_namespaced_pod_log(pod.metadata.name, "default").splitlines()
    assert last[-2:] == ["app: fatal: simulated crash (image busybox:crash)",
                         "app: exiting with code 1"]
    previous = core.read_namespaced_pod_log(pod.metadata.name, "default", previous=True)
    assert previous.splitlines()[-1] == "app: exiting with code 1"


def test_logs_of_a_container_that_cannot_pull_its_image_are_refused_like_the_kubelet(
        k8s_emulator, apps, core):
    apps.create_namespaced_deployment("default", deployment("bad", replicas=1, image="nginx:fail"))
    assert "ImagePullBackOff" in waiting_reasons_seen(core, "bad", {"ImagePullBackOff"})
    [pod] = pods_of(core, "bad")
    r = requests.get(f"{k8s_emulator.url}/api/v1/namespaces/default/pods/{pod.metadata.name}/log",
                     timeout=5)
    assert r.status_code == 400
    assert r.json()["message"].startswith(
        f'container "app" in pod "{pod.metadata.name}" is waiting to start: ')


def test_follow_streams_until_the_pod_is_deleted(k8s_emulator, apps, core):
    apps.create_namespaced_deployment("default", deployment("web", replicas=1))
    wait_rolled_out(apps, "web")
    [pod] = pods_of(core, "web")
    got, done = [], threading.Event()

    def follow():
        with requests.get(f"{k8s_emulator.url}/api/v1/namespaces/default/pods/"
                          f"{pod.metadata.name}/log", params={"follow": "true"}, stream=True,
                          timeout=30) as r:
            for line in r.iter_lines():
                got.append(line.decode())
        done.set()
    t = threading.Thread(target=follow, daemon=True)
    t.start()
    wait_for(lambda: len(got) >= 3, message="the first lines")
    assert not done.is_set()
    core.delete_namespaced_pod(pod.metadata.name, "default")
    assert done.wait(10), "the stream ended when the pod went away"
    assert got[0].startswith("kube-emulator: starting container app")


def test_the_new_kinds_are_in_discovery(k8s_emulator):
    core = {r["name"]: r for r in requests.get(k8s_emulator.url + "/api/v1",
                                               timeout=5).json()["resources"]}
    assert {"pods", "pods/log", "pods/status", "events", "resourcequotas"} <= set(core)
    assert core["pods"]["shortNames"] == ["po"] and core["pods/log"]["verbs"] == ["get"]
    apps_v1 = {r["name"] for r in requests.get(k8s_emulator.url + "/apis/apps/v1",
                                               timeout=5).json()["resources"]}
    assert {"replicasets", "replicasets/status", "replicasets/scale"} <= apps_v1
