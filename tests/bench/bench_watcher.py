"""Watcher benchmark (issue 6): the lag from a change in the cluster to the updated row under a
steady 100 changes/s, and the time and the watcher's memory to bring 10,000 managed Deployments
into Postgres from a cold start.

Run: .venv/bin/python tests/bench/bench_watcher.py   (or `make bench`)
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import requests  # noqa: E402

from tests.bench._stack import BenchStack, percentile  # noqa: E402

LAG_DEPLOYMENTS = 200
CHANGES_PER_SECOND = 100
LAG_SECONDS = 10
COLD_START = 10_000


def apps_api(stack):
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(stack.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    return client.AppsV1Api(client.ApiClient(configuration))


def seed(stack, api, prefix: str, count: int, *, status: str) -> None:
    """Rows as the API leaves them, and the Deployments as the worker would have written them."""
    from deployments_app.config import DeploymentConfig
    from deployments_app.models import Deployment
    from users_app.models import User

    owner, _ = User.objects.get_or_create(user_external_id="bench")
    configs = [{"identifier": f"{prefix}-{i}", "namespace": "default", "image": "nginx:1.27", "replicas": 1}
               for i in range(count)]

    def create(c):
        body = DeploymentConfig.from_input(c).to_manifest(owner="bench", request_pk=1)
        response = api.create_namespaced_deployment("default", body, _preload_content=False)
        return json.loads(response.data)["metadata"]["uid"]

    # Objects first: each row carries the uid of the object "its CREATE" made (k8sdm never mirrors
    # an object into a row that does not).
    with ThreadPoolExecutor(8) as pool:
        uids = list(pool.map(create, configs))
    Deployment.objects.bulk_create(
        [Deployment(identifier=c["identifier"], namespace="default", owner=owner, status=status, desired_config=c,
                    uid=uid)
         for c, uid in zip(configs, uids)],
        batch_size=2000,
    )


def lag_phase(stack) -> None:
    from django.db import connection

    api = apps_api(stack)
    seed(stack, api, "lag", LAG_DEPLOYMENTS, status="CREATED")
    stack.worker()
    stack.watcher()
    deadline = time.monotonic() + 60
    while connection.cursor().execute(
        "SELECT count(*) FROM deployments_app_deployment WHERE identifier LIKE 'lag-%%' AND resource_version = ''"
    ).fetchone()[0]:
        if time.monotonic() > deadline:
            raise RuntimeError("the seeded deployments were not synced in 60s")
        time.sleep(0.1)

    sent: dict[tuple[str, str], float] = {}
    seen: dict[tuple[str, str], float] = {}
    stop = threading.Event()

    def poll():
        from django.db import connection as conn

        with conn.cursor() as cursor:
            while not stop.is_set():
                cursor.execute(
                    "SELECT identifier, observed_spec->'annotations'->>'bench/seq', last_synced_at "
                    "FROM deployments_app_deployment WHERE identifier LIKE 'lag-%%'"
                )
                for identifier, seq, synced in cursor.fetchall():
                    if seq is not None and (identifier, seq) not in seen:
                        seen[(identifier, seq)] = synced.timestamp()
                time.sleep(0.01)
        conn.close()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    total = CHANGES_PER_SECOND * LAG_SECONDS
    start = time.perf_counter()
    for seq in range(total):
        delay = start + seq / CHANGES_PER_SECOND - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        name = f"lag-{seq % LAG_DEPLOYMENTS}"
        api.patch_namespaced_deployment(name, "default", {"metadata": {"annotations": {"bench/seq": str(seq)}}},
                                        _preload_content=False)
        sent[(name, str(seq))] = time.time()
    wait_until = time.monotonic() + 30
    while len(seen.keys() & sent.keys()) < total and time.monotonic() < wait_until:
        time.sleep(0.1)
    stop.set()
    poller.join()
    lags = [seen[key] - sent[key] for key in sent if key in seen]
    print(f"Lag from a change in the cluster to the updated row, {CHANGES_PER_SECOND} changes/s for "
          f"{LAG_SECONDS}s over {LAG_DEPLOYMENTS} deployments (metadata edits made with the kubernetes client):")
    print(f"  seen {len(lags)}/{total}   p50 {percentile(lags, 50) * 1000:6.1f} ms   "
          f"p99 {percentile(lags, 99) * 1000:6.1f} ms   (targets: p50 < 100 ms, p99 < 500 ms)")
    stack.stop_proc("watcher")
    stack.stop_proc("worker")


def cold_start_phase(stack) -> None:
    from deployments_app.models import Deployment

    api = apps_api(stack)
    requests.post(f"http://127.0.0.1:{stack.emulator_port}/_emulator/controller", json={"paused": True}, timeout=5)
    t = time.perf_counter()
    seed(stack, api, "cold", COLD_START, status="INITIATED")
    print(f"\nCold start: {COLD_START} managed Deployments in the cluster, rows INITIATED "
          f"(seeded in {time.perf_counter() - t:.1f}s)")
    started = time.perf_counter()
    stack.worker("worker-a")
    stack.worker("worker-b")
    stack.watcher()
    peak = 0.0
    rows = Deployment.objects.filter(identifier__startswith="cold-")
    while True:
        peak = max(peak, stack.rss_mb("watcher"))
        done = rows.exclude(status="INITIATED").count()
        if done >= COLD_START:
            break
        if time.perf_counter() - started > 300:
            raise RuntimeError(f"only {done}/{COLD_START} synced after 300s")
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    print(f"  all {COLD_START} rows synced in {elapsed:.1f}s from starting the processes "
          f"(2 workers + watcher; target < 30 s)")
    print(f"  watcher peak RSS {peak:.0f} MB (target < 300 MB)")


def main() -> None:
    print(f"k8sdm watcher benchmark ({datetime.now(timezone.utc):%H:%M} UTC, 2-core machine)")
    stack = BenchStack(emulator_args=("--event-log-size", "20000")).start()
    stack.django()
    lag_phase(stack)
    cold_start_phase(stack)
    stack.stop()


if __name__ == "__main__":
    main()
