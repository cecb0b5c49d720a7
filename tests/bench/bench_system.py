"""System benchmark (issue 17): the whole product as in production, driven open-loop by wrk.

Stack: durable PostgreSQL (fsync on), NATS with file storage, the emulator, the api under
docker/gunicorn.conf.py with K8SDM_ENV=production (DEBUG off), two workers and a watcher.
1,000 deployments are present before the first step. For each offered rate (creates, then a mix
of 60% updates / 20% creates / 20% deletes):
  accepted/s   requests answered 202 (rows created in the window),
  applied/s    requests that reached SUCCESS in the window,
  synced/s     deployment rows that reached CREATED + HEALTHY in the window,
  backlog      requests still pending when the load stops,
  202->SUCCESS and 202->row CREATED+HEALTHY p50/p99, from the rows' own timestamps,
  CPU ms per request of every process, from /proc, until the step's work is drained.
A rate is sustained when the api accepts >= 95% of it, the backlog at the end is under one
second of load and 202->SUCCESS p99 is under 1 s. Then: the api alone (worker and watcher
stopped, as fast as 16 connections go), and the sustained create rate again with 100,000
deployments present (rows and cluster objects seeded directly, then one full resync drained).

Run: make bench BENCH_ARGS=system   (--quick: shorter steps, fewer rates, 10,000 instead of 100,000)
     --profile DIR: py-spy record every Python process during one extra step (needs py-spy); only
        the thread holding the GIL is sampled (CPU), unless --profile-waits.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import _load  # noqa: E402
from tests.bench._stack import BenchStack, percentile  # noqa: E402

PROCESSES = ("api", "worker1", "worker2", "watcher", "emulator", "postgres", "nats")
USERS = 500  # as in load.lua


@dataclass
class Step:
    label: str
    rate: float
    seconds: float
    accepted: float = 0.0
    applied: float = 0.0
    synced: float = 0.0
    backlog: int = 0
    success: list = field(default_factory=list)  # 202 -> SUCCESS, seconds
    created: list = field(default_factory=list)  # 202 -> row CREATED + HEALTHY, seconds
    unfinished: int = 0
    statuses: dict = field(default_factory=dict)
    dropped: int = 0
    client: tuple = (0.0, 0.0)  # wrk's own latency p50/p99, ms
    cpu_ms: dict = field(default_factory=dict)  # per accepted request
    work: dict = field(default_factory=dict)  # messages, Kubernetes calls, commits per accepted request
    load: str = ""

    @property
    def sustained(self) -> bool:
        return (self.accepted >= 0.95 * self.rate and self.backlog <= max(self.rate, 10)
                and not self.unfinished and percentile(self.success, 99) < 1.0)

    def row(self) -> str:
        other = {k: v for k, v in self.statuses.items() if k != 202}
        ms = lambda xs, p: f"{percentile(xs, p) * 1000:6.0f}" if xs else "     -"  # noqa: E731
        return (f"  {self.label:<7}{self.rate:>6.0f} {self.accepted:>8.1f} {self.applied:>8.1f} {self.synced:>7.1f} "
                f"{self.backlog:>7d}  {ms(self.success, 50)} {ms(self.success, 99)}  {ms(self.created, 50)} "
                f"{ms(self.created, 99)}  {self.client[0]:6.0f} {self.client[1]:6.0f}  {'yes' if self.sustained else 'NO ':<4}"
                f"{' other:' + json.dumps(other) if other else ''}{f' dropped {self.dropped}' if self.dropped else ''}"
                f"{f' unfinished {self.unfinished}' if self.unfinished else ''}")


HEADER = ("  step     rate accepted  applied  synced backlog  202->SUCCESS  202->CREATED  client 202  sustained\n"
          "          /s       /s       /s      /s    (end)   p50    p99 ms  p50    p99 ms  p50    p99")


def db_now() -> datetime:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def sql(query: str, params: list) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def tables() -> tuple[str, str]:
    from deployments_app.models import Deployment
    from requests_app.models import DeploymentRequest

    return DeploymentRequest._meta.db_table, Deployment._meta.db_table


def consumers(stack: BenchStack) -> dict:
    """Per consumer (requests, sync): (messages waiting or unacked, deliveries so far)."""
    import nats

    from k8sdm.messaging import messages

    async def query() -> dict:
        nc = await nats.connect(stack.nats.url)
        try:
            js = nc.jetstream()
            found = {}
            for name, consumer in (("apply", messages.REQUESTS_CONSUMER), ("sync", messages.SYNC_CONSUMER)):
                info = await js.consumer_info(messages.stream_name(), consumer)
                found[name] = (info.num_pending + info.num_ack_pending, info.delivered.consumer_seq)
            return found
        finally:
            await nc.close()

    return asyncio.run(query())


def pending_messages(stack: BenchStack) -> int:
    """Messages JetStream still holds for the workers (not yet delivered, or delivered and unacked)."""
    return sum(waiting for waiting, _ in consumers(stack).values())


def counters(stack: BenchStack) -> dict:
    """Work done so far: JetStream deliveries, Kubernetes API calls by verb, Postgres commits."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.emulator_port, timeout=10)
    conn.request("GET", "/_emulator/stats")
    verbs = json.loads(conn.getresponse().read())["requests"]["by_verb"]
    found = {f"{name} msgs": delivered for name, (_, delivered) in consumers(stack).items()}
    found.update({f"k8s {verb}": verbs.get(verb, 0) for verb in ("get", "create", "update", "delete")})
    found["pg commits"] = sql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", [])[0][0]
    return found


def wait_drained(stack: BenchStack, since: datetime, timeout: float, messages: bool = True) -> bool:
    """Every request accepted since `since` finished and (with `messages`) JetStream empty (syncs applied)."""
    requests_table, _ = tables()
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        # The api may still be answering requests queued in its listen backlog: wait until that is
        # empty and the count has settled.
        queued = stack.api_queue()
        accepted, left = sql(f"SELECT count(*), count(*) FILTER (WHERE status = 'CREATED') FROM {requests_table} "
                             f"WHERE created_at >= %s", [since])[0]
        if accepted == seen and not queued and not left and not (messages and pending_messages(stack)):
            return True
        seen = accepted
        time.sleep(0.5)
    return False


def cpu(stack: BenchStack) -> dict:
    return {name: stack.cpu_seconds(name) for name in PROCESSES if name in stack.procs or name in ("postgres", "nats")}


def connections_for(rate: float) -> int:
    """Connections for an open-loop step at `rate`: two seconds of requests in flight (16 to 256).

    Not more: each connection waits connections/rate seconds between its requests, and the api
    closes a keep-alive connection idle for 5 s (gunicorn's `keepalive`); wrk then reconnects
    and books a new slot at the end of its schedule, so the one the closed connection held is
    never sent. With 256 connections at 10/s (25 s per connection) that lost about half of the
    offered load, which read as an api accepting 5 of 10 requests/s."""
    return int(min(256, max(16, 2 * rate)))


def measure(stack: BenchStack, api: str, label: str, mode: str, rate: float, seconds: float, prefix: str,
            pool: Path | None = None, connections: int | None = None, drain: bool = True, syncs: bool = True) -> Step:
    requests_table, deployments_table = tables()
    if connections is None:
        connections = connections_for(rate)
    step = Step(label, rate, seconds, load=os.getloadavg().__repr__())
    cpu0, work0, t0 = cpu(stack), counters(stack), db_now()
    result = _load.run(api, mode=mode, rate=rate, seconds=seconds, prefix=prefix, pool=pool, connections=connections)
    t1 = db_now()
    step.statuses, step.dropped = result["statuses"], result["dropped"]
    step.client = (result["p50_ms"], result["p99_ms"])
    window = (t1 - t0).total_seconds()
    in_window = "BETWEEN %s AND %s"
    step.accepted = sql(f"SELECT count(*) FROM {requests_table} WHERE created_at {in_window}", [t0, t1])[0][0] / window
    step.applied = sql(f"SELECT count(*) FROM {requests_table} WHERE status = 'SUCCESS' AND finished_at {in_window}",
                       [t0, t1])[0][0] / window
    step.synced = sql(f"SELECT count(*) FROM {deployments_table} WHERE status = 'CREATED' AND health = 'HEALTHY' "
                      f"AND updated_at {in_window}", [t0, t1])[0][0] / window
    step.backlog = sql(f"SELECT count(*) FROM {requests_table} WHERE created_at >= %s AND status = 'CREATED'", [t0])[0][0]
    drained = wait_drained(stack, t0, timeout=240, messages=syncs) if drain else True
    cpu1 = cpu(stack)
    # Everything accepted since the step began (answers that came after its window included).
    accepted = max(1, sql(f"SELECT count(*) FROM {requests_table} WHERE created_at >= %s", [t0])[0][0])
    step.cpu_ms = {name: (cpu1[name] - cpu0[name]) * 1000 / accepted for name in cpu1 if name in cpu0}
    step.work = {name: (value - work0[name]) / accepted for name, value in counters(stack).items()}
    step.success = [r[0] for r in sql(
        f"SELECT EXTRACT(EPOCH FROM finished_at - created_at)::float FROM {requests_table} "
        f"WHERE created_at >= %s AND status = 'SUCCESS'", [t0])]
    step.unfinished = 0 if drained else sql(
        f"SELECT count(*) FROM {requests_table} WHERE created_at >= %s AND status = 'CREATED'", [t0])[0][0]
    # A create's row is CREATED + HEALTHY at its last write, if no later request touched it.
    step.created = [r[0] for r in sql(
        f"SELECT EXTRACT(EPOCH FROM d.updated_at - r.created_at)::float FROM {requests_table} r "
        f"JOIN {deployments_table} d ON d.id = r.deployment_id WHERE r.action = 'CREATE' AND r.created_at >= %s "
        f"AND d.status = 'CREATED' AND d.health = 'HEALTHY' AND NOT EXISTS "
        f"(SELECT 1 FROM {requests_table} r2 WHERE r2.deployment_id = d.id AND r2.id > r.id)", [t0])]
    print(step.row(), flush=True)
    return step


def write_pool(stack: BenchStack, limit: int = 4000) -> Path:
    """Live deployments and their owners, for the mix's updates and deletes."""
    from users_app.models import User

    requests_table, deployments_table = tables()
    rows = sql(f"SELECT d.identifier, u.user_external_id FROM {deployments_table} d JOIN {User._meta.db_table} u "
               f"ON u.id = d.owner_id WHERE d.status = 'CREATED' AND NOT EXISTS (SELECT 1 FROM {requests_table} r "
               f"WHERE r.deployment_id = d.id AND r.status = 'CREATED') ORDER BY random() LIMIT %s", [limit])
    path = stack.tmp / "pool.txt"
    path.write_text("".join(f"{ident} {user}\n" for ident, user in rows))
    return path


def search(stack, api, label, mode, rates, seconds, prefix, syncs: bool = True) -> list[Step]:
    """Step the offered rate up until two steps in a row are not sustained (the second one shows
    the saturated throughput)."""
    steps = []
    for rate in rates:
        pool = write_pool(stack) if mode == "mix" else None
        steps.append(measure(stack, api, label, mode, rate, seconds, f"{prefix}{rate}", pool, syncs=syncs))
        if len(steps) >= 2 and not steps[-1].sustained and not steps[-2].sustained:
            break
    return steps


def best(steps: list[Step]) -> float:
    return max((s.rate for s in steps if s.sustained), default=0.0)


# --- seeding ------------------------------------------------------------------------------------


def seed(stack: BenchStack, start: int, count: int) -> float:
    """Deployments seed-<start>..seed-<start+count-1>: objects created through the emulator's API
    from 8 threads, then (once the controller has rolled them out) their rows, a SUCCESS CREATE
    request each, written in bulk with exactly what a sync would write, so nothing is stale."""
    from deployments_app.config import DeploymentConfig
    from deployments_app.models import Deployment
    from deployments_app.sync import health_of, observed_spec_of, status_of
    from requests_app.models import DeploymentRequest
    from users_app.models import User

    started = time.monotonic()
    names = [f"seed-{i}" for i in range(start, start + count)]

    def post(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", stack.emulator_port, timeout=30)
        for name in chunk:
            body = config_of(name).to_manifest(owner=owner_of(name), request_pk=0)
            conn.request("POST", "/apis/apps/v1/namespaces/default/deployments", json.dumps(body),
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"seeding {name}: {response.status}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, [names[k::8] for k in range(8)]))
    wanted = set(names)
    while True:
        live = {obj["metadata"]["name"]: obj for obj in list_deployments(stack) if obj["metadata"]["name"] in wanted}
        if len(live) == count and all(health_of(obj) == "HEALTHY" for obj in live.values()):
            break
        time.sleep(1)
    User.objects.bulk_create([User(user_external_id=f"bench-{n}") for n in range(USERS)], ignore_conflicts=True)
    users = {u.user_external_id: u for u in User.objects.filter(user_external_id__startswith="bench-")}
    deployments = []
    for name in names:
        obj = live[name]
        observed = observed_spec_of(obj, DeploymentConfig.from_live(obj))
        deployments.append(Deployment(
            identifier=name, namespace="default", owner=users[owner_of(name)], status=status_of(obj),
            health=health_of(obj), desired_config=config_of(name).to_dict(),
            observed_spec=observed, image=observed["image"], replicas=observed["replicas"],
            ready_replicas=obj["status"].get("readyReplicas", 0), updated_replicas=obj["status"].get("updatedReplicas", 0),
            available_replicas=obj["status"].get("availableReplicas", 0), generation=obj["metadata"]["generation"],
            observed_generation=obj["status"].get("observedGeneration"), conditions=obj["status"].get("conditions", []),
            resource_version=obj["metadata"]["resourceVersion"], uid=obj["metadata"]["uid"], drift={},
        ))
    Deployment.objects.bulk_create(deployments, batch_size=5000)
    from django.utils import timezone

    now = timezone.now()
    DeploymentRequest.objects.bulk_create([
        DeploymentRequest(
            request_id=f"seed-{d.identifier}", user=d.owner, deployment=d, identifier=d.identifier, namespace="default",
            action="CREATE", status="SUCCESS", payload={"identifier": d.identifier, "image": "nginx:1.27"},
            config=d.desired_config, payload_hash="seed", attempts=1, resource_version=d.resource_version,
            published_at=now, started_at=now, finished_at=now,
        ) for d in deployments
    ], batch_size=5000)
    settle_after_bulk_load()
    return time.monotonic() - started


def settle_after_bulk_load() -> None:
    """VACUUM (ANALYZE) the tables just bulk-loaded and CHECKPOINT, as after any bulk load: else
    autovacuum and the checkpoint of the load's WAL run during the next step and bill it (the
    first step with 10,000 deployments present measured 24 ms of Postgres CPU per create, the
    next one 9)."""
    from django.db import connection

    from deployments_app.models import Deployment
    from requests_app.models import DeploymentRequest
    from users_app.models import User

    with connection.cursor() as cursor:
        for model in (User, Deployment, DeploymentRequest):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
        cursor.execute("CHECKPOINT")


def config_of(name: str):
    from deployments_app.config import DeploymentConfig

    return DeploymentConfig.from_input({"identifier": name, "image": "nginx:1.27"})


def owner_of(name: str) -> str:
    return f"bench-{int(name.rsplit('-', 1)[1]) % USERS}"


def list_deployments(stack: BenchStack) -> list[dict]:
    items, token = [], ""
    conn = http.client.HTTPConnection("127.0.0.1", stack.emulator_port, timeout=120)
    while True:
        conn.request("GET", f"/apis/apps/v1/namespaces/default/deployments?limit=10000&continue={token}")
        page = json.loads(conn.getresponse().read())
        items += page["items"]
        token = page["metadata"].get("continue") or ""
        if not token:
            return items


# --- processes ------------------------------------------------------------------------------------


def start_daemons(stack: BenchStack) -> None:
    stack.worker("worker1")
    stack.worker("worker2")
    stack.watcher("watcher")


def stop_daemons(stack: BenchStack) -> None:
    for name in ("watcher", "worker1", "worker2"):
        stack.stop_proc(name)


def profile(stack: BenchStack, api: str, rate: float, seconds: float, out: Path, *, gil: bool = True) -> None:
    """py-spy record every Python process (gunicorn workers included) while creates run at `rate`.
    `gil`: sample only the thread holding the GIL, i.e. Python's own CPU time. Without it py-spy
    also counts a thread that waits in psycopg or in select() as running, and those waits (round
    trips, not CPU) were more than half of a worker's samples."""
    import psutil

    out.mkdir(parents=True, exist_ok=True)
    targets = {"emulator": stack.procs["emulator"].pid, "worker1": stack.procs["worker1"].pid,
               "worker2": stack.procs["worker2"].pid, "watcher": stack.procs["watcher"].pid}
    for n, child in enumerate(psutil.Process(stack.procs["api"].pid).children()):
        targets[f"api{n}"] = child.pid
    spies = [subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "50",
                               "-f", "raw", "-o", str(out / f"{name}.txt"), "--threads", "--nonblocking",
                               *(["--gil"] if gil else [])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name, pid in targets.items()]
    measure(stack, api, "profile", "create", rate, seconds, f"prof{int(rate)}")
    for spy in spies:
        spy.wait()
    print(f"  py-spy profiles (collapsed stacks) in {out}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of one step here")
    parser.add_argument("--profile-rate", type=float, default=100)
    parser.add_argument("--profile-waits", action="store_true",
                        help="profile every thread, waits included (default: only the GIL holder, i.e. CPU)")
    parser.add_argument("--large", type=int, help="deployments present in the last part")
    parser.add_argument("--resync-wait", type=float, default=900, help="at most this long for the watcher's first list")
    parser.add_argument("--rates", help="comma-separated offered rates instead of the default steps")
    parser.add_argument("--creates-only", action="store_true",
                        help="only the create steps and their work per request (no mix, api-only or large part): "
                             "for comparing one change, e.g. with an env setting on and off")
    args = parser.parse_args()
    quick = args.quick
    seconds = 8 if quick else 20
    rates = [10, 25, 50, 100, 200] if quick else [10, 25, 50, 75, 100, 150, 200, 250, 300, 400]
    if args.rates:
        rates = [int(r) for r in args.rates.split(",")]
    mix_rates = rates
    large = args.large or (10_000 if quick else 100_000)
    print(f"k8sdm system benchmark: production settings, gunicorn (docker/gunicorn.conf.py), 2 workers, 1 watcher, "
          f"emulator, durable PostgreSQL, NATS file storage; {os.cpu_count()} cores; load {os.getloadavg()}")
    stack = BenchStack(production=True).start()
    stack.django()
    print(f"  seeded 1,000 deployments in {seed(stack, 0, 1000):.0f}s")
    api = stack.api()
    start_daemons(stack)
    if not wait_drained(stack, db_now(), timeout=120):
        print("  (initial sync of the seeded deployments did not drain in 120s)")
    # Warm-up: every gunicorn worker has loaded the app, opened its connections, imported every path.
    measure(stack, api, "warm-up", "create", 10, 15, "warm")
    cpu0 = cpu(stack)
    time.sleep(5)
    idle = {name: (value - cpu0[name]) * 200 for name, value in cpu(stack).items()}
    print("  idle CPU, ms per second: " + ", ".join(f"{name} {value:.0f}" for name, value in idle.items()))

    if args.profile:
        profile(stack, api, args.profile_rate, seconds * 2, args.profile, gil=not args.profile_waits)

    print(f"\nCreates at stepped rates ({seconds}s each, 1,000 deployments present):\n{HEADER}")
    creates = search(stack, api, "create", "create", rates, seconds, "c")
    mix = []
    if not args.creates_only:
        print(f"\nMix 60% updates / 20% creates / 20% deletes ({seconds}s each):\n{HEADER}")
        mix = search(stack, api, "mix", "mix", mix_rates, seconds, "m")

    print("\nCPU ms per accepted request, by process (measured until the step's work was drained):")
    print("  step        rate " + "".join(f"{name:>9}" for name in PROCESSES) + "     total")
    for step in creates + mix:
        print(f"  {step.label:<8}{step.rate:>8.0f} " + "".join(f"{step.cpu_ms.get(n, 0):9.2f}" for n in PROCESSES)
              + f"{sum(step.cpu_ms.values()):10.2f}")

    print("\nWork per accepted request (JetStream deliveries, Kubernetes API calls, Postgres commits):")
    names = list(creates[0].work)
    print("  step        rate " + "".join(f"{name:>11}" for name in names))
    for step in creates + mix:
        print(f"  {step.label:<8}{step.rate:>8.0f} " + "".join(f"{step.work.get(n, 0):11.2f}" for n in names))
    if args.creates_only:
        print(f"  load average at the end: {os.getloadavg()}")
        stack.stop()
        return

    stop_daemons(stack)
    print(f"\nThe api alone (worker and watcher stopped), 16 connections, closed loop:\n{HEADER}")
    api_only = measure(stack, api, "api-only", "create", 0, seconds, "a", connections=16, drain=False)
    api_rate = api_only.statuses.get(202, 0) / seconds
    print(f"  (api alone, worker and watcher stopped, 16 connections closed-loop: {api_rate:.0f} creates/s; "
          f"api CPU {api_only.cpu_ms.get('api', 0):.2f} ms per create)")

    print(f"\nSeeding up to {large:,} deployments (worker and watcher stopped) ...", flush=True)
    print(f"  seeded {large - 1000:,} more in {seed(stack, 1000, large - 1000):.0f}s", flush=True)
    started, before, lists = time.monotonic(), consumers(stack)["sync"][1], stack.log("watcher").count("listed ")
    start_daemons(stack)
    while stack.log("watcher").count("listed ") == lists and time.monotonic() - started < args.resync_wait:
        time.sleep(1)  # the watcher's first list of every managed Deployment (one request, no paging)
    listed = re.findall(r"listed (\d+) managed deployment\(s\).*? in (\d+) ms", stack.log("watcher"))
    print(f"  watcher listed {listed[-1][0] if listed else '?'} deployments in {int(listed[-1][1]) / 1000 if listed else 0:.0f}s "
          f"({time.monotonic() - started:.0f}s after the restart)", flush=True)
    time.sleep(30)  # the watcher publishes the listed keys
    first = consumers(stack)["sync"]
    time.sleep(30)
    waiting, delivered = consumers(stack)["sync"]
    rate = (delivered - first[1]) / 30
    left = f"about {waiting / rate:.0f}s more" if rate and waiting else ("drained" if not waiting else "not moving")
    print(f"  resync after the restart: {delivered - before:,} sync messages handled so far, {rate:.0f}/s, {waiting:,} "
          f"waiting: {left}; the watcher relists and publishes every "
          f"key again every K8SDM_RESYNC_SECONDS (300 s). The steps below run while it drains.", flush=True)
    print(f"\nCreates with {large:,} deployments present:\n{HEADER}")
    start_rates = [r for r in rates if r >= best(creates) / 2] or rates
    large_steps = search(stack, api, "create", "create", start_rates, seconds, "l", syncs=False)
    print("  CPU ms per accepted request, by process: the same steps")
    for step in large_steps:
        print(f"  {step.label:<8}{step.rate:>8.0f} " + "".join(f"{step.cpu_ms.get(n, 0):9.2f}" for n in PROCESSES)
              + f"{sum(step.cpu_ms.values()):10.2f}")

    sustained, sustained_mix, sustained_large = best(creates), best(mix), best(large_steps)
    print("\nSummary (sustained: api accepts >= 95% of the offered rate, backlog < 1 s of load, 202->SUCCESS p99 < 1 s):")
    print(f"  creates sustained end to end           {sustained:6.0f}/s   (target >= 250)")
    print(f"  mix sustained end to end               {sustained_mix:6.0f}/s")
    print(f"  highest applied/s seen, creates / mix  {max(s.applied for s in creates):6.0f}/s / "
          f"{max(s.applied for s in mix):.0f}/s")
    total = min(sum(s.cpu_ms.values()) for s in creates)
    print(f"  CPU per create, all processes          {total:6.1f} ms: at most {2000 / total:.0f} creates/s on 2 idle cores")
    print(f"  api alone (worker + watcher stopped)   {api_rate:6.0f}/s")
    saturated = max(s.applied for s in creates)
    print(f"  system / api-only                      {sustained / api_rate if api_rate else 0:6.2f}    (target >= 0.6; "
          f"highest applied/s over it: {saturated / api_rate if api_rate else 0:.2f})")
    at100 = next((s for s in creates if s.rate == 100), None)
    if at100:
        print(f"  202->SUCCESS p99 at 100/s              {percentile(at100.success, 99) * 1000:6.0f} ms (target < 100)")
    print(f"  creates sustained with {large:,} present {sustained_large:6.0f}/s   ratio to 1,000: "
          f"{sustained_large / sustained if sustained else 0:.2f} (target >= 0.9)")
    print(f"  load average at the end: {os.getloadavg()}")
    stack.stop()


if __name__ == "__main__":
    main()
