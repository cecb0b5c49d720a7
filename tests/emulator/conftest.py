"""Fixtures for the emulator's own tests (also works if the plugin is registered at the
top level: re-importing fixture functions here just redefines them for this directory)."""
from kube_emulator.pytest_plugin import *  # noqa: F401,F403
