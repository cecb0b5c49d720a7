"""Revisions benchmark: listing the revisions of a deployment with 1,000 revisions, against listing requests.

    .venv/bin/python tests/bench/bench_revisions.py [--revisions 1000] [--calls 1000] [--clients 4]

Starts its own PostgreSQL and NATS (tests/bench/_stack.py), migrates, bulk-loads one user with one
deployment that has --revisions revisions (each made by one of its --revisions requests; loaded
directly, so nothing prunes them), serves k8sdm.wsgi with gunicorn (2 workers), and
calls, from --clients threads with a keep-alive connection each, --calls times per endpoint:
- GET /api/v1/deployments/{identifier}/revisions (the first page: each revision with its config and
  its diff to the previous one);
- GET /api/v1/deployments/{identifier}/revisions?cursor=... (a page from the middle of the history);
- GET /api/v1/requests/ (the first page of the same user's requests: the reference).
Prints p50/p99 per endpoint as the clients see them and the ratio of the revisions p99 to the
requests p99 (the issue asks for the same range). Nothing is asserted: numbers only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._stack import BenchStack, percentile  # noqa: E402

USER = "bench-revisions@example.com"
IDENTIFIER = "history"


def load(revisions: int) -> None:
    from django.utils import timezone

    from deployments_app.models import Deployment, DeploymentStatus
    from requests_app.models import DeploymentRequest, RequestAction, RequestStatus, Revision, RevisionKind
    from users_app.models import User

    user = User.objects.create(user_external_id=USER)
    base = {"identifier": IDENTIFIER, "namespace": "default", "image": "nginx:1.0", "replicas": 2,
            "labels": {"tier": "web"}, "annotations": {}, "env": [{"name": "MODE", "value": "a"}],
            "ports": [{"name": "http", "container_port": 80, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m"}}, "command": [], "args": []}
    configs = [{**base, "image": f"nginx:1.{n}", "env": [{"name": "N", "value": str(n)}]} for n in range(revisions)]
    deployment = Deployment.objects.create(identifier=IDENTIFIER, namespace="default", owner=user,
                                           status=DeploymentStatus.CREATED, desired_config=configs[-1])
    now = timezone.now()
    requests = DeploymentRequest.objects.bulk_create([
        DeploymentRequest(request_id=f"r-{n}", user=user, deployment=deployment, identifier=IDENTIFIER,
                          namespace="default", action=RequestAction.CREATE if n == 0 else RequestAction.UPDATE,
                          status=RequestStatus.SUCCESS, payload=config, config=config, payload_hash="0" * 64,
                          finished_at=now, published_at=now)
        for n, config in enumerate(configs)
    ], batch_size=500)
    Revision.objects.bulk_create([
        Revision(deployment=deployment, number=n + 1, kind=RevisionKind.CREATE if n == 0 else RevisionKind.UPDATE,
                 config=request.config, request=request, user=user, message=f"change {n}", generation=n + 1,
                 completed_at=now)
        for n, request in enumerate(requests)
    ], batch_size=500)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(base: str, path: str, calls: int, clients: int) -> list[float]:
    parts = urlsplit(base)
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, calls // clients)

    def run():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine = []
        for n in range(per_client + 20):
            t0 = time.perf_counter()
            conn.request("GET", path, headers={"X-User-Id": USER})
            response = conn.getresponse()
            response.read()
            took = time.perf_counter() - t0
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
            if n >= 20:  # warm-up calls are not counted
                mine.append(took * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="200 calls per endpoint")
    args, _ = parser.parse_known_args()
    calls = 200 if args.quick else args.calls
    stack = BenchStack().start()
    stack.django()
    load(args.revisions)
    base = stack.api(workers=2)

    first = json.loads(_get(base, f"/api/v1/deployments/{IDENTIFIER}/revisions?page_size=25"))
    middle_cursor = first["next"]
    for _ in range(args.revisions // 50):  # walk to the middle of the history
        middle_cursor = json.loads(_get(base, middle_cursor))["next"]
    middle = urlsplit(middle_cursor)
    phases = [
        ("revisions, first page", f"/api/v1/deployments/{IDENTIFIER}/revisions"),
        ("revisions, a middle page", f"{middle.path}?{middle.query}"),
        ("requests, first page", "/api/v1/requests/"),
    ]
    print(f"{args.revisions} revisions of one deployment (and as many requests of its user); "
          f"{calls} calls per endpoint from {args.clients} clients, default page size")
    results = {}
    for name, path in phases:
        ms = measure(base, path, calls, args.clients)
        results[name] = (percentile(ms, 50), percentile(ms, 99))
        print(f"{name:<28} {len(ms):>6} calls  p50 {results[name][0]:6.1f} ms  p99 {results[name][1]:6.1f} ms")
    reference = results["requests, first page"][1]
    for name in ("revisions, first page", "revisions, a middle page"):
        print(f"p99 ratio {name} / requests, first page: {results[name][1] / reference:.2f}")
    stack.stop()
    return 0


def _get(base: str, path: str) -> str:
    parts = urlsplit(base)
    target = urlsplit(path)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"{target.path}?{target.query}" if target.query else target.path,
                 headers={"X-User-Id": USER})
    response = conn.getresponse()
    body = response.read().decode()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]}")
    return body


if __name__ == "__main__":
    sys.exit(main())
