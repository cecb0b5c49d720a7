"""db_hygiene(every=...): a worker thread checks its connection at most once per interval, and at
once after a database error (the Postgres restart tests show the worker heals through it)."""

import pytest
from django.db import connection

from k8sdm import runtime
from k8sdm.runtime import db_hygiene


@pytest.mark.django_db(transaction=True)
def test_the_check_runs_once_per_interval_and_at_once_after_an_error():
    runtime._hygiene.__dict__.clear()  # no earlier call on this thread
    connection.ensure_connection()
    db_hygiene(every=3600)  # the first call of the thread in a long interval: checks
    assert connection.health_check_done is False  # the next query runs CONN_HEALTH_CHECKS' SELECT 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.health_check_done is True

    db_hygiene(every=3600)  # inside the interval: nothing
    assert connection.health_check_done is True

    connection.errors_occurred = True  # as Django marks it after a failed statement
    db_hygiene(every=3600)
    assert connection.errors_occurred is False  # checked (and found usable) at once
    assert connection.health_check_done is True  # is_usable() ran just now

    db_hygiene()  # without `every`: always
    assert connection.health_check_done is False
