"""The per-user policy and quotas, checked before a CREATE or UPDATE is stored.

`quota_check(user=..., config=..., replacing=...)` is called by the request services inside the
transaction that stores the request. It first locks the user's row (SELECT ... FOR UPDATE), so
two writes of one user are checked one after the other: two parallel CREATEs cannot both take the
last free slot. It then applies the user's policy to the config alone (users_app.policy), and the
totals: usage is what the user's live deployments (every status but DELETED) ask for in their
desired config; `replacing` (an UPDATE's deployment) is left out of the usage, since the new config
replaces it. It lives here, above deployments_app, because counting usage reads deployments.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Sum

from deployments_app.models import Deployment, DeploymentStatus
from k8sdm import rows
from users_app.models import User, UserPolicy
from users_app.policy import check_limit, container_ask, policy_check


TOTAL_LIMITS = ("max_deployments", "max_replicas_total", "max_cpu_total", "max_memory_total")

# The user's row locked, and their policy row if they have one (all NULL, pk included, if not).
_LOCK_AND_POLICY = (
    f"SELECT {rows.columns(UserPolicy, 'p')} FROM {User._meta.db_table} u "
    f"LEFT JOIN {UserPolicy._meta.db_table} p ON p.user_id = u.id "
    f"WHERE u.id = %s FOR UPDATE OF u"
)


def user_usage(user: User, *, replacing: Deployment | None = None) -> dict:
    """What `user`'s live deployments ask for: deployments, replicas, and CPU and memory x replicas;
    one aggregate over the ask_* columns each row keeps with its desired config."""
    live = Deployment.objects.filter(owner=user).exclude(status=DeploymentStatus.DELETED)
    if replacing is not None:
        live = live.exclude(pk=replacing.pk)
    totals = live.aggregate(deployments=Count("pk"), replicas=Sum("ask_replicas"), cpu=Sum("ask_cpu"),
                            memory=Sum("ask_memory"))
    return {"deployments": totals["deployments"], "replicas": totals["replicas"] or 0,
            "cpu": totals["cpu"] or Decimal(0), "memory": totals["memory"] or Decimal(0)}


def quota_check(*, user: User, config: dict, replacing: Deployment | None = None) -> None:
    """Refuse `config` (a complete, validated deployment config) if `user` may not run it.

    Must run inside the transaction that stores the request: it locks the user's row until commit."""
    # The lock and the policy in one statement (the policy row joined, only the user's row locked).
    # Plain SQL: it runs on every CREATE and UPDATE, and the ORM's query cost more CPU to build
    # than its round trip.
    row = next(iter(UserPolicy.objects.raw(_LOCK_AND_POLICY, [user.pk])), None)
    if row is None:
        raise User.DoesNotExist(f"user {user.pk} is gone")
    limits = policy_check(user=user, config=config, row=row if row.pk is not None else None).limits
    if not any(limits[name] for name in TOTAL_LIMITS):
        return  # no total to check: the user's deployments need not be read
    replicas = int(config.get("replicas", 1) or 0)
    ask = container_ask(config)
    usage = user_usage(user, replacing=replacing)
    if replacing is None:
        check_limit("max_deployments", limits["max_deployments"], usage["deployments"], 1, "identifier", "deployments")
    check_limit("max_replicas_total", limits["max_replicas_total"], usage["replicas"], replicas, "replicas", "replicas")
    check_limit("max_cpu_total", limits["max_cpu_total"], usage["cpu"], ask["cpu"] * replicas,
                "resources.limits.cpu", "cpu")
    check_limit("max_memory_total", limits["max_memory_total"], usage["memory"], ask["memory"] * replicas,
                "resources.limits.memory", "memory")
