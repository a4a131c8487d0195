"""Indexes behind the deliveries changelist's filters, PostgreSQL only.

The state filter has `delivery_state_id`; the action filter gets its own, ordered
like the changelist (newest first): after a purge the newest million rows are all
withdrawals, and without it finding the newest publications would walk them all.
The date filter needs none: ids grow with `created_at`, so the newest-first scan
of the primary key stops as soon as it leaves the chosen period.
"""

from django.db import migrations

from registry.migration_ops import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0002_search_indexes"),
        ("documents", "0001_initial"),
    ]

    operations = [
        PostgresOnlySQL(
            "CREATE INDEX IF NOT EXISTS delivery_action_id ON documents_delivery (action, id DESC)",
            "DROP INDEX IF EXISTS delivery_action_id",
        ),
    ]
