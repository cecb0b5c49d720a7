"""A Postgres trigger that makes one kind of write fail: how the worker tests simulate a crash
between two writes of one unit of work, with the real database and no patched ORM."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection


@contextmanager
def failing_trigger(name: str, *, table: str, timing: str, message: str, when: str = ""):
    """While inside, `timing` (e.g. "BEFORE INSERT") on `table` raises `message`, for the rows
    matching `when` (SQL on OLD/NEW; every row when empty). A test may DROP TRIGGER `name` itself
    to let the retry through; both are dropped on the way out either way."""
    condition = f"WHEN ({when}) " if when else ""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            CREATE FUNCTION {name}() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql""")
        cursor.execute(f"CREATE TRIGGER {name} {timing} ON {table} FOR EACH ROW {condition}EXECUTE FUNCTION {name}()")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")
