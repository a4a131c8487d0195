"""Record the 2024 experiment, the reference case (DESIGN.md), as data.

Stages 1 (forming) and 2 (transfer to Gosuslugi) share 15 March – 30 September;
stage 3 (bringing the registry into full operation, forming and transfer go on)
runs 1 October – 31 December; documents are purged from 1 January 2025.
"""

import datetime as dt

from django.db import migrations


def create_2024(apps, schema_editor):
    Experiment = apps.get_model("experiment", "Experiment")
    Stage = apps.get_model("experiment", "Stage")
    experiment, created = Experiment.objects.get_or_create(
        year=2024,
        defaults=dict(
            title="Эксперимент по цифровым документам об образовании 2024",
            starts_on=dt.date(2024, 3, 15),
            ends_on=dt.date(2024, 12, 31),
            purge_on=dt.date(2025, 1, 1),
            target_school=277,
            target_college=260,
            target_university=61,
            target_additional=225,
        ),
    )
    if not created:
        return
    stages = [
        (1, "Формирование цифровых документов об образовании", dt.date(2024, 3, 15), dt.date(2024, 9, 30), True, False),
        (2, "Передача документов в личные кабинеты ЕПГУ", dt.date(2024, 3, 15), dt.date(2024, 9, 30), True, True),
        (3, "Ввод реестра в промышленную эксплуатацию", dt.date(2024, 10, 1), dt.date(2024, 12, 31), True, True),
    ]
    for number, title, starts_on, ends_on, forming, transfer in stages:
        Stage.objects.create(experiment=experiment, number=number, title=title, starts_on=starts_on,
                             ends_on=ends_on, allows_forming=forming, allows_transfer=transfer)


def remove_2024(apps, schema_editor):
    apps.get_model("experiment", "Experiment").objects.filter(year=2024, documents__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("experiment", "0001_initial"), ("documents", "0001_initial")]

    operations = [migrations.RunPython(create_2024, remove_2024)]
