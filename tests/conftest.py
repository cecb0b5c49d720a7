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
