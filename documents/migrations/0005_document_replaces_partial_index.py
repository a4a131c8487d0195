"""Index documents.replaces_id only where it is set.

Only duplicates and corrections replace a document, so the full index held a NULL
entry for nearly every document: one more write per document issued, and a
million-entry index that the purge probes for every document it deletes. The
partial index serves every look-up by replaces_id (`replaces_id = x` implies NOT
NULL) and the foreign key's checks. As in 0003: the state change is db_index=False
plus the new index; the database change creates the partial index and drops the old
one (the constraint is not rebuilt, the table not rewritten).
"""

import django.db.models.deletion
from django.db import migrations, models

OLD_INDEX = "documents_document_replaces_id_54d67f4d"


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0004_delivery_portal_ids"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="document",
                    name="replaces",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="replacements",
                        to="documents.document",
                        verbose_name="replaces",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{OLD_INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{OLD_INDEX}" ON "documents_document" ("replaces_id")',
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="document",
            index=models.Index(
                condition=models.Q(("replaces__isnull", False)), fields=["replaces"], name="document_replaces"
            ),
        ),
    ]
