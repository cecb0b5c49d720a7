"""pytest fixtures for the Kubernetes API emulator.

Load with ``pytest_plugins = ["kube_emulator.pytest_plugin"]`` in a top-level conftest,
or ``from kube_emulator.pytest_plugin import *  # noqa`` in a sub-directory conftest.

Fixtures
--------
k8s_emulator_session (session)  EmulatorServer started once per session (fast controller:
                                step_delay 0.02 s, failure_deadline 1.0 s, bookmarks every
                                0.5 s). Its state persists across tests.
k8s_emulator         (function) the same server, reset before the test (only the default
                                namespaces, no faults, controller resumed with the session
                                settings, watches dropped); faults are cleared again after.
k8s_api_client       (function) a kubernetes.client.ApiClient pointed at k8s_emulator,
                                closed after the test.
k8s_kubeconfig       (function) path (str) of a kubeconfig for k8s_emulator, in tmp_path,
                                usable by kubectl and kubernetes.config.load_kube_config.

Environment overrides: KUBE_EMULATOR_STEP_DELAY, KUBE_EMULATOR_FAILURE_DEADLINE,
KUBE_EMULATOR_LOG_REQUESTS=1.
"""
from __future__ import annotations

import os

import pytest

from .server import EmulatorServer

__all__ = ["k8s_emulator_session", "k8s_emulator", "k8s_api_client", "k8s_kubeconfig"]


@pytest.fixture(scope="session")
def k8s_emulator_session():
    srv = EmulatorServer(
        step_delay=float(os.environ.get("KUBE_EMULATOR_STEP_DELAY", "0.02")),
        failure_deadline=float(os.environ.get("KUBE_EMULATOR_FAILURE_DEADLINE", "1.0")),
        bookmark_interval=0.5,
        log_requests=os.environ.get("KUBE_EMULATOR_LOG_REQUESTS") == "1",
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def k8s_emulator(k8s_emulator_session):
    srv = k8s_emulator_session
    srv.reset()
    srv.set_bookmark_interval(0.5)
    try:
        yield srv
    finally:
        srv.clear_faults()


@pytest.fixture
def k8s_api_client(k8s_emulator):
    client = k8s_emulator.api_client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def k8s_kubeconfig(k8s_emulator, tmp_path):
    return k8s_emulator.write_kubeconfig(str(tmp_path / "kubeconfig"))
