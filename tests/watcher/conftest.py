import pytest

from deployments_app import k8s
from k8sdm import jetstream
from kube_emulator import EmulatorServer
from tests.stack import make_stack


def fresh_publisher():
    """Drop the process's NATS publisher so the next publish uses this test's settings."""
    if jetstream._publisher is not None:
        jetstream._publisher.close()
    jetstream._publisher = None


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
    """Real worker processes on a stream of this test's own; their logs are printed on failure."""
    st = make_stack(settings, tmp_path, cluster.kubeconfig, K8SDM_WATCH_TIMEOUT_SECONDS=5)
    fresh_publisher()
    yield st
    fresh_publisher()
    st.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(st.logs())
