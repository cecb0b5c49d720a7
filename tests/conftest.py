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
