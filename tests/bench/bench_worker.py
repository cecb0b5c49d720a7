"""Worker benchmark (issue 5): end-to-end latency from the API's 202 to SUCCESS at a steady
50 requests/s, sustained applied requests/s with one and with two worker processes, and the floor
(one direct Kubernetes create + one JetStream publish-and-consume + one Postgres commit).

Run: .venv/bin/python tests/bench/bench_worker.py   (or `make bench`)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import requests  # noqa: E402

from tests.bench._stack import BenchStack, percentile  # noqa: E402

STEADY_RATE = 50
STEADY_SECONDS = 10
BURST = 1500


def post_creates(api: str, prefix: str, count: int, *, rate: float | None = None, clients: int = 16) -> float:
    url = f"{api}/api/v1/deployments/requests/create"
    local = threading.local()

    def one(i: int):
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        response = session.post(url, json={"identifier": f"{prefix}-{i}", "image": "nginx:1.27", "replicas": 1},
                                headers={"X-User-Id": f"bench-{i % 50}"}, timeout=30)
        if response.status_code != 202:
            raise RuntimeError(f"create {i}: {response.status_code} {response.text[:200]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - start


def wait_finished(prefix: str, count: int, timeout: float = 300) -> list:
    from requests_app.models import DeploymentRequest

    deadline = time.monotonic() + timeout
    qs = DeploymentRequest.objects.filter(identifier__startswith=f"{prefix}-")
    while True:
        done = qs.exclude(status="CREATED").count()
        if done >= count:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done}/{count} requests of {prefix} finished")
        time.sleep(0.2)
    rows = list(qs.values_list("status", "created_at", "started_at", "finished_at"))
    failures = [r for r in rows if r[0] != "SUCCESS"]
    if failures:
        raise RuntimeError(f"{len(failures)} requests of {prefix} failed")
    return rows


def measure_floor(stack: BenchStack, iterations: int = 200) -> dict:
    from django.db import connection, transaction
    from kubernetes import client, config

    from deployments_app.config import DeploymentConfig

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(stack.kubeconfig), client_configuration=configuration)
    apps = client.AppsV1Api(client.ApiClient(configuration))
    k8s_times = []
    for i in range(iterations):
        body = DeploymentConfig.from_input({"identifier": f"floor-{i}", "namespace": "default", "image": "nginx:1.27",
                                            "replicas": 1}).to_manifest(owner="bench", request_pk=i + 1)
        t = time.perf_counter()
        apps.create_namespaced_deployment("default", body, _preload_content=False)
        k8s_times.append(time.perf_counter() - t)

    async def nats_round_trips() -> list[float]:
        import nats
        from nats.js.api import StreamConfig

        nc = await nats.connect(stack.nats.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="FLOOR", subjects=["floor.>"], storage="file"))
        sub = await js.pull_subscribe("floor.>", durable="floor")
        times = []
        for i in range(iterations):
            t = time.perf_counter()
            await js.publish("floor.x", b"%d" % i, headers={"Nats-Msg-Id": f"floor-{i}"})
            msg = (await sub.fetch(1, timeout=5))[0]
            await msg.ack()
            times.append(time.perf_counter() - t)
        await nc.close()
        return times

    nats_times = asyncio.run(nats_round_trips())
    pg_times = []
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id serial primary key, v int)")
    for i in range(iterations):
        t = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor (v) VALUES (%s)", [i])
        pg_times.append(time.perf_counter() - t)
    parts = {
        "kubernetes create": statistics.median(k8s_times),
        "JetStream publish+consume": statistics.median(nats_times),
        "Postgres commit": statistics.median(pg_times),
    }
    parts["floor"] = sum(parts.values())
    return parts


def throughput(stack: BenchStack, api: str, prefix: str, workers: int) -> float:
    post_creates(api, prefix, BURST)  # no worker runs: everything queues in JetStream
    names = [f"w{prefix}{n}" for n in range(workers)]
    for name in names:
        stack.spawn(name, [sys.executable, "manage.py", "runworker", "--metrics-port", "0"])
    rows = wait_finished(prefix, BURST)
    first = min(r[2] for r in rows)
    last = max(r[3] for r in rows)
    for name in names:
        stack.stop_proc(name)
    return BURST / (last - first).total_seconds()


def main() -> None:
    print("k8sdm worker benchmark (2-core machine; api = gunicorn 4 workers; emulator controller running)")
    stack = BenchStack().start()
    stack.django()
    api = stack.api(workers=4)

    floor = measure_floor(stack)
    print("\nFloor (median of 200 sequential round trips each):")
    for name, value in floor.items():
        print(f"  {name:<28} {value * 1000:7.2f} ms")

    stack.worker()
    # Warm up: every gunicorn worker opens its NATS connection, Django its DB connections.
    post_creates(api, "warm", 40, rate=STEADY_RATE, clients=8)
    wait_finished("warm", 40)
    sent = STEADY_RATE * STEADY_SECONDS
    elapsed = post_creates(api, "steady", sent, rate=STEADY_RATE, clients=8)
    rows = wait_finished("steady", sent)
    latencies = [(finished - created).total_seconds() for _, created, _, finished in rows]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"\nEnd to end, 202 -> SUCCESS, at a steady {STEADY_RATE}/s ({sent} creates in {elapsed:.1f}s, 1 worker):")
    print(f"  p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   max {max(latencies) * 1000:7.1f} ms   "
          f"(target p50 < 30 ms; after a 40-request warm-up)")
    print(f"  ratio p50 / floor = {p50 / floor['floor']:.2f}   (target < 3)")
    stack.stop_proc("worker")

    one = throughput(stack, api, "one", 1)
    two = throughput(stack, api, "two", 2)
    print(f"\nSustained applied requests/s ({BURST} queued creates):")
    print(f"  1 worker : {one:7.1f}/s")
    print(f"  2 workers: {two:7.1f}/s   (target >= 300/s)   scaling x{two / one:.2f}")
    stack.stop()


if __name__ == "__main__":
    main()
