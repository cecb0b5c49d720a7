"""Each leadership term of the watcher has its own token: a watch thread of an earlier term (one
that outlived its join, stuck in a read) can never publish a key after the term ended, whether the
watcher stepped down or was re-elected meanwhile."""

import pytest

from deployments_app.informer import DeploymentInformer
from deployments_app.key_publisher import KeyPublisher

pytestmark = pytest.mark.timeout(60)


def event(name: str, rv: str) -> dict:
    return {"type": "MODIFIED", "object": {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}}


def informer(keys: KeyPublisher, term: int) -> DeploymentInformer:
    return DeploymentInformer(keys=keys, term=term, namespaces=["default"], watch_timeout=5, resync_seconds=300)


def test_a_thread_of_an_ended_term_publishes_nothing_after_re_election(transactional_db, cluster, apps_api):
    keys = KeyPublisher(publisher=None)  # not started: what it accepts stays pending (its backlog)
    first = keys.begin_term()
    stale = informer(keys, first)
    keys.end_term(first)  # stepped down; its thread did not stop within the join
    second = keys.begin_term()  # re-elected
    current = informer(keys, second)

    stale._on_event(event("web", "5"))
    apps_api.create_namespaced_deployment("default", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/managed-by": "k8s-deployment-manager", "app": "web"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
    stale._relist("default", "periodic resync")
    assert keys.backlog() == 0

    current._on_event(event("web", "6"))
    assert keys.backlog() == 1


def test_no_term_takes_offers_once_the_watcher_stepped_down():
    keys = KeyPublisher(publisher=None)
    term = keys.begin_term()
    assert keys.offer("default", "web", "1", term=term)
    keys.end_term(term)
    assert not keys.offer("default", "web", "2", term=term)
    assert keys.backlog() == 1
