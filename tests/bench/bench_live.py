"""Live benchmark (issue 15): 1,000 concurrent SSE streams on one ASGI events server process: its
memory per stream, and the delay from the commit of a transition to its event on the streams at
100 events/s; and how long after the commit a long-poll answers.

Run: .venv/bin/python tests/bench/bench_live.py   (or `make bench BENCH_ARGS=live`)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._stack import BenchStack, percentile  # noqa: E402

# Smaller runs for a quick look: BENCH_LIVE_STREAMS=100 BENCH_LIVE_SECONDS=5 ...
STREAMS = int(os.environ.get("BENCH_LIVE_STREAMS", 1000))
USERS = STREAMS // 5  # 5 streams each (the default per-user bound)
EVENTS_PER_SECOND = int(os.environ.get("BENCH_LIVE_RATE", 100))
SECONDS = int(os.environ.get("BENCH_LIVE_SECONDS", 20))
LONG_POLLS = int(os.environ.get("BENCH_LIVE_LONG_POLLS", 50))

CLIENT = r'''
import asyncio, json, sys, time
import aiohttp

async def main(url, users, per_user, out_path):
    received = []
    connected = 0
    ready = asyncio.Event()

    async def stream(session, user):
        nonlocal connected
        async with session.get(url, headers={"X-User-Id": user}, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            data = None
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line == ": connected":
                    connected += 1
                    if connected == users * per_user:
                        ready.set()
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data is not None:
                    event = json.loads(data)
                    received.append((event["data"]["request_id"], time.time()))
                    data = None

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(stream(session, f"bench-{u}")) for u in range(users) for _ in range(per_user)]
        await ready.wait()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "stop"
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    with open(out_path, "w") as fh:
        json.dump(received, fh)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
'''


def seed(count_users: int):
    from deployments_app.models import Deployment
    from requests_app.models import DeploymentRequest
    from users_app.models import User

    users = User.objects.bulk_create([User(user_external_id=f"bench-{u}") for u in range(count_users)])
    deployments = Deployment.objects.bulk_create(
        [Deployment(identifier=f"live-{u}", namespace="default", owner=user,
                    desired_config={"identifier": f"live-{u}", "namespace": "default", "image": "nginx:1.27"})
         for u, user in enumerate(users)])
    return users, deployments, DeploymentRequest


def new_request(DeploymentRequest, user, deployment, request_id: str):
    return DeploymentRequest.objects.create(
        request_id=request_id, user=user, deployment=deployment, identifier=deployment.identifier,
        namespace="default", action="CREATE", payload={}, config={}, payload_hash="0" * 64)


def finish(req, user_external_id: str, commits: dict) -> None:
    """The worker's own transition: CREATED -> SUCCESS in a transaction; the event goes after commit."""
    from django.db import transaction

    from requests_app.processing import _finish

    req.owner_external_id = user_external_id
    with transaction.atomic():
        transaction.on_commit(lambda: commits.__setitem__(req.request_id, time.time()))
        _finish(req, status="SUCCESS", resource_version="1")


def _cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def bench_streams(stack: BenchStack, events_url: str, users, deployments, DeploymentRequest) -> None:
    baseline = stack.rss_mb("events")
    out = stack.tmp / "received.json"
    client = subprocess.Popen([sys.executable, "-c", CLIENT, events_url + "/api/v1/events", str(USERS),
                               str(STREAMS // USERS), str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    started = time.monotonic()
    assert client.stdout.readline().strip() == "ready"
    opened = time.monotonic() - started
    time.sleep(2.0)
    with_streams = stack.rss_mb("events")
    print(f"{STREAMS} SSE streams ({USERS} users x {STREAMS // USERS}) open in {opened:.1f}s")
    print(f"events server RSS: {baseline:.1f} MB idle -> {with_streams:.1f} MB with {STREAMS} streams: "
          f"{(with_streams - baseline) * 1024 / STREAMS:.1f} KB per stream")

    pending = [new_request(DeploymentRequest, users[i % USERS], deployments[i % USERS], f"ev-{i}")
               for i in range(EVENTS_PER_SECOND * SECONDS)]
    commits: dict[str, float] = {}
    interval = 1.0 / EVENTS_PER_SECOND
    # Where the CPU goes while events flow: the events server, the client's 1,000 streams, and this
    # process (the committing threads and the event bus); and the machine's load besides.
    cpu_before = {"events server": stack.cpu_seconds("events"), "SSE client": _cpu(client.pid),
                  "committer (this process)": _cpu(os.getpid())}
    t0 = time.monotonic()

    def paced(i: int) -> None:
        # Each transition at its own moment, from a small pool (one commit may take longer than 10 ms).
        delay = t0 + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        finish(pending[i], users[i % USERS].user_external_id, commits)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(paced, range(len(pending))))
    elapsed = time.monotonic() - t0
    achieved = len(pending) / elapsed
    cpu_after = {"events server": stack.cpu_seconds("events"), "SSE client": _cpu(client.pid),
                 "committer (this process)": _cpu(os.getpid())}
    print("CPU while events flowed: " + ", ".join(
        f"{name} {100 * (cpu_after[name] - cpu_before[name]) / elapsed:.0f}%" for name in cpu_before)
        + f" of one core; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    time.sleep(3.0)
    peak = stack.rss_mb("events")
    client.stdin.write("stop\n")
    client.stdin.flush()
    client.wait(60)
    received = json.loads(out.read_text())
    delays = [(t - commits[rid]) * 1000 for rid, t in received if rid in commits]
    expected = len(pending) * (STREAMS // USERS)
    print(f"{len(pending)} events at {achieved:.0f}/s, each to {STREAMS // USERS} streams: "
          f"{len(delays)} of {expected} deliveries arrived")
    print(f"commit -> event on the stream: p50 {percentile(delays, 50):.1f} ms, p99 {percentile(delays, 99):.1f} ms, "
          f"max {max(delays):.1f} ms   (aim: p50 < 50 ms, p99 < 250 ms)")
    print(f"events server RSS under load: {peak:.1f} MB")


def bench_long_poll(stack: BenchStack, api: str, users, deployments, DeploymentRequest) -> None:
    import requests

    reqs = [new_request(DeploymentRequest, users[i % USERS], deployments[i % USERS], f"lp-{i}")
            for i in range(LONG_POLLS + 4)]
    answered: dict[str, tuple[float, str]] = {}

    def poll(req):
        response = requests.get(f"{api}/api/v1/requests/{req.request_id}", params={"wait": 30},
                                headers={"X-User-Id": req.user.user_external_id}, timeout=60)
        answered[req.request_id] = (time.time(), response.json()["status"])

    delays = []
    warmup = 4  # each gunicorn worker connects its event bus on its first long-poll: not measured
    for n, req in enumerate(reqs):  # one at a time: the answer's delay, not the api's queueing
        thread = threading.Thread(target=poll, args=(req,))
        thread.start()
        time.sleep(0.3)  # let it reach its wait (measured from the commit below, so this is not timed)
        commits: dict[str, float] = {}
        finish(req, req.user.user_external_id, commits)
        thread.join(60)
        at, status = answered[req.request_id]
        assert status == "SUCCESS", status
        if n >= warmup:
            delays.append((at - commits[req.request_id]) * 1000)
    print(f"long-poll (?wait=30) answered after the commit: p50 {percentile(delays, 50):.1f} ms, "
          f"p99 {percentile(delays, 99):.1f} ms, max {max(delays):.1f} ms over {len(delays)} requests")
    # The floor: the same GET of a finished request without ?wait (client, HTTP, the api's
    # middleware and read), one at a time; the long-poll's own share is the difference.
    plain = []
    for req in reqs[warmup:]:
        started = time.time()
        response = requests.get(f"{api}/api/v1/requests/{req.request_id}",
                                headers={"X-User-Id": req.user.user_external_id}, timeout=60)
        assert response.status_code == 200, response.status_code
        plain.append((time.time() - started) * 1000)
    print(f"the same GET without ?wait (the floor): p50 {percentile(plain, 50):.1f} ms, p99 {percentile(plain, 99):.1f} ms;"
          f" long-poll minus floor at p50: {percentile(delays, 50) - percentile(plain, 50):.1f} ms")


def main() -> int:
    stack = BenchStack().start()
    try:
        stack.django()
        from devstack._proc import free_port, wait_for_port

        port = free_port()
        proc = stack.spawn("events", [sys.executable, "-m", "uvicorn", "k8sdm.asgi:application", "--host",
                                      "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
                           K8SDM_SSE_MAX_STREAMS_PER_USER="5")
        wait_for_port("127.0.0.1", port, timeout=30, proc=proc, what="events server")
        api = stack.api(workers=2)
        users, deployments, DeploymentRequest = seed(USERS)
        from k8sdm.messaging.events_stream import event_bus

        event_bus()  # connected before the clock starts
        time.sleep(1.0)
        bench_streams(stack, f"http://127.0.0.1:{port}", users, deployments, DeploymentRequest)
        bench_long_poll(stack, api, users, deployments, DeploymentRequest)
        return 0
    finally:
        from k8sdm.messaging.events_stream import reset_event_bus

        reset_event_bus()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
