"""PostgreSQL unavailable: 503 dependency_unavailable with Retry-After, one log line per outage.

The in-process tests point Django's connection at a closed port (what a stopped server looks like
to a client); the end-to-end test stops and restarts the test session's real PostgreSQL under a
gunicorn serving the API.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from django.db import connection

from devstack import pytest_plugin
from devstack._proc import free_port
from devstack.postgres import PostgresServer
from k8sdm.api.outages import NATS, POSTGRES, RETRY_AFTER_SECONDS
from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, config
from tests.api.servers import call_full, gunicorn  # noqa: F401 (a fixture)
from tests.api.test_errors import assert_error_shape
from tests.stack import wait_until

STARTED = "PostgreSQL unavailable"
ENDED = "PostgreSQL available again after an outage of"


@pytest.fixture
def postgres_down(transactional_db):
    """Django's connection aimed at a closed port until the context ends (then the real one back)."""
    real = connection.settings_dict["PORT"]

    class Down:
        def __enter__(self):
            connection.close()
            connection.settings_dict["PORT"] = str(free_port())

        def __exit__(self, *exc):
            connection.close()
            connection.settings_dict["PORT"] = real

    yield Down()
    connection.close()
    connection.settings_dict["PORT"] = real
    POSTGRES.recovered()


def outage_lines(records) -> tuple[list, list]:
    started = [r for r in records if r.getMessage().startswith(STARTED)]
    ended = [r for r in records if r.getMessage().startswith(ENDED)]
    return started, ended


@pytest.mark.parametrize("method,path", [
    ("get", "/api/v1/requests/"), ("get", "/api/v1/deployments/web"), ("post", CREATE_URL),
    ("patch", "/api/v1/deployments/requests/web"), ("delete", "/api/v1/deployments/requests/web"),
])
def test_every_endpoint_answers_503_with_retry_after_while_postgres_is_down(client_for, postgres_down, method, path):
    alice = client_for("alice")
    with postgres_down:
        response = getattr(alice, method)(path, config(), format="json")
    error = assert_error_shape(response, 503, "dependency_unavailable")
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "retry" in error["message"].lower()


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(client_for, postgres_down, caplog):
    caplog.set_level(logging.INFO)
    alice = client_for("alice")
    with postgres_down:
        for _ in range(5):
            assert alice.get("/api/v1/requests/").status_code == 503
        assert alice.post(CREATE_URL, config(), format="json").status_code == 503
    response = alice.post(CREATE_URL, config(request_id="after"), format="json")
    assert response.status_code == 202, response.json()
    started, ended = outage_lines(caplog.records)
    assert len(started) == 1 and len(ended) == 1
    assert "6 request(s) answered 503" in ended[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert list(DeploymentRequest.objects.values_list("request_id", flat=True)) == ["after"]


def test_other_database_errors_stay_500s_with_their_traceback(client_for, transactional_db, caplog):
    # A bug (here: a statement PostgreSQL refuses) is not an outage: it must stay loud.
    from django.db import connection as conn

    with conn.cursor() as cursor:
        cursor.execute("ALTER TABLE users_app_user ADD CONSTRAINT no_new_users CHECK (id < 0) NOT VALID")
    try:
        response = client_for("newcomer").post(CREATE_URL, config(), format="json")
    finally:
        with conn.cursor() as cursor:
            cursor.execute("ALTER TABLE users_app_user DROP CONSTRAINT no_new_users")
    assert_error_shape(response, 500, "internal_error")
    assert [r for r in caplog.records if r.exc_info]
    assert not outage_lines(caplog.records)[0]


@pytest.fixture
def nats_outage_reset():
    yield
    NATS.recovered()


@pytest.mark.django_db(transaction=True)
def test_with_nats_down_writes_are_202_and_the_outage_is_logged_once_each_way(
    alice, unreachable_nats, nats_outage_reset, caplog
):
    caplog.set_level(logging.DEBUG)
    for n in range(4):
        assert alice.post(CREATE_URL, config(f"offline{n}"), format="json").status_code == 202
    wait_until(lambda: len([r for r in caplog.records if "deferred to the outbox relay" in r.getMessage()]) == 4,
               message="the four publishes to fail")
    started = [r for r in caplog.records if r.getMessage().startswith("NATS unavailable")]
    assert len(started) == 1 and started[0].levelno == logging.WARNING
    per_request = [r for r in caplog.records if "deferred" in r.getMessage()]
    assert {r.levelno for r in per_request} == {logging.DEBUG}
    assert DeploymentRequest.objects.filter(published_at__isnull=True).count() == 4


@pytest.mark.django_db(transaction=True)
def test_the_nats_outage_ends_with_the_first_publish_that_succeeds(alice, nats_outage_reset, caplog):
    caplog.set_level(logging.INFO)
    NATS.refused("nats: no servers available for connection")
    assert alice.post(CREATE_URL, config("online"), format="json").status_code == 202
    wait_until(lambda: [r for r in caplog.records if r.getMessage().startswith("NATS available again")],
               message="the outage's end to be logged")
    assert not NATS.ongoing


def session_postgres() -> PostgresServer | None:
    return next((s for s in pytest_plugin._started if isinstance(s, PostgresServer)), None)


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_through_gunicorn_a_postgres_restart_is_503_then_202_with_one_log_line_each_way(gunicorn, tmp_path):
    pg = session_postgres()
    if pg is None:
        pytest.skip("DATABASE_URL points at a server this session did not start: cannot stop it")
    port = gunicorn()
    alice = [("X-User-Id", "alice")]
    status, _, body = call_full(port, "POST", CREATE_URL, alice, config("before"))
    assert status == 202, body

    connection.close()
    pg.stop()
    try:
        for n in range(4):
            status, headers, body = call_full(port, "POST", CREATE_URL, alice, config(f"during{n}"))
            assert status == 503, body
            assert body["error"]["code"] == "dependency_unavailable"
            assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        status, headers, body = call_full(port, "GET", "/api/v1/requests/", alice)
        assert status == 503 and headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    finally:
        pg.start()

    # What a client does with Retry-After: the same write again, until the answer is not 503.
    retry = config("after", request_id=uuid.uuid4().hex)
    status, _, body = wait_until(
        lambda: (answer := call_full(port, "POST", CREATE_URL, alice, retry))[0] != 503 and answer,
        timeout=60, message="the API to answer something other than 503 after the restart",
    )
    assert status == 202, body
    assert sorted(DeploymentRequest.objects.values_list("identifier", flat=True)) == ["after", "before"]

    log = (tmp_path / f"gunicorn-{port}.log").read_text()
    assert log.count(STARTED) == 1, log
    assert log.count(ENDED) == 1, log
    assert "Traceback" not in log and " ERROR " not in log, log
