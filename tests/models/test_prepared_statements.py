"""Statements are prepared on the server after DATABASE_PREPARE_THRESHOLD runs on a connection.
A prepared `SELECT *` fails ("cached plan must not change result type") once a migration adds a
column while the process runs; the hot paths' plain SQL names its columns (k8sdm.rows.columns),
so a running api or worker keeps working through such a migration."""

import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction

from deployments_app.models import Deployment
from deployments_app.sync import deployment_sync
from tests.factories import DeploymentFactory, UserFactory
from users_app.models import User
from users_app.selectors import user_get_by_external_id

pytestmark = pytest.mark.django_db(transaction=True)


class _ColumnAddedElsewhere:
    """A migration run by another process: ALTER TABLE on a connection of its own (psycopg forgets
    its prepared statements when it sees an ALTER on its own connection, never another's)."""

    def __init__(self, table: str):
        self.table = table

    def _run(self, sql: str) -> None:
        other = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with other.cursor() as cursor:
                cursor.execute(sql)
        finally:
            other.close()

    def __enter__(self):
        self._run(f"ALTER TABLE {self.table} ADD COLUMN k8sdm_test_extra integer")

    def __exit__(self, *exc):
        self._run(f"ALTER TABLE {self.table} DROP COLUMN IF EXISTS k8sdm_test_extra")


def test_the_settings_prepare_statements():
    assert connection.settings_dict["OPTIONS"]["server_side_binding"] is True
    connection.ensure_connection()
    assert connection.connection.prepare_threshold == 5


def test_a_prepared_select_star_breaks_when_a_column_is_added_which_is_why_the_hot_paths_name_theirs():
    UserFactory(user_external_id="alice")
    star = f"SELECT * FROM {User._meta.db_table} WHERE user_external_id = %s"
    with connection.cursor() as cursor:
        for _ in range(7):  # past the threshold: prepared
            cursor.execute(star, ["alice"])
    with _ColumnAddedElsewhere(User._meta.db_table):
        with pytest.raises(DatabaseError, match="cached plan must not change result type"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(star, ["alice"])


def test_the_hot_paths_keep_working_when_a_migration_adds_a_column_while_they_run():
    owner = UserFactory(user_external_id="bob")
    DeploymentFactory(identifier="web", namespace="default", owner=owner)
    for _ in range(7):
        assert user_get_by_external_id(external_id="bob").pk == owner.pk
        assert deployment_sync(namespace="default", name="web", live=None).row.identifier == "web"
    with _ColumnAddedElsewhere(User._meta.db_table), _ColumnAddedElsewhere(Deployment._meta.db_table):
        assert user_get_by_external_id(external_id="bob").pk == owner.pk
        assert deployment_sync(namespace="default", name="web", live=None).row.identifier == "web"
