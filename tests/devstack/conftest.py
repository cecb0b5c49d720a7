from __future__ import annotations

import pytest

from tests.devstack.helpers import data_directory


@pytest.fixture
def data_dir():
    """make run's data directory, not created yet."""
    with data_directory() as path:
        yield path
