"""Bulk writes without model instances: ids reserved up front, rows COPYed in.

For a batch of thousands of rows, building a Django model instance per row and
letting `bulk_create` quote a parameterised INSERT costs several times more than
the rows' own work (validation, signing). `allocate_ids` reserves the primary keys
first (so related rows can be written in the same batch without reading anything
back) and `insert_rows` writes plain value tuples: a `COPY` on PostgreSQL, a
`bulk_create` elsewhere.
"""

import itertools
import json
import logging
import os
import uuid
from collections.abc import Iterable, Sequence

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, IntegrityError, connection
from django.db.models import Field, Lookup
from django.utils import timezone

__all__ = [
    "AnyOf",
    "InsertedReferences",
    "PlannerStatistics",
    "allocate_ids",
    "array_literal",
    "array_param",
    "insert_rows",
    "replica_role",
    "replica_role_allowed",
    "set_based_keys",
]

logger = logging.getLogger(__name__)


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
            # The sequence's name is resolved once, not per value (a catalogue look-up
            # each: it took four fifths of the statement's time).
            cursor.execute(
                "SELECT nextval((SELECT pg_get_serial_sequence(%s, %s)::regclass)) FROM generate_series(1, %s)",
                [table, pk_column, n],
            )
            return sorted(r[0] for r in cursor.fetchall())
        quoted, column = connection.ops.quote_name(table), connection.ops.quote_name(pk_column)
        cursor.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {quoted}")  # noqa: S608 - names from the model
        top = cursor.fetchone()[0]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        seq = cursor.fetchone()
        start = max(top, seq[0] if seq else 0) + 1
        return list(range(start, start + n))


def array_literal(values: Iterable) -> str | None:
    """`values` as one PostgreSQL array literal (`'{1,2,3}'`), or None unless all are ints or all strs.

    For large array parameters (`= ANY(%s::bigint[])`): Django's psycopg cursors bind
    on the client, where a list goes through psycopg's Python list dumper element by
    element (about a microsecond each), while a string is quoted once in C. Cast the
    placeholder to the array type the values need (bigint[] or text[]).
    """
    values = values if isinstance(values, list | tuple) else list(values)
    types = set(map(type, values))
    if types <= {int}:
        return "{" + ",".join(map(str, values)) + "}"
    if types == {str}:
        return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"
    return None


def array_param(values: Iterable) -> tuple[str, object]:
    """(placeholder, parameter) for an array of `values`, e.g. `f"col = ANY({placeholder})"`.

    An array literal cast to bigint[] or text[] when the values allow (see
    `array_literal`), else the list itself for psycopg to adapt.
    """
    values = values if isinstance(values, list | tuple) else list(values)
    literal = array_literal(values)
    if literal is None:
        return "%s", list(values)
    return ("%s::text[]" if values and isinstance(values[0], str) else "%s::bigint[]"), literal


class _Uuid4s:
    """uuid.uuid4() for many rows: the random bytes of 256 keys drawn in one system call."""

    def __init__(self):
        self._ready = iter(())

    def __call__(self) -> uuid.UUID:
        key = next(self._ready, None)
        if key is None:
            raw = os.urandom(16 * 256)
            self._ready = (uuid.UUID(bytes=raw[i : i + 16], version=4) for i in range(0, len(raw), 16))
            key = next(self._ready)
        return key


def _per_row(field) -> bool:
    """Tell whether an unlisted field's default must be computed per row (uuid4, a random code)."""
    return field.has_default() and callable(field.default)


def _constant(field, now):
    """An unlisted field's value for every row: `now` for auto_now fields, else its default."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()  # a constant default, or the field's empty value


def insert_rows(model, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """INSERT `rows` (tuples of values for `columns`, attnames) into `model`'s table.

    `rows` may be a generator: on PostgreSQL each row is sent as soon as it is
    produced. Every other concrete field gets its default (per row for a callable
    default, `now` for auto_now fields); the primary key, when not listed, its
    sequence. Values are Python values as the model holds them (JSON fields as
    dicts and lists). No signals, no `save()`: for rows whose every value the
    caller knows. Return the number of rows written.
    """
    meta = model._meta
    listed = [meta.get_field(name) for name in columns]
    listed_names = {f.attname for f in listed}
    now = timezone.now()
    others = [f for f in meta.concrete_fields if f.attname not in listed_names and not f.primary_key]
    per_row = [f for f in others if _per_row(f) and not getattr(f, "auto_now", False)]
    constant = [f for f in others if f not in per_row]
    defaults = [_Uuid4s() if f.default is uuid.uuid4 else f.get_default for f in per_row]
    constants = [_constant(f, now) for f in constant]
    fields = listed + per_row + constant
    if connection.vendor != "postgresql":
        names = [f.attname for f in fields]
        objects = [
            model(**dict(zip(names, (*row, *(default() for default in defaults), *constants), strict=True)))
            for row in rows
        ]
        model.objects.bulk_create(objects, batch_size=500)
        return len(objects)

    # JSON goes in as text; orjson unless the field has an encoder of its own.
    is_json = [f.get_internal_type() == "JSONField" for f in fields]
    json_at = [(i, fields[i].encoder) for i in range(len(listed) + len(per_row)) if is_json[i]]
    tail = tuple(
        _json_text(value, f.encoder) if is_json[len(listed) + len(per_row) + i] and value is not None else value
        for i, (f, value) in enumerate(zip(constant, constants, strict=True))
    )
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
            values = [*row, *(default() for default in defaults), *tail]
            for i, encoder in json_at:
                value = values[i]
                if value is not None:
                    values[i] = _json_text(value, encoder)
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


@Field.register_lookup
class AnyOf(Lookup):
    """`field__any=values`: one array parameter (`= ANY(%s)`) on PostgreSQL, `IN (...)` elsewhere.

    For the batch look-ups of bulk work: an `__in` of a thousand values makes
    Django prepare, and psycopg split and bind, a thousand placeholders per query,
    which cost more than the query itself.
    """

    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self):
        prep = self.lhs.output_field.get_prep_value
        return [prep(value) for value in self.rhs]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(value, connection, prepared=True) for value in self.rhs]
        if not values:
            raise EmptyResultSet
        if connection.vendor == "postgresql":
            placeholder, param = array_param(values)
            return f"{lhs} = ANY({placeholder})", [*lhs_params, param]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


class PlannerStatistics:
    """Keep the planner's statistics up with tables a long bulk job is growing (PostgreSQL).

    Autovacuum analyses a table a minute or more after it has changed. A large
    import into tables that were (nearly) empty would meanwhile plan its per-batch
    look-ups from the statistics of the empty tables: full scans instead of index
    look-ups, each batch slower than the last. `rows_added` runs ANALYZE on the
    tables whenever the job has added as many rows as the statistics knew (at least
    `min_rows`), so a job analyses O(log n) times and its look-ups stay index
    look-ups. Call it between transactions. A failure (say, a database user that
    may not ANALYZE) is logged once and costs nothing but the refresh.
    """

    def __init__(self, *models, min_rows: int = 5000):
        self.tables = [model._meta.db_table for model in models]
        self.min_rows = min_rows
        self.known: float | None = None
        self.added = 0
        self.enabled = connection.vendor == "postgresql"

    def _reltuples(self) -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [self.tables[0]])
            row = cursor.fetchone()
        return max(row[0], 0) if row else 0  # -1: never analysed

    def rows_added(self, n: int) -> None:
        if not self.enabled or connection.in_atomic_block:
            return
        try:
            if self.known is None:
                self.known = self._reltuples()
            self.added += n
            if self.added < max(self.known, self.min_rows):
                return
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in self.tables))
            self.known, self.added = self._reltuples(), 0
        except DatabaseError as exc:
            logger.warning("Could not refresh the statistics of %s: %r", ", ".join(self.tables), exc)
            self.enabled = False


def replica_role_allowed(cursor, tables: Sequence[str]) -> bool:
    """Whether this session may switch per-row triggers off on `tables` (PostgreSQL).

    True when the role may set `session_replication_role` (a superuser, or `GRANT
    SET ON PARAMETER session_replication_role` on PostgreSQL 15+) and none of the
    tables has a trigger of its own, which replica mode would silence too. Only the
    foreign keys' internal triggers are then switched off, and the caller checks
    those keys itself.
    """
    cursor.execute(
        "SELECT CASE WHEN current_setting('server_version_num')::int >= 150000 "
        "THEN has_parameter_privilege('session_replication_role', 'SET') "
        "ELSE current_setting('is_superuser') = 'on' END"
    )
    if not cursor.fetchone()[0]:
        return False
    cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY(%s::regclass[])", [list(tables)]
    )
    return not cursor.fetchone()[0]


def set_based_keys(written: Sequence[str], keys_of: Sequence[str], *, pointing_at: bool = False) -> list | None:
    """The foreign keys a bulk job writing `written` may check itself, per batch, with the triggers off.

    The keys from the tables `keys_of` (with `pointing_at`, those into them), as
    rows of (table, column, referenced table, referenced column, 1), names as the
    catalogue holds them (unquoted). None, and the triggers stay on, unless on
    PostgreSQL with REGISTRY_SET_BASED_CHECKS on, where `replica_role_allowed` on
    `written`, and with every key on one column.
    """
    from django.conf import settings

    if connection.vendor != "postgresql" or not getattr(settings, "REGISTRY_SET_BASED_CHECKS", True):
        return None
    side = "c.confrelid" if pointing_at else "c.conrelid"
    with connection.cursor() as cursor:
        if not replica_role_allowed(cursor, written):
            return None
        cursor.execute(
            "SELECT t.relname, a.attname, r.relname, ra.attname, cardinality(c.conkey) FROM pg_constraint c "  # noqa: S608
            "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1] "
            f"WHERE c.contype = 'f' AND {side} = ANY(%s::regclass[]) ORDER BY t.relname, c.conname",
            [list(keys_of)],
        )
        keys = cursor.fetchall()
    return None if any(columns != 1 for *_, columns in keys) else keys


def replica_role(cursor, on: bool) -> None:
    """Switch the per-row triggers off (`on`) or back on, until the transaction ends at the latest."""
    cursor.execute("SELECT set_config('session_replication_role', %s, true)", ["replica" if on else "origin"])


class InsertedReferences:
    """The foreign keys of the rows a bulk batch inserts, checked once per batch instead of per row.

    PostgreSQL checks a foreign key on INSERT with a trigger per row, queued until
    commit for the project's deferred keys: a query through SPI per row and key that
    also locks the referenced row. An imported document has six keys, its delivery
    two, its graduate one: at commit those checks cost a batch more than its COPYs.
    Where `replica_role_allowed`, a batch switches the triggers off for its inserts
    (`replica_role`) and then calls `check`: a statement per inserted table and one
    per referenced table, over the whole batch, which find every referenced row and
    lock it FOR KEY SHARE (in key order), as the trigger would. So a concurrent
    delete of a referenced row (the purge of a graduate) waits for this batch and
    then sees its rows, and a row that is missing raises IntegrityError, rolling the
    batch back with nothing stored.

    The keys are read from the catalogue, so a key a later migration adds is checked
    too; with a key over several columns, or REGISTRY_SET_BASED_CHECKS=0, `load`
    returns None and the triggers run as usual.
    """

    def __init__(self, keys: list[tuple[str, str, str, str]], pk_of: dict[str, str]):
        # (table, column, referenced table, referenced column); each inserted table's primary key
        self.keys, self.pk_of = keys, pk_of

    @classmethod
    def load(cls, *models) -> "InsertedReferences | None":
        tables = [model._meta.db_table for model in models]
        found = set_based_keys(tables, tables)
        if found is None:
            return None
        pk_of = {model._meta.db_table: model._meta.pk.column for model in models}
        return cls([(table, column, referenced, ref) for table, column, referenced, ref, _ in found], pk_of)

    def check(self, cursor, inserted: dict[str, list[int]]) -> None:
        """Lock what the rows `inserted` (table -> primary keys) refer to; raise IntegrityError if any is missing.

        One statement per inserted table collects the values of all its keys, one
        per referenced table finds and locks them. A referenced row inserted by this
        same batch (listed in `inserted`) exists and no one else can see it yet: it
        is neither looked up nor locked.
        """
        q = connection.ops.quote_name
        wanted: dict[tuple[str, str], set] = {}  # (referenced table, column) -> values
        pointing: dict[tuple[str, str], list[str]] = {}  # the same -> "table.column" pointing there
        for table, keys in itertools.groupby(self.keys, key=lambda key: key[0]):
            keys = list(keys)
            ids = inserted.get(table)
            if not ids:
                continue
            columns = ", ".join(
                f"array_agg(DISTINCT {q(column)}) FILTER (WHERE {q(column)} IS NOT NULL)" for _, column, _, _ in keys
            )
            placeholder, param = array_param(ids)
            cursor.execute(
                f"SELECT {columns} FROM {q(table)} WHERE {q(self.pk_of[table])} = ANY({placeholder})",  # noqa: S608
                [param],
            )
            for (_, column, referenced, ref), values in zip(keys, cursor.fetchone(), strict=True):
                own = inserted.get(referenced, ()) if ref == self.pk_of.get(referenced) else ()
                wanted.setdefault((referenced, ref), set()).update(set(values or ()) - set(own))
                pointing.setdefault((referenced, ref), []).append(f"{table}.{column}")
        for (referenced, ref), values in wanted.items():
            if not values:
                continue
            placeholder, param = array_param(sorted(values))
            cursor.execute(
                f"SELECT {q(ref)} FROM {q(referenced)} WHERE {q(ref)} = ANY({placeholder}) FOR KEY SHARE",  # noqa: S608
                [param],
            )
            missing = values - {row[0] for row in cursor.fetchall()}
            if missing:
                raise IntegrityError(
                    f"insert violates a foreign key: {', '.join(pointing[referenced, ref])} = {min(missing)} "
                    f'is not present in table "{referenced}"'
                )
