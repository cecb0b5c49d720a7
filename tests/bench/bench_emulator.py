"""Benchmark of the Kubernetes API emulator (not a test).

    .venv/bin/python tests/bench/bench_emulator.py [--sizes 500,5000] [--procs 2] [--threads 4]

Starts ``python -m kube_emulator --quiet`` as a subprocess and drives it with the official
``kubernetes`` client from a pool of client processes (each with several threads sharing one
connection-pooled ApiClient, calls made with ``_preload_content=False`` so that the client
does not spend its time building model objects). The Python client is the expensive side:
the figures are a floor for the server, measured end to end through real HTTP.

Printed per size: creates/s, reads/s, patches/s, deletes/s, watch events/s, list latency,
the server's RSS (psutil) after the creates, and the 5000/500 throughput ratio.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

NS = "bench"

_api = None
_threads = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manifest(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name, "bench": "yes"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.25",
                                                           "ports": [{"containerPort": 80}]}]}}}}


def _init_worker(url: str, threads: int) -> None:
    global _api, _threads
    from kubernetes import client
    cfg = client.Configuration()
    cfg.host = url
    cfg.connection_pool_maxsize = threads
    _api = client.AppsV1Api(client.ApiClient(cfg))
    _threads = threads


def _one(op: str, name: str) -> int:
    if op == "create":
        r = _api.create_namespaced_deployment(NS, manifest(name), _preload_content=False)
    elif op == "read":
        r = _api.read_namespaced_deployment(name, NS, _preload_content=False)
    elif op == "patch":
        r = _api.patch_namespaced_deployment(
            name, NS, {"metadata": {"labels": {"patched": "yes"}}, "spec": {"replicas": 3}},
            _preload_content=False)
    elif op == "delete":
        r = _api.delete_namespaced_deployment(name, NS, _preload_content=False)
    else:
        raise ValueError(op)
    r.read()
    if r.status >= 300:
        raise RuntimeError(f"{op} {name}: HTTP {r.status}")
    return r.status


def _chunk(args) -> int:
    op, names = args
    with ThreadPoolExecutor(_threads) as ex:
        return sum(1 for _ in ex.map(lambda n: _one(op, n), names))


def admin(url: str, path: str, body: dict | None = None) -> dict:
    import requests
    if body is None and path == "stats":
        return requests.get(f"{url}/_emulator/{path}", timeout=10).json()
    return requests.post(f"{url}/_emulator/{path}", json=body or {}, timeout=10).json()


VERB = {"create": "create", "read": "get", "patch": "patch", "delete": "delete"}
SERVER_US: dict = {}


def run_op(pool, procs: int, op: str, names: list[str], url: str | None = None) -> float:
    """Throughput seen by the clients; with ``url``, also records in SERVER_US[op] the mean
    time the server spent in its handler per request (microseconds), from /_emulator/stats."""
    per = max(1, len(names) // (procs * 4))
    chunks = [(op, names[i:i + per]) for i in range(0, len(names), per)]
    before = admin(url, "stats")["requests"] if url else None
    t0 = time.perf_counter()
    done = sum(pool.map(_chunk, chunks))
    dt = time.perf_counter() - t0
    assert done == len(names)
    if url:
        after = admin(url, "stats")["requests"]
        v = VERB[op]
        ms = after["handler_ms_by_verb"].get(v, 0) - before["handler_ms_by_verb"].get(v, 0)
        n = after["by_verb"].get(v, 0) - before["by_verb"].get(v, 0)
        SERVER_US[op] = 1000 * ms / max(n, 1)
    return len(names) / dt


def watch_rate(url: str, n_expected: int, resource_version: str | None) -> float:
    """Consume a watch with the official Watch (JSON only, no model building)."""
    from kubernetes import client, watch
    cfg = client.Configuration()
    cfg.host = url
    api = client.AppsV1Api(client.ApiClient(cfg))
    w = watch.Watch()
    kw = {"timeout_seconds": 60, "deserialize": False}
    if resource_version is not None:
        kw["resource_version"] = resource_version
    t0 = time.perf_counter()
    n = 0
    for _ in w.stream(api.list_namespaced_deployment, NS, **kw):
        n += 1
        if n >= n_expected:
            break
    w.stop()
    return n / (time.perf_counter() - t0)


def list_latency(url: str) -> float:
    import requests
    s = requests.Session()
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        r = s.get(f"{url}/apis/apps/v1/namespaces/{NS}/deployments", timeout=30)
        r.content
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def bench_size(url: str, pool, procs: int, n: int, proc) -> dict:
    admin(url, "reset")
    admin(url, "controller", {"paused": True})
    import requests
    requests.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": NS}}, timeout=10)
    names = [f"bench-{i:05d}" for i in range(n)]
    res = {"n": n}
    res["creates"] = run_op(pool, procs, "create", names, url)
    res["rss_mb"] = proc.memory_info().rss / 2**20
    res["reads"] = run_op(pool, procs, "read", names, url)
    rv_before_patch = admin(url, "stats")["resourceVersion"]
    res["patches"] = run_op(pool, procs, "patch", names, url)
    res["list_ms"] = list_latency(url)
    res["watch_initial"] = watch_rate(url, n, None)             # synthetic ADDED for n objects
    res["watch_replay"] = watch_rate(url, n, rv_before_patch)   # n MODIFIED events from the log
    res["deletes"] = run_op(pool, procs, "delete", names, url)
    for op in ("create", "read", "patch", "delete"):
        res[f"us_{op}"] = SERVER_US[op]
    res["rss_after_delete_mb"] = proc.memory_info().rss / 2**20
    # the same creates with the simulated controller running (it writes .status 2-3 times
    # per Deployment while they are being created)
    writes_before = admin(url, "stats")["controller"]["status_writes"]
    admin(url, "controller", {"paused": False})
    res["creates_ctrl"] = run_op(pool, procs, "create", [f"live-{i:05d}" for i in range(n)])
    # the controller also keeps ReplicaSets, Pods and Events: let it finish, then count them
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stats = admin(url, "stats")
        if stats["controller"]["pending"] == 0:
            break
        time.sleep(0.2)
    res["settle_s"] = 120 - (deadline - time.monotonic())
    res["status_writes"] = stats["controller"]["status_writes"] - writes_before
    res["objects_ctrl"] = sum(stats["objects"].values())
    res["rss_ctrl_mb"] = proc.memory_info().rss / 2**20
    return res


def warmup(url: str, pool, procs: int) -> None:
    admin(url, "reset")
    admin(url, "controller", {"paused": True})
    import requests
    requests.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": NS}}, timeout=10)
    names = [f"warm-{i}" for i in range(400)]
    for op in ("create", "read", "patch", "delete"):
        run_op(pool, procs, op, names)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="500,5000")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    import psutil
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "kube_emulator", "--port", str(port),
                               "--quiet", "--event-log-size", "20000"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        proc = psutil.Process(server.pid)
        print(f"kube-emulator benchmark on {os.cpu_count()} CPUs, server pid {server.pid}")
        print(f"clients: official kubernetes client, {args.procs} processes x {args.threads} "
              f"threads, connection-pooled ApiClient per process, _preload_content=False; "
              f"controller paused during CRUD phases; watch read with kubernetes.watch.Watch "
              f"(deserialize=False)")
        ctx = mp.get_context("fork")
        results = []
        with ctx.Pool(args.procs, initializer=_init_worker, initargs=(url, args.threads)) as pool:
            warmup(url, pool, args.procs)
            for n in [int(x) for x in args.sizes.split(",")]:
                # small sizes finish in a fraction of a second: repeat them, keep the median
                reps = [bench_size(url, pool, args.procs, n, proc)
                        for _ in range(max(2, 4000 // n))]
                r = {k: statistics.median(x[k] for x in reps) for k in reps[0]}
                r.update({k: reps[-1][k] for k in ("n", "rss_mb", "rss_after_delete_mb",
                                                   "objects_ctrl", "rss_ctrl_mb")})
                r["status_writes"] = int(r["status_writes"])
                results.append(r)
                print(f"\n{n} objects ({len(reps)} run{'s' if len(reps) > 1 else ''}, median):")
                print(f"  creates/s        {r['creates']:9.0f}   server handler "
                      f"{r['us_create']:5.0f} us/request")
                print(f"  reads/s          {r['reads']:9.0f}   server handler "
                      f"{r['us_read']:5.0f} us/request")
                print(f"  patches/s        {r['patches']:9.0f}   server handler "
                      f"{r['us_patch']:5.0f} us/request")
                print(f"  deletes/s        {r['deletes']:9.0f}   server handler "
                      f"{r['us_delete']:5.0f} us/request")
                print(f"  creates/s        {r['creates_ctrl']:9.0f}  with the controller running "
                      f"({r['status_writes']} status writes; all settled "
                      f"{r['settle_s']:.1f} s after the last create)")
                print(f"  server RSS (MB)  {r['rss_ctrl_mb']:9.1f}  with the {n} Deployments and "
                      f"their ReplicaSets, Pods and Events ({r['objects_ctrl']} objects)")
                print(f"  watch events/s   {r['watch_initial']:9.0f}  (initial ADDED snapshot)")
                print(f"  watch events/s   {r['watch_replay']:9.0f}  (replay of MODIFIED from the "
                      f"event log)")
                print(f"  list all (ms)    {r['list_ms']:9.1f}")
                print(f"  server RSS (MB)  {r['rss_mb']:9.1f}  with {n} objects; "
                      f"{r['rss_after_delete_mb']:.1f} after deleting them")
            # memory must not grow with history: run the largest size again and compare
            n = results[-1]["n"]
            again = bench_size(url, pool, args.procs, n, proc)
            print(f"\nsecond {n}-object cycle: server RSS {again['rss_mb']:.1f} MB with the "
                  f"objects, {again['rss_after_delete_mb']:.1f} MB after deleting them "
                  f"(first cycle: {results[-1]['rss_mb']:.1f} / "
                  f"{results[-1]['rss_after_delete_mb']:.1f}); event log bounded at "
                  f"{admin(url, 'stats')['event_log']['max']} events")
        if len(results) >= 2:
            a, b = results[0], results[-1]
            print(f"\nthroughput ratio {b['n']}/{a['n']} objects (1.0 = no slowdown):")
            for k in ("creates", "reads", "patches", "deletes", "creates_ctrl", "watch_initial",
                      "watch_replay"):
                print(f"  {k:14s} {b[k] / a[k]:.2f}")
            print("server handler time per request, 5000/500 (1.0 = flat):")
            for op in ("create", "read", "patch", "delete"):
                print(f"  {op:14s} {b['us_' + op] / a['us_' + op]:.2f}")
        admin(url, "controller", {"paused": False})
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
