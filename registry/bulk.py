"""Bulk writes without model instances: ids reserved up front, rows COPYed in.

For a batch of thousands of rows, building a Django model instance per row and
letting `bulk_create` quote a parameterised INSERT costs several times more than
the rows' own work (validation, signing). `allocate_ids` reserves the primary keys
first (so related rows can be written in the same batch without reading anything
back) and `insert_rows` writes plain value tuples: a `COPY` on PostgreSQL, a
`bulk_create` elsewhere.
"""

import json
from collections.abc import Iterable, Sequence

import orjson
from django.db import connection
from django.utils import timezone

__all__ = ["allocate_ids", "insert_rows"]


def allocate_ids(model, n: int) -> list[int]:
    """Reserve `n` primary keys of `model`'s table, in increasing order.

    On PostgreSQL they come from the table's sequence, so concurrent writers never
    collide. On SQLite the caller must hold the write lock (the project's SQLite
    transactions are IMMEDIATE), so no one else takes ids before it commits; the
    range starts after the AUTOINCREMENT high-water mark, so a deleted id is never
    reused.
    """
    if n <= 0:
        return []
    table = model._meta.db_table
    pk_column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk_column, n]
            )
            return sorted(r[0] for r in cursor.fetchall())
        quoted, column = connection.ops.quote_name(table), connection.ops.quote_name(pk_column)
        cursor.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {quoted}")  # noqa: S608 - names from the model
        top = cursor.fetchone()[0]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        seq = cursor.fetchone()
        start = max(top, seq[0] if seq else 0) + 1
        return list(range(start, start + n))


def _filler(field, now):
    """Return a function giving an unlisted field's value for one row (its default)."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda: now
    if field.has_default() and callable(field.default):
        return field.get_default  # a callable default (uuid4, a random code): one per row
    value = field.get_default()  # a constant default, or the field's empty value
    return lambda: value


def insert_rows(model, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """INSERT `rows` (tuples of values for `columns`, attnames) into `model`'s table.

    Every other concrete field gets its default (per row for a callable default,
    `now` for auto_now fields); the primary key, when not listed, its sequence.
    Values are Python values as the model holds them (JSON fields as dicts and
    lists). No signals, no `save()`: for rows whose every value the caller knows.
    Return the number of rows written.
    """
    meta = model._meta
    listed = [meta.get_field(name) for name in columns]
    listed_names = {f.attname for f in listed}
    now = timezone.now()
    others = [f for f in meta.concrete_fields if f.attname not in listed_names and not f.primary_key]
    fillers = [_filler(f, now) for f in others]
    if connection.vendor != "postgresql":
        names = [f.attname for f in listed] + [f.attname for f in others]
        objects = [model(**dict(zip(names, (*row, *(fill() for fill in fillers)), strict=True))) for row in rows]
        model.objects.bulk_create(objects, batch_size=500)
        return len(objects)

    fields = listed + others
    # JSON goes in as text; orjson unless the field has an encoder of its own.
    json_at = [i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
    encoders = {i: fields[i].encoder for i in json_at}
    column_list = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(meta.db_table)
    count = 0
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
    ):
        write_row = copy.write_row
        for row in rows:
            values = [*row, *(fill() for fill in fillers)] if fillers or json_at else row
            for i in json_at:
                value = values[i]
                if value is not None:
                    values[i] = _json_text(value, encoders[i])
            write_row(values)
            count += 1
    return count


def _json_text(value, encoder) -> str:
    if encoder is None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # what orjson refuses (non-string keys, huge integers) json may take
            pass

    return json.dumps(value, cls=encoder, ensure_ascii=False)
