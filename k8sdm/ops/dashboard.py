"""The operations dashboard's reads: one snapshot of "is anything wrong?".

Bounded: a fixed number of SQL queries (each served by an index or a small aggregate) and one
round trip to JetStream, however many requests and deployments there are; lists are capped at
LIST_LIMIT rows, counts come from GROUP BY. Liveness comes from sources that cannot lie about a
dead process: the watcher's Postgres advisory lock (pg_locks; it dies with the holder's
connection), the Postgres sessions each daemon names with application_name (pg_stat_activity;
the worker's outbox relay touches the database every K8SDM_OUTBOX_INTERVAL_SECONDS), and the
JetStream consumers' own counters (open pull requests, messages waiting and in progress).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min, Q
from django.urls import reverse
from django.utils import timezone

from deployments_app.leader import LEADER_LOCK
from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from events_app.models import EventOutbox
from k8sdm.ops.display import degraded_reason, drift_text, seconds_text
from k8sdm.messaging import messages
from requests_app import publishing
from requests_app.models import DeploymentRequest, RequestStatus

LIST_LIMIT = 10
FAILURE_WINDOW = timedelta(hours=1)
WORKER_APP = "k8sdm-worker"
WATCHER_APPS = ("k8sdm-watcher", "k8sdm-watcher-leader")


@dataclass(frozen=True)
class Session:
    """A daemon's Postgres session as pg_stat_activity shows it."""

    application_name: str
    pid: int
    client: str
    backend_start: datetime | None
    last_activity: datetime | None  # state_change: NULL when the role may not read others' state
    holds_leader_lock: bool


@dataclass(frozen=True)
class Liveness:
    watcher_leader: Session | None
    watcher_sessions: list[Session]
    worker_sessions: list[Session]
    queues: dict[str, dict]  # JetStream consumer name -> state (Publisher.consumer_states)

    @property
    def worker_last_activity(self) -> datetime | None:
        times = [s.last_activity or s.backend_start for s in self.worker_sessions]
        return max((t for t in times if t), default=None)

    @property
    def requests_queue(self) -> dict:
        return self.queues.get(messages.REQUESTS_CONSUMER, {})

    @property
    def sync_queue(self) -> dict:
        return self.queues.get(messages.SYNC_CONSUMER, {})


@dataclass(frozen=True)
class Problem:
    text: str
    url: str = ""  # the filtered list that shows it


@dataclass
class Snapshot:
    now: datetime
    pending_threshold: float
    request_counts: dict[str, int]
    deployment_counts: dict[str, int]
    health_counts: dict[str, int]
    drifting_count: int
    last_mirror_write: datetime | None
    stuck_count: int
    stuck: list[DeploymentRequest]
    failures_count: int
    failures: list[DeploymentRequest]
    degraded: list[Deployment]
    drifting: list[Deployment]
    outbox_backlog: int
    outbox_oldest: datetime | None
    events_backlog: int
    events_oldest: datetime | None
    liveness: Liveness
    problems: list[Problem] = field(default_factory=list)

    def age(self, when: datetime | None) -> str:
        return seconds_text((self.now - when).total_seconds()) if when else "-"


def _request_counts() -> dict[str, int]:
    rows = DeploymentRequest.objects.order_by().values_list("status").annotate(n=Count("id"))
    counts = {status: 0 for status in RequestStatus.values}
    counts.update(dict(rows))
    return counts


def _deployment_counts() -> tuple[dict[str, int], dict[str, int], int, datetime | None]:
    """By status, by health, how many drift, and when the mirror was last written: one query."""
    rows = (
        Deployment.objects.order_by().values_list("status", "health")
        .annotate(n=Count("id"), drifting=Count("id", filter=~Q(drift={})), last=Max("last_synced_at"))
    )
    by_status = {status: 0 for status in DeploymentStatus.values}
    by_health = {health: 0 for health in DeploymentHealth.values}
    drifting, last = 0, None
    for status, health, n, drift_n, last_synced in rows:
        by_status[status] = by_status.get(status, 0) + n
        if status != DeploymentStatus.DELETED:
            by_health[health] = by_health.get(health, 0) + n
            drifting += drift_n
        if last_synced and (last is None or last_synced > last):
            last = last_synced
    return by_status, by_health, drifting, last


def stuck_requests(now: datetime | None = None):
    """Requests still pending (CREATED) after K8SDM_ADMIN_PENDING_ALERT_SECONDS."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.K8SDM_ADMIN_PENDING_ALERT_SECONDS)
    return DeploymentRequest.objects.filter(status=RequestStatus.CREATED, created_at__lt=cutoff)


def recent_failures(now: datetime | None = None):
    cutoff = (now or timezone.now()) - FAILURE_WINDOW
    return DeploymentRequest.objects.filter(status=RequestStatus.FAILURE, finished_at__gte=cutoff)


def live_with_drift():
    return Deployment.objects.exclude(status=DeploymentStatus.DELETED).exclude(drift={})


def _sessions() -> list[Session]:
    """The daemons' Postgres sessions, and which one holds the watcher's leader lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.application_name, a.pid, COALESCE(host(a.client_addr), 'local'), a.backend_start,
                   a.state_change, (l.pid IS NOT NULL)
            FROM pg_stat_activity a
            LEFT JOIN pg_locks l
              ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
             AND l.classid = %s AND l.objid = %s AND l.objsubid = 2
            WHERE a.datname = current_database()
              AND (a.application_name = ANY(%s) OR l.pid IS NOT NULL)
            ORDER BY a.backend_start
            """,
            [*LEADER_LOCK, [WORKER_APP, *WATCHER_APPS]],
        )
        return [Session(*row) for row in cursor.fetchall()]


def _queues() -> dict[str, dict]:
    return publishing.current().publisher.consumer_states([messages.REQUESTS_CONSUMER, messages.SYNC_CONSUMER])


def liveness() -> Liveness:
    sessions = _sessions()
    leader = next((s for s in sessions if s.holds_leader_lock), None)
    return Liveness(
        watcher_leader=leader,
        watcher_sessions=[s for s in sessions if s.application_name in WATCHER_APPS],
        worker_sessions=[s for s in sessions if s.application_name == WORKER_APP],
        queues=_queues(),
    )


def requests_list(query: str) -> str:
    return f"{reverse('admin:requests_app_deploymentrequest_changelist')}?{query}"


def deployments_list(query: str) -> str:
    return f"{reverse('admin:deployments_app_deployment_changelist')}?{query}"


def _problems(snap: Snapshot) -> list[Problem]:
    problems = []
    threshold = seconds_text(snap.pending_threshold)
    if snap.failures_count:
        problems.append(Problem(f"{snap.failures_count} request(s) failed in the last hour",
                                requests_list("attention=failed_1h")))
    if snap.stuck_count:
        problems.append(Problem(f"{snap.stuck_count} request(s) pending for more than {threshold}",
                                requests_list("attention=stuck")))
    if snap.health_counts.get(DeploymentHealth.DEGRADED):
        problems.append(Problem(f"{snap.health_counts[DeploymentHealth.DEGRADED]} deployment(s) DEGRADED",
                                deployments_list("health__exact=DEGRADED")))
    if snap.drifting_count:
        problems.append(Problem(f"{snap.drifting_count} deployment(s) drifted from what was asked",
                                deployments_list("drift=yes")))
    if snap.outbox_oldest and (snap.now - snap.outbox_oldest).total_seconds() > snap.pending_threshold:
        problems.append(Problem(f"{snap.outbox_backlog} request(s) not yet published to JetStream "
                                f"(oldest {snap.age(snap.outbox_oldest)})", requests_list("outbox=pending")))
    if snap.events_oldest and (snap.now - snap.events_oldest).total_seconds() > snap.pending_threshold:
        problems.append(Problem(f"{snap.events_backlog} event(s) not yet published to JetStream (oldest "
                                f"{snap.age(snap.events_oldest)}): SSE streams and webhooks are behind; a "
                                "runworker's outbox relay publishes them once NATS answers"))
    live = snap.liveness
    if live.watcher_leader is None:
        problems.append(Problem("no watcher holds the leader lock: changes made in the cluster are not mirrored"))
    if not live.worker_sessions:
        problems.append(Problem("no worker is connected to Postgres: requests are not applied"))
    errors = {state["error"] for state in live.queues.values() if "error" in state}
    if errors:
        problems.append(Problem("JetStream: " + "; ".join(sorted(errors))))
    return problems


def snapshot(now: datetime | None = None) -> Snapshot:
    now = now or timezone.now()
    by_status, by_health, drifting_count, last_mirror_write = _deployment_counts()
    stuck = stuck_requests(now)
    failures = recent_failures(now)
    outbox = DeploymentRequest.objects.filter(published_at__isnull=True).aggregate(
        n=Count("id"), oldest=Min("created_at"))
    events = EventOutbox.objects.filter(published_at__isnull=True).aggregate(n=Count("id"), oldest=Min("created_at"))
    light = ("observed_spec", "desired_config")
    snap = Snapshot(
        now=now,
        pending_threshold=settings.K8SDM_ADMIN_PENDING_ALERT_SECONDS,
        request_counts=_request_counts(),
        deployment_counts=by_status,
        health_counts=by_health,
        drifting_count=drifting_count,
        last_mirror_write=last_mirror_write,
        stuck_count=stuck.count(),
        stuck=list(stuck.select_related("user").defer("payload", "config").order_by("created_at")[:LIST_LIMIT]),
        failures_count=failures.count(),
        failures=list(failures.select_related("user").defer("payload", "config")
                      .order_by("-finished_at")[:LIST_LIMIT]),
        degraded=list(Deployment.objects.filter(health=DeploymentHealth.DEGRADED)
                      .exclude(status=DeploymentStatus.DELETED).select_related("owner").defer(*light)
                      .order_by("identifier")[:LIST_LIMIT]),
        drifting=list(live_with_drift().select_related("owner").defer(*light).order_by("identifier")[:LIST_LIMIT])
        if drifting_count else [],
        outbox_backlog=outbox["n"],
        outbox_oldest=outbox["oldest"],
        events_backlog=events["n"],
        events_oldest=events["oldest"],
        liveness=liveness(),
    )
    for deployment in snap.degraded:
        deployment.reason = degraded_reason(deployment.conditions)
    for deployment in snap.drifting:
        deployment.drift_summary = drift_text(deployment.drift)
    snap.problems = _problems(snap)
    return snap
