"""Shared fixtures. PostgreSQL and NATS are real servers started by devstack.pytest_plugin."""

import pytest

from tests import factories


@pytest.fixture
def user(db):
    return factories.UserFactory()


@pytest.fixture
def other_user(db):
    return factories.UserFactory()


@pytest.fixture
def deployment(user):
    return factories.DeploymentFactory(owner=user)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether the test failed (to print the logs of the processes it ran).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def _close_stray_db_sessions(django_db_setup, django_db_blocker):
    """Threads of live_server and of the tests keep connections open; end them so the test
    database can be dropped cleanly at the end of the session."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
