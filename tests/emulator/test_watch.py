"""Fidelity point 4: watch streams, resumption, bookmarks, 410 Expired, informers."""
import json
import threading
import time

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .helpers import deployment, stop_informer, wait_for

pytestmark = pytest.mark.timeout(30)


def collect(stream, n, timeout=5.0):
    """Read up to n events from a Watch.stream generator (in this thread)."""
    out = []
    for ev in stream:
        out.append(ev)
        if len(out) >= n:
            break
    return out


def raw_watch(url, params, max_events=100, read_timeout=5):
    """Read a watch stream with plain HTTP: returns the parsed lines."""
    with requests.get(url, params=params, stream=True, timeout=read_timeout) as r:
        assert r.status_code == 200
        assert r.headers.get("Transfer-Encoding") == "chunked"
        lines = []
        for line in r.iter_lines():
            if line:
                lines.append(json.loads(line))
            if len(lines) >= max_events:
                break
        return lines


def test_a_watch_without_resource_version_starts_with_synthetic_added_events(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("a"))
    apps.create_namespaced_deployment("default", deployment("b"))
    w = watch.Watch()
    evs = collect(w.stream(apps.list_namespaced_deployment, "default", timeout_seconds=2), 2)
    w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in evs] == [("ADDED", "a"), ("ADDED", "b")]


def test_a_watch_streams_added_modified_deleted_live(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    start_rv = apps.list_namespaced_deployment("default").metadata.resource_version
    got = []

    def consume():
        w = watch.Watch()
        for ev in w.stream(apps.list_namespaced_deployment, "default",
                           resource_version=start_rv, timeout_seconds=5):
            got.append((ev["type"], ev["object"].metadata.name, ev["object"].spec.replicas))
            if ev["type"] == "DELETED":
                w.stop()
    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.2)
    apps.create_namespaced_deployment("default", deployment("web"))
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 4}})
    apps.delete_namespaced_deployment("web", "default")
    t.join(10)
    assert got == [("ADDED", "web", 2), ("MODIFIED", "web", 4), ("DELETED", "web", 4)]


def test_a_watch_from_a_resource_version_replays_what_happened_since(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    rv = apps.list_namespaced_deployment("default").metadata.resource_version
    apps.create_namespaced_deployment("default", deployment("a"))
    apps.patch_namespaced_deployment("a", "default", {"metadata": {"labels": {"x": "y"}}})
    apps.delete_namespaced_deployment("a", "default")
    w = watch.Watch()
    evs = collect(w.stream(apps.list_namespaced_deployment, "default", resource_version=rv,
                           timeout_seconds=1), 3)
    assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"].metadata.resource_version) for e in evs]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_timeout_seconds_ends_the_stream(k8s_emulator):
    t0 = time.monotonic()
    lines = raw_watch(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      {"watch": "true", "timeoutSeconds": "1", "resourceVersion":
                       str(k8s_emulator.resource_version)})
    assert lines == []
    assert 0.9 < time.monotonic() - t0 < 3


def test_watch_1_is_accepted_like_watch_true(k8s_emulator, apps):
    apps.create_namespaced_deployment("default", deployment("a"))
    lines = raw_watch(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      {"watch": "1", "timeoutSeconds": "1"}, max_events=1)
    assert lines[0]["type"] == "ADDED"


def test_bookmarks_carry_only_the_resource_version(k8s_emulator, apps):
    k8s_emulator.set_bookmark_interval(0.2)
    lines = raw_watch(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "2",
                       "resourceVersion": str(k8s_emulator.resource_version)}, max_events=2)
    assert [l["type"] for l in lines] == ["BOOKMARK", "BOOKMARK"]
    obj = lines[0]["object"]
    assert obj["kind"] == "Deployment" and obj["apiVersion"] == "apps/v1"
    assert set(obj["metadata"]) <= {"resourceVersion", "creationTimestamp"}
    assert obj["metadata"]["resourceVersion"] == str(k8s_emulator.resource_version)


def test_send_initial_events_ends_with_an_initial_events_end_bookmark(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("a"))
    apps.create_namespaced_deployment("default", deployment("b"))
    lines = raw_watch(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      {"watch": "true", "allowWatchBookmarks": "true", "sendInitialEvents": "true",
                       "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "2"},
                      max_events=3)
    assert [l["type"] for l in lines] == ["ADDED", "ADDED", "BOOKMARK"]
    assert lines[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert lines[2]["object"]["metadata"]["resourceVersion"] == str(k8s_emulator.resource_version)


def test_send_initial_events_requires_resource_version_match_not_older_than(k8s_emulator):
    r = requests.get(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                     params={"watch": "true", "sendInitialEvents": "true",
                             "allowWatchBookmarks": "true"}, timeout=5)
    assert r.status_code == 422
    assert r.json()["reason"] == "Invalid"


def test_a_too_old_resource_version_gets_an_error_event_with_410_expired(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("a"))
    old = 2
    k8s_emulator.compact()
    lines = raw_watch(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                      {"watch": "true", "resourceVersion": str(old)})
    assert len(lines) == 1 and lines[0]["type"] == "ERROR"
    st = lines[0]["object"]
    assert st["kind"] == "Status" and st["code"] == 410 and st["reason"] == "Expired"
    assert st["message"].startswith("too old resource version: 2 (")


def test_the_official_watch_raises_api_exception_410_when_it_cannot_resume(k8s_emulator, apps):
    k8s_emulator.compact()
    apps.create_namespaced_deployment("default", deployment("a"))
    w = watch.Watch()
    with pytest.raises(ApiException) as e:
        for _ in w.stream(apps.list_namespaced_deployment, "default", resource_version="2",
                          timeout_seconds=2):
            pass
    assert e.value.status == 410


def test_the_event_log_is_bounded(k8s_emulator, apps):
    st = k8s_emulator.stats()
    assert st["event_log"]["max"] >= 1000
    assert st["event_log"]["size"] <= st["event_log"]["max"]


def test_a_single_object_watch_via_field_selector_sees_only_that_object(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    rv = str(k8s_emulator.resource_version)
    apps.create_namespaced_deployment("default", deployment("a"))
    apps.create_namespaced_deployment("default", deployment("b"))
    apps.patch_namespaced_deployment("b", "default", {"spec": {"replicas": 3}})
    w = watch.Watch()
    evs = list(w.stream(apps.list_namespaced_deployment, "default", resource_version=rv,
                        field_selector="metadata.name=b", timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in evs] == [("ADDED", "b"),
                                                                    ("MODIFIED", "b")]


def test_a_label_selector_watch_sees_objects_enter_and_leave_the_selection(k8s_emulator, apps):
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("a"))
    rv = str(k8s_emulator.resource_version)
    apps.patch_namespaced_deployment("a", "default", {"metadata": {"labels": {"track": "canary"}}})
    apps.patch_namespaced_deployment("a", "default", {"metadata": {"labels": {"track": None}}})
    w = watch.Watch()
    evs = list(w.stream(apps.list_namespaced_deployment, "default", resource_version=rv,
                        label_selector="track=canary", timeout_seconds=1))
    assert [e["type"] for e in evs] == ["ADDED", "DELETED"]
    assert evs[1]["object"].metadata.labels.get("track") == "canary"  # last state that matched


def test_the_all_namespaces_watch_sees_every_namespace(k8s_emulator, apps, k8s_api_client):
    k8s_emulator.pause_controller()
    client.CoreV1Api(k8s_api_client).create_namespace({"metadata": {"name": "other"}})
    rv = str(k8s_emulator.resource_version)
    apps.create_namespaced_deployment("default", deployment("a"))
    apps.create_namespaced_deployment("other", deployment("a"))
    w = watch.Watch()
    evs = list(w.stream(apps.list_deployment_for_all_namespaces, resource_version=rv,
                        timeout_seconds=1))
    assert [(e["object"].metadata.namespace) for e in evs] == ["default", "other"]


def test_dropping_watches_ends_open_streams(k8s_emulator, apps):
    done = threading.Event()
    result = {}

    def consume():
        t0 = time.monotonic()
        raw_watch(k8s_emulator.url + "/apis/apps/v1/namespaces/default/deployments",
                  {"watch": "true", "resourceVersion": str(k8s_emulator.resource_version),
                   "timeoutSeconds": "20"}, read_timeout=25)
        result["elapsed"] = time.monotonic() - t0
        done.set()
    threading.Thread(target=consume, daemon=True).start()
    wait_for(lambda: k8s_emulator.stats()["watches"]["open"] == 1, message="watch open")
    assert k8s_emulator.drop_watches() == 1
    assert done.wait(5)
    assert result["elapsed"] < 5


def test_a_slow_watcher_is_closed_instead_of_buffering_without_bound():
    """A client that stops reading gets its stream ended once it is more than the
    per-watcher bound behind; it then sees the end of the stream, not a hang."""
    from kube_emulator import EmulatorServer
    with EmulatorServer(watch_buffer=20, step_delay=10) as srv:
        apps = client.AppsV1Api(srv.api_client())
        body = deployment("big")
        body["metadata"]["annotations"] = {"example.com/blob": "x" * 200_000}
        apps.create_namespaced_deployment("default", body)
        rv = str(srv.resource_version)
        url = srv.url + "/apis/apps/v1/namespaces/default/deployments"
        with requests.get(url, params={"watch": "true", "resourceVersion": rv,
                                       "timeoutSeconds": "20"}, stream=True, timeout=20) as r:
            wait_for(lambda: srv.stats()["watches"]["open"] == 1, message="watch open")
            for i in range(150):   # ~30 MB of events while the client does not read
                apps.patch_namespaced_deployment("big", "default",
                                                 {"metadata": {"labels": {"i": str(i)}}},
                                                 _preload_content=False).read()
            t0 = time.monotonic()
            got = sum(1 for line in r.iter_lines() if line)
            assert time.monotonic() - t0 < 10        # the stream ended by itself
        assert 0 < got < 150
        wait_for(lambda: srv.stats()["watches"]["open"] == 0, message="watch closed")


def test_the_watch_snapshot_and_cursor_neither_lose_nor_double_events(k8s_emulator, apps):
    """Watches (and list-then-watch) started while a writer creates objects must each see
    every object exactly once."""
    k8s_emulator.pause_controller()
    total = 300
    all_names = {f"d-{i}" for i in range(total)}

    def writer():
        api = client.AppsV1Api(k8s_emulator.api_client())
        for i in range(total):
            api.create_namespaced_deployment("default", deployment(f"d-{i}", app="x"))
    t = threading.Thread(target=writer)
    t.start()
    results = []
    for round_ in range(4):
        time.sleep(0.03)
        seen = []
        kw = {"timeout_seconds": 10}
        if round_ % 2:  # list, then watch from the list's resourceVersion
            lst = apps.list_namespaced_deployment("default")
            seen = [d.metadata.name for d in lst.items]
            kw["resource_version"] = lst.metadata.resource_version
        w = watch.Watch()
        if len(set(seen)) < total:
            for ev in w.stream(apps.list_namespaced_deployment, "default", **kw):
                assert ev["type"] == "ADDED"
                seen.append(ev["object"].metadata.name)
                if len(seen) >= total:
                    w.stop()
        results.append(seen)
    t.join()
    for seen in results:
        assert len(seen) == len(set(seen)), "an object was delivered twice"
        assert set(seen) == all_names, "an object was missed"


def test_shared_informer_keeps_a_cache_in_sync(k8s_emulator, apps):
    from kubernetes.informer import SharedInformer, ADDED, MODIFIED, DELETED
    k8s_emulator.pause_controller()
    apps.create_namespaced_deployment("default", deployment("pre"))
    inf = SharedInformer(apps.list_namespaced_deployment, namespace="default")
    seen = []
    for t in (ADDED, MODIFIED, DELETED):
        inf.add_event_handler(t, lambda o, t=t: seen.append((t, o.metadata.name)))
    inf.start()
    try:
        wait_for(lambda: inf.cache.get_by_key("default/pre") is not None, message="initial list")
        apps.create_namespaced_deployment("default", deployment("web"))
        apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 5}})
        wait_for(lambda: (inf.cache.get_by_key("default/web") or None) is not None and
                 inf.cache.get_by_key("default/web").spec.replicas == 5, message="modified")
        apps.delete_namespaced_deployment("pre", "default")
        wait_for(lambda: inf.cache.get_by_key("default/pre") is None, message="deleted")
    finally:
        stop_informer(inf, k8s_emulator)
    assert ("ADDED", "pre") in seen and ("ADDED", "web") in seen
    assert ("MODIFIED", "web") in seen and ("DELETED", "pre") in seen


def test_shared_informer_relists_after_410_expired(k8s_emulator, apps):
    from kubernetes.informer import SharedInformer, ERROR
    k8s_emulator.pause_controller()
    inf = SharedInformer(apps.list_namespaced_deployment, namespace="default")
    errors_seen = []
    inf.add_event_handler(ERROR, lambda e: errors_seen.append(getattr(e, "status", None)))
    inf.start()
    try:
        apps.create_namespaced_deployment("default", deployment("a"))
        wait_for(lambda: inf.cache.get_by_key("default/a") is not None, message="a")
        # cut the informer off, let history move on and be compacted, then let it back in
        k8s_emulator.error_rate(1.0, status=503, verb="watch")
        k8s_emulator.drop_watches()
        apps.create_namespaced_deployment("default", deployment("b"))
        k8s_emulator.compact()
        wait_for(lambda: 503 in errors_seen, message="informer saw the 503")
        k8s_emulator.clear_faults()
        wait_for(lambda: inf.cache.get_by_key("default/b") is not None, timeout=8,
                 message="b after relist")
        assert 410 in errors_seen
    finally:
        k8s_emulator.clear_faults()
        stop_informer(inf, k8s_emulator)
