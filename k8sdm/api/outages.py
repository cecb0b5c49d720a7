"""Dependency outages as the API answers and logs them: PostgreSQL and NATS.

A database that is down, restarting or refusing connections is not a bug in a request: the API
answers 503 `dependency_unavailable` with Retry-After (errors.exception_handler and ApiMiddleware
call `postgres_unavailable` and `POSTGRES.refused`), and logs ONE warning when the outage starts and
one line when it ends, with its duration and how many requests it refused; no traceback per request
(k8sdm/outages.py). The outage ends at the first new database connection that succeeds (Django's
`connection_created` signal: after a failed request Django drops the broken connection, so the next
one reconnects).

State is per process: with N gunicorn workers an outage is logged once by each worker that saw it.

NATS being down does not change the API's answers: a request is committed with its outbox entry and
answered 202, and the relay publishes it when NATS is back. The NATS outage (`NATS`, kept by
requests_app/publishing.py) is logged the same way: once when a publish first fails, once when one
succeeds again.
"""

from __future__ import annotations

from django.db.backends.signals import connection_created

from k8sdm.outages import Outage, postgres_unavailable
from requests_app.publishing import NATS

__all__ = ["NATS", "POSTGRES", "RETRY_AFTER_SECONDS", "Outage", "postgres_unavailable"]

# Long enough for a PostgreSQL restart, short enough that clients come back soon after it.
RETRY_AFTER_SECONDS = 2

POSTGRES = Outage(
    "PostgreSQL", meanwhile="answering 503 dependency_unavailable", refusals="request(s) answered 503"
)


def _postgres_connected(sender, connection, **kwargs) -> None:
    POSTGRES.recovered()


connection_created.connect(_postgres_connected, dispatch_uid="k8sdm.api.outages.postgres_connected")
