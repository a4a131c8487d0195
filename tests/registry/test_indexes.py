"""The big tables: every foreign key leads an index, and no one-column index repeats a composite one."""

import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

BIG_TABLES = ("documents_document", "documents_graduate", "documents_delivery")


def _indexes(table: str) -> dict[str, list[str]]:
    """Index name → its column names in order (expression columns as '?')."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname, ARRAY(SELECT coalesce(a.attname, '?') FROM unnest(x.indkey) WITH ORDINALITY k(n, o) "
            "LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
            [table],
        )
        return dict(cursor.fetchall())


def _foreign_key_columns(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE c.contype = 'f' AND c.conrelid = %s::regclass",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("table", BIG_TABLES)
def test_every_foreign_key_leads_an_index(table):
    """Deleting a referenced row (an institution, a user) checks the key through such an index, not a scan."""
    leads = {columns[0] for columns in _indexes(table).values()}
    assert set(_foreign_key_columns(table)) <= leads


@pytest.mark.parametrize("table", BIG_TABLES)
def test_no_single_column_foreign_key_index_duplicates_a_composite_one(table):
    """A one-column index on a column a composite index already leads with is one more write per row for nothing."""
    indexes = _indexes(table)
    composite_leads = {columns[0] for columns in indexes.values() if len(columns) > 1}
    duplicates = [
        name
        for name, columns in indexes.items()
        if columns in ([column] for column in _foreign_key_columns(table)) and columns[0] in composite_leads
    ]
    assert duplicates == []


def test_replaces_is_indexed_only_where_a_document_replaces_another():
    """Few documents replace one: the index holds those, not a NULL for every document issued."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'documents_document' "
            "AND indexdef LIKE '%%(replaces_id)%%'"
        )
        indexes = cursor.fetchall()
        assert [name for name, _ in indexes] == ["document_replaces"]
        assert indexes[0][1].endswith("WHERE (replaces_id IS NOT NULL)")
        # The purge's and the ORM's look-ups by replaces_id can use it.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN UPDATE documents_document SET replaces_id = NULL WHERE replaces_id = ANY(%s)", [[1, 2]])
        assert "document_replaces" in " ".join(row[0] for row in cursor.fetchall())
