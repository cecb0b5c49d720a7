"""Liveness (/healthz: the process answers) and readiness (/readyz: Postgres and NATS answer)."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from k8sdm.api.errors import error_body

logger = logging.getLogger(__name__)


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _postgres() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return ""
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is reported
        return f"{type(exc).__name__}: {exc}".strip()


def _nats() -> str:
    from requests_app.publishing import current

    return current().ping()


@require_GET
def readyz(request):
    """200 {"status": "ready", "checks": {...}} or 503 in the error shape naming what failed."""
    failures = {name: reason for name, reason in (("postgres", _postgres()), ("nats", _nats())) if reason}
    checks = {name: failures.get(name, "ok") for name in ("postgres", "nats")}
    if not failures:
        return JsonResponse({"status": "ready", "checks": checks})
    logger.warning("not ready: %s", failures)
    body = error_body(
        "not_ready", f"Not ready: {', '.join(sorted(failures))} unreachable.",
        {name: [reason] for name, reason in failures.items()},
    )
    body["checks"] = checks
    return JsonResponse(body, status=503)
