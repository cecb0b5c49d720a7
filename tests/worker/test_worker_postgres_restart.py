"""The worker heals by itself when PostgreSQL restarts under it."""

import pytest
from django.db import connection

from devstack import pytest_plugin
from devstack.postgres import PostgresServer
from requests_app.models import DeploymentRequest, RequestStatus
from requests_app.outbox import message_for
from requests_app.publishing import publish_now
from tests.factories import DeploymentRequestFactory
from tests.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def session_postgres() -> PostgresServer | None:
    return next((s for s in pytest_plugin._started if isinstance(s, PostgresServer)), None)


def test_the_worker_carries_on_after_postgres_restarts(stack, cluster):
    pg = session_postgres()
    if pg is None:
        pytest.skip("DATABASE_URL points at a server this session did not start: cannot restart it")
    worker = stack.worker()
    before = DeploymentRequestFactory()
    publish_now(message_for(before))
    wait_until(lambda: DeploymentRequest.objects.get(pk=before.pk).status == RequestStatus.SUCCESS,
               message="the first request")
    connection.close()
    pg.stop()
    pg.start()
    after = DeploymentRequestFactory()
    publish_now(message_for(after))
    wait_until(lambda: DeploymentRequest.objects.get(pk=after.pk).status == RequestStatus.SUCCESS, timeout=30,
               message="the request after the restart")
    assert worker.proc.poll() is None
