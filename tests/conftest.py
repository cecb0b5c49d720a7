"""Shared fixtures. PostgreSQL and NATS are real servers started by devstack.pytest_plugin;
Kubernetes is the project's emulator over HTTP."""

import pytest

from deployments_app import k8s
from kube_emulator import EmulatorServer
from tests import factories
from tests.stack import make_stack, own_publisher


@pytest.fixture(scope="session")
def emulator_server():
    server = EmulatorServer(step_delay=0.02, failure_deadline=0.5).start()
    yield server
    server.stop()


@pytest.fixture
def cluster(emulator_server, tmp_path, settings):
    """The emulator, emptied, with K8SDM_KUBECONFIG pointing at it."""
    emulator_server.reset()
    kubeconfig = str(emulator_server.write_kubeconfig(tmp_path / "kubeconfig"))
    settings.K8SDM_KUBECONFIG = kubeconfig
    k8s.reset_api_client()
    emulator_server.kubeconfig = kubeconfig
    yield emulator_server
    emulator_server.clear_faults()
    k8s.reset_api_client()


@pytest.fixture
def apps_api(cluster):
    from kubernetes import client

    return client.AppsV1Api(cluster.api_client())


@pytest.fixture
def stack(transactional_db, cluster, settings, tmp_path, request):
    """Real worker/watcher processes on a stream of this test's own; their logs are printed on failure."""
    st = make_stack(settings, tmp_path, cluster.kubeconfig)
    with own_publisher():
        yield st
    st.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(st.logs())


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
