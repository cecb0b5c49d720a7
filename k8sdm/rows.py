"""Plain-SQL inserts and updates of one model row, for the hot paths of the api and the worker.

`Model.objects.create()` and `save(update_fields=...)` build their statement through Django's query
compiler on every call; under the system benchmark that was about a quarter of a worker's CPU per
request and a fifth of the api's (py-spy with --gil, docs/benchmarks.md). These two functions do
what those calls do for the models used here, from a statement built once per model (and field
list):
- `insert(obj)`: every concrete field but the auto primary key, each value through the field's
  own `pre_save` (auto_now/auto_now_add) and `get_db_prep_save` (JSON, dates, foreign keys), and
  `RETURNING` the primary key, which is set on `obj`;
- `insert_many(objs)`: the same for several rows of one model, in one statement;
- `update(obj, fields)`: those fields (plus an auto_now field such as updated_at) of the row with
  `obj`'s primary key; returns the number of rows updated.

`columns(model, alias)` is the column list for a plain SELECT of a model's rows. Statements are
prepared on the server after a few runs (DATABASE_PREPARE_THRESHOLD), and a prepared `SELECT *`
fails ("cached plan must not change result type") once a migration adds a column while the
process runs; naming the columns this code knows keeps those statements valid.

What they leave out, and why it does not matter where they are used: model signals (no
pre_save/post_save receiver exists in this project), `full_clean` (create() does not run it
either), and database defaults or generated fields (no model has one; `_fields` refuses them).
They run on the default connection inside the caller's transaction, and a constraint violation
raises Django's IntegrityError as the ORM's would.
"""

from __future__ import annotations

from functools import lru_cache

from django.db import connection, models


@lru_cache(maxsize=None)
def columns(model: type[models.Model], alias: str = "") -> str:
    """'"alias"."col", ...' for every concrete field of `model` (for SELECT lists of raw queries)."""
    quote = connection.ops.quote_name
    prefix = f"{quote(alias)}." if alias else ""
    return ", ".join(f"{prefix}{quote(f.column)}" for f in model._meta.concrete_fields)


@lru_cache(maxsize=None)
def _insert_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    meta = model._meta
    fields = tuple(f for f in meta.local_concrete_fields if f is not meta.auto_field)
    for field in fields:
        if field.generated or field.has_db_default():
            raise TypeError(f"{model.__name__}.{field.name}: k8sdm.rows does not handle database defaults")
    return fields


@lru_cache(maxsize=256)
def _insert_sql(model: type[models.Model], count: int) -> str:
    """INSERT of `count` rows of `model`, returning their primary keys."""
    fields, quote = _insert_fields(model), connection.ops.quote_name
    one = f"({', '.join(['%s'] * len(fields))})"
    return (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES {', '.join([one] * count)} RETURNING {quote(model._meta.pk.column)}")


@lru_cache(maxsize=None)
def _update_plan(model: type[models.Model], names: tuple[str, ...]) -> tuple[str, tuple[models.Field, ...]]:
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    fields += [f for f in meta.local_concrete_fields if getattr(f, "auto_now", False) and f not in fields]
    quote = connection.ops.quote_name
    sql = (f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "
           f"WHERE {quote(meta.pk.column)} = %s")
    return sql, tuple(fields)


def insert(obj: models.Model) -> models.Model:
    """INSERT `obj` (whose primary key is unset); returns it with its primary key."""
    return insert_many([obj])[0]


def insert_many(objs: list[models.Model]) -> list[models.Model]:
    """INSERT `objs` (all of one model, primary keys unset) in one statement; each gets its primary
    key (PostgreSQL returns the rows of a multi-row VALUES in order, which bulk_create relies on too)."""
    if not objs:
        return objs
    model = type(objs[0])
    values = [field.get_db_prep_save(field.pre_save(obj, True), connection)
              for obj in objs for field in _insert_fields(model)]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, len(objs)), values)
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = connection.alias
    return objs


def update(obj: models.Model, fields) -> int:
    """UPDATE `fields` (names) of `obj`'s row from `obj`; an auto_now field is stamped too."""
    sql, plan = _update_plan(type(obj), tuple(fields))
    values = [field.get_db_prep_save(field.pre_save(obj, False), connection) for field in plan]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, obj.pk])
        return cursor.rowcount
