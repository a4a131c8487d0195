"""Drop three single-column FK indexes of documents and graduates that composite indexes cover.

documents.institution_id: document_inst_id (institution, -id) leads with it;
documents.experiment_id: document_experiment_id (experiment, id);
graduates.institution_id: graduate_unique_snils_per_institution (institution, snils_hash).
Those serve every lookup and foreign-key check; the single-column copies only cost a
write per issued document and graduate. As in 0002: the state change is
db_index=False, the database change a DROP INDEX each (no constraint rebuilt, no table
rewritten).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "documents_document_institution_id_fb82e0ba": ("documents_document", "institution_id"),
    "documents_document_experiment_id_72eccca8": ("documents_document", "experiment_id"),
    "documents_graduate_institution_id_965ef427": ("documents_graduate", "institution_id"),
}


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0002_delivery_drop_redundant_fk_indexes"),
        ("experiment", "0002_experiment_2024"),
        ("institutions", "0002_api_idempotency"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="document",
                    name="experiment",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Empty for a non-experimental document.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="documents",
                        to="experiment.experiment",
                        verbose_name="experiment",
                    ),
                ),
                migrations.AlterField(
                    model_name="document",
                    name="institution",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="documents",
                        to="institutions.institution",
                        verbose_name="institution",
                    ),
                ),
                migrations.AlterField(
                    model_name="graduate",
                    name="institution",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="graduates",
                        to="institutions.institution",
                        verbose_name="institution",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for name, (table, column) in INDEXES.items()
            ],
        ),
    ]
