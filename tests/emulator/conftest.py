"""Fixtures for the emulator's own tests (also works if the plugin is registered at the
top level: re-importing fixture functions here just redefines them for this directory)."""
import pytest
from kubernetes import client

from kube_emulator.pytest_plugin import *  # noqa: F401,F403


@pytest.fixture
def apps(k8s_api_client):
    return client.AppsV1Api(k8s_api_client)


@pytest.fixture
def core(k8s_api_client):
    return client.CoreV1Api(k8s_api_client)
