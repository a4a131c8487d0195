"""Data the migrations record: the 2024 reference experiment, the operators' group."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from experiment.models import Experiment

pytestmark = pytest.mark.django_db


def test_the_2024_experiment_is_recorded_with_its_calendar_and_targets():
    experiment = Experiment.objects.get(year=2024)
    assert (experiment.starts_on, experiment.ends_on) == (dt.date(2024, 3, 15), dt.date(2024, 12, 31))
    assert experiment.purge_on > experiment.ends_on
    targets = (
        experiment.target_school,
        experiment.target_college,
        experiment.target_university,
        experiment.target_additional,
    )
    assert targets == (277, 260, 61, 225)
    stages = [(s.number, s.starts_on, s.ends_on) for s in experiment.stages.order_by("number")]
    assert stages == [
        (1, dt.date(2024, 3, 15), dt.date(2024, 9, 30)),
        (2, dt.date(2024, 3, 15), dt.date(2024, 9, 30)),
        (3, dt.date(2024, 10, 1), dt.date(2024, 12, 31)),
    ]


def test_the_ministry_operators_group_exists_after_migrating():
    group = Group.objects.get(name="Ministry operators")
    assert group.permissions.exists()
