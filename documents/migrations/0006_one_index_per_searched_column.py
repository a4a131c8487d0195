"""One index per searched column of documents: the number, the registration number, the code.

Each of these columns had two indexes. `number` and `registration_number` had a
plain btree (this app's 0001) and a text_pattern_ops one for the admin's prefix
searches (registry 0002); the pattern one serves equality too (`=` and `= ANY`, the
import's and the verification's look-ups), and nothing orders by these columns. The
verification code had its unique index and the `_like` index Django adds to every
unique text column on PostgreSQL, for LIKE searches no one makes. Every issued
document wrote all six; a random code lands on a random page of its index, so the
`_like` one cost a page read and a write per document of a bulk import.

The state change makes the model's own `document_number` and
`document_registration_number` the pattern indexes (opclasses; SQLite ignores them).
On PostgreSQL the plain indexes are dropped and the pattern ones renamed, so no index
is rebuilt; the `_like` index is dropped. (Django would add the `_like` index back if
a later migration altered the code column: drop it again there.)
"""

from django.db import migrations, models

from registry.migration_ops import PostgresOnlySQL

CODE_LIKE_INDEX = "documents_document_verification_code_9d41a1b7_like"
# (the model's index, the pattern index registry 0002 made, the column)
RENAMED = [
    ("document_number", "document_number_prefix", "number"),
    ("document_registration_number", "document_regnum_prefix", "registration_number"),
]


def _state_operations():
    ops = []
    for name, _prefix, column in RENAMED:
        ops.append(migrations.RemoveIndex(model_name="document", name=name))
        ops.append(
            migrations.AddIndex(
                model_name="document",
                index=models.Index(fields=[column], name=name, opclasses=["text_pattern_ops"]),
            )
        )
    return ops


def _database_operations():
    ops = []
    for name, prefix, column in RENAMED:
        ops.append(
            PostgresOnlySQL(
                [f"DROP INDEX IF EXISTS {name}", f"ALTER INDEX {prefix} RENAME TO {name}"],
                [f"ALTER INDEX {name} RENAME TO {prefix}", f'CREATE INDEX {name} ON documents_document ("{column}")'],
            )
        )
    ops.append(
        PostgresOnlySQL(
            f"DROP INDEX IF EXISTS {CODE_LIKE_INDEX}",
            f'CREATE INDEX {CODE_LIKE_INDEX} ON documents_document ("verification_code" varchar_pattern_ops)',
        )
    )
    return ops


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0005_document_replaces_partial_index"),
        # The pattern indexes renamed here are made by registry 0002.
        ("registry", "0003_delivery_filter_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=_state_operations(),
            database_operations=_database_operations(),
        ),
    ]
