"""Drop the delivery table's single-column FK indexes (document_id, institution_id).

delivery_document_id (document, -id) and delivery_inst_state (institution, state)
lead with the same columns and serve every lookup and FK check; the two extra
indexes only cost a write per outbox row. Only the indexes go: the state change is
db_index=False, the database change two DROP INDEX (no constraint rebuilt, no table
rewritten).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "documents_delivery_document_id_9d9d4314": "document_id",
    "documents_delivery_institution_id_4cb26770": "institution_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0001_initial"),
        ("institutions", "0002_api_idempotency"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="document",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="deliveries",
                        to="documents.document",
                        verbose_name="document",
                    ),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="institution",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="deliveries",
                        to="institutions.institution",
                        verbose_name="institution",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "documents_delivery" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
        ),
    ]
