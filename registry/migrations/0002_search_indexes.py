"""Indexes behind the admin's searches, PostgreSQL only (SQLite runs them as no-ops).

Django's `icontains` compiles to `UPPER(col::text) LIKE UPPER('%…%')`, so the
trigram indexes are on that very expression; a plain index on the column would
never be used. Prefix searches (`startswith`: `col::text LIKE '…%'`) use btree
indexes with text_pattern_ops, which serve LIKE prefixes whatever the collation.
"""

from django.db import migrations

from registry.migration_ops import PostgresOnlySQL

TRIGRAM = [
    ("institution_short_name_trgm", "institutions_institution", "short_name"),
    ("institution_full_name_trgm", "institutions_institution", "full_name"),
    ("graduate_last_name_trgm", "documents_graduate", "last_name"),
]
PREFIX = [
    ("document_number_prefix", "documents_document", "number"),
    ("document_regnum_prefix", "documents_document", "registration_number"),
    ("institution_inn_prefix", "institutions_institution", "inn"),
]


def _operations():
    ops = [PostgresOnlySQL("CREATE EXTENSION IF NOT EXISTS pg_trgm", migrations.RunSQL.noop)]
    for name, table, column in TRIGRAM:
        ops.append(
            PostgresOnlySQL(
                f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ((UPPER("{column}"::text)) gin_trgm_ops)',
                f"DROP INDEX IF EXISTS {name}",
            )
        )
    for name, table, column in PREFIX:
        ops.append(
            PostgresOnlySQL(
                f'CREATE INDEX IF NOT EXISTS {name} ON {table} ("{column}" text_pattern_ops)',
                f"DROP INDEX IF EXISTS {name}",
            )
        )
    # The copy filter's rare side (duplicates) gets a partial index; "original" is
    # nearly every row and is served by the primary key order.
    ops.append(
        PostgresOnlySQL(
            "CREATE INDEX IF NOT EXISTS document_duplicate_id ON documents_document (id DESC) "
            "WHERE copy_mark = 'duplicate'",
            "DROP INDEX IF EXISTS document_duplicate_id",
        )
    )
    ops.append(
        PostgresOnlySQL(
            "CREATE INDEX IF NOT EXISTS institution_ownership ON institutions_institution (ownership)",
            "DROP INDEX IF EXISTS institution_ownership",
        )
    )
    return ops


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_ministry_operators_group"),
        ("institutions", "0001_initial"),
        ("documents", "0001_initial"),
    ]

    operations = _operations()
