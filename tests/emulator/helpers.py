"""Small helpers shared by the emulator tests."""
from __future__ import annotations

import threading
import time


def deployment(name: str = "web", replicas: int = 2, image: str = "nginx:1.25",
               labels: dict | None = None, app: str | None = None) -> dict:
    app = app or name
    meta_labels = {"app": app}
    meta_labels.update(labels or {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": meta_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "app", "image": image,
                                         "ports": [{"containerPort": 80}],
                                         "env": [{"name": "MODE", "value": "prod"}]}]},
            },
        },
    }


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, message: str = ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message or predicate}: last={last!r}")


def condition(dep, type_: str):
    for c in (dep.status.conditions or []) if not isinstance(dep, dict) else \
            (dep.get("status", {}).get("conditions") or []):
        t = c.type if not isinstance(c, dict) else c["type"]
        if t == type_:
            return c
    return None


def rolled_out(dep) -> bool:
    st = dep.status
    want = dep.spec.replicas
    return (st.observed_generation == dep.metadata.generation
            and (st.updated_replicas or 0) == want and (st.available_replicas or 0) == want
            and (st.replicas or 0) == want)


def stop_informer(informer, emulator) -> None:
    """``SharedInformer.stop()`` joins a thread that may be blocked reading a quiet watch
    (no bookmarks, no timeout): end the server's watches until the thread has gone."""
    stopper = threading.Thread(target=informer.stop)
    stopper.start()
    while stopper.is_alive():
        emulator.drop_watches()
        stopper.join(0.1)
