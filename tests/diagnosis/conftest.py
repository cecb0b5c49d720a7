"""A deployment of alice's running (or failing) in the emulator, and API clients per caller."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from deployments_app import diagnosis, k8s
from deployments_app.operations import deployment_reconcile
from deployments_app.sync import deployment_sync
from deployments_app.config import DeploymentConfig
from tests import factories

ALICE, BOB = "alice@example.com", "bob@example.com"


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()
    diagnosis.clear_cache()
    yield
    diagnosis.clear_cache()


def client(user_id: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_X_USER_ID=user_id)
    return api


@pytest.fixture
def alice(db):
    factories.UserFactory(user_external_id=ALICE)
    return client(ALICE)


@pytest.fixture
def bob(db):
    factories.UserFactory(user_external_id=BOB)
    return client(BOB)


@pytest.fixture
def run(cluster, apps_api, alice):
    """run("web", image="nginx:fail", replicas=3, until=pred) creates alice's deployment row and
    its Kubernetes Deployment, then waits (on the diagnosis itself, the row synced before each
    look) until `until(diagnosis)`."""
    from users_app.models import User

    def make(identifier: str, *, owner: str = ALICE, until=None, timeout: float = 30.0, **config):
        cfg = DeploymentConfig.from_input({"identifier": identifier, "image": "nginx:1.27", **config})
        user = User.objects.get(user_external_id=owner)
        deployment = factories.DeploymentFactory(owner=user, identifier=identifier, desired_config=cfg.to_dict())
        apps_api.create_namespaced_deployment("default", cfg.to_manifest(owner=owner, request_pk=1))
        # What the worker does after a CREATE: the row takes the object's uid and status (the
        # diagnosis reads the Deployment itself only from its row).
        deployment_sync(namespace="default", name=identifier, live=k8s.get_deployment("default", identifier),
                        created=True)
        deployment.refresh_from_db()
        if until is not None:
            deadline = time.monotonic() + timeout
            while True:
                diagnosis.clear_cache()
                deployment_reconcile(namespace="default", name=identifier)  # the watcher's sync, in line
                deployment.refresh_from_db()
                result = diagnosis.diagnose(deployment)
                if until(result):
                    break
                assert time.monotonic() < deadline, f"never reached the state; last: {result}"
                time.sleep(0.05)  # polling interval while waiting on the state itself
        diagnosis.clear_cache()
        return deployment

    return make
