"""Migration operations that only apply on PostgreSQL (trigram indexes, extensions).

SQLite, the embedded default, has no such indexes; the same migrations run there
as no-ops so both databases share one migration history.
"""

from django.db import migrations


class PostgresOnlySQL(migrations.RunSQL):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
