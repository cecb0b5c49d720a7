import pytest

from tests.watcher.conftest import apps_api, cluster, emulator_server, stack  # noqa: F401 - shared fixtures
