"""Create the "Ministry operators" group with exactly the permissions operators need.

Operators run the experiment through the admin: institutions and enrolment,
experiments and stages, partner and signing keys, monitoring documents and
deliveries. They never manage users or groups, never delete, and never edit a
graduate; documents change only through the registry's services (admin actions),
so "change" on documents and deliveries is what those actions check.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Ministry operators"

# app label -> model -> actions
PERMISSIONS = {
    "institutions": {
        "institution": ("view", "add", "change"),
        "membership": ("view", "add", "change"),
        "apikey": ("view", "add", "change"),
        "signingkey": ("view", "add", "change"),
    },
    "experiment": {
        "experiment": ("view", "add", "change"),
        "stage": ("view", "add", "change"),
        "participation": ("view", "add", "change"),
        "purgereport": ("view",),
    },
    "documents": {
        "document": ("view", "change"),
        "delivery": ("view", "change"),
        "graduate": ("view",),
        "event": ("view",),
        "importjob": ("view",),
        "importrejection": ("view",),
    },
}


def create_group(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); create
    # them now so the group can reference them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    wanted = []
    for app_label, models in PERMISSIONS.items():
        for model, actions in models.items():
            for action in actions:
                wanted.append(
                    Permission.objects.get(content_type__app_label=app_label, codename=f"{action}_{model}")
                )
    group.permissions.set(wanted)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("institutions", "0001_initial"),
        ("experiment", "0002_experiment_2024"),
        ("documents", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
