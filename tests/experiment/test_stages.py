"""Stage rules: when an institution may form documents, into which experiment; the admin's window checks."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from documents.services import DocumentData, GraduateData, document_create_draft, document_issue, graduate_create
from experiment.models import Experiment, Stage
from experiment.services import forming_experiment, forming_rule
from registry.errors import NotAllowed
from tests.conftest import login_to_admin
from tests.factories import ExperimentFactory, InstitutionFactory, ParticipationFactory, UserFactory, make_snils

pytestmark = pytest.mark.django_db

FIRST, LAST = dt.date(2030, 4, 1), dt.date(2030, 6, 30)


@pytest.fixture
def enrolled():
    experiment = ExperimentFactory(
        year=2030,
        starts_on=dt.date(2030, 1, 1),
        ends_on=dt.date(2030, 12, 31),
        purge_on=dt.date(2031, 1, 1),
        stages=False,
    )
    Stage.objects.create(
        experiment=experiment,
        number=1,
        title="Формирование",
        starts_on=FIRST,
        ends_on=LAST,
        allows_forming=True,
        allows_transfer=False,
    )
    institution = InstitutionFactory()
    ParticipationFactory(experiment=experiment, institution=institution)
    return experiment, institution


@pytest.mark.parametrize(
    ("day", "allowed"),
    [
        (FIRST - dt.timedelta(days=1), False),
        (FIRST, True),
        (LAST, True),
        (LAST + dt.timedelta(days=1), False),
    ],
    ids=["the day before", "the first day", "the last day", "the day after"],
)
def test_forming_is_allowed_exactly_within_the_stage_window(enrolled, day, allowed):
    experiment, institution = enrolled
    rule = forming_rule(institution=institution, on=day)
    assert rule.allowed is allowed
    assert rule.experiment == experiment
    if not allowed:
        assert "No stage" in str(rule.reason)


def test_a_document_formed_in_a_stage_belongs_to_the_experiment(enrolled):
    experiment, institution = enrolled
    assert forming_experiment(institution=institution, on=FIRST) == experiment


def test_a_stage_that_does_not_allow_forming_refuses_it(enrolled):
    experiment, institution = enrolled
    Stage.objects.create(
        experiment=experiment,
        number=2,
        title="Передача",
        starts_on=dt.date(2030, 7, 1),
        ends_on=dt.date(2030, 9, 30),
        allows_forming=False,
        allows_transfer=True,
    )
    rule = forming_rule(institution=institution, on=dt.date(2030, 8, 1))
    assert not rule.allowed and rule.transfer_allowed
    with pytest.raises(NotAllowed):
        forming_experiment(institution=institution, on=dt.date(2030, 8, 1))


def test_overlapping_stages_allow_forming_if_any_allows_it():
    experiment = Experiment.objects.get(year=2024)
    institution = InstitutionFactory()
    ParticipationFactory(experiment=experiment, institution=institution)
    rule = forming_rule(institution=institution, on=dt.date(2024, 5, 1))
    assert rule.allowed and rule.transfer_allowed
    assert rule.experiment == experiment


def test_outside_any_experiment_regular_operation_decides(settings):
    institution = InstitutionFactory()
    settings.REGISTRY_REGULAR_OPERATION = True
    rule = forming_rule(institution=institution, on=dt.date(2030, 5, 1))
    assert rule.allowed and rule.experiment is None
    settings.REGISTRY_REGULAR_OPERATION = False
    assert not forming_rule(institution=institution, on=dt.date(2030, 5, 1)).allowed


def test_after_its_experiment_has_ended_an_institution_forms_only_regular_documents(enrolled, settings):
    _experiment, institution = enrolled
    settings.REGISTRY_REGULAR_OPERATION = False
    assert not forming_rule(institution=institution, on=dt.date(2031, 2, 1)).allowed
    settings.REGISTRY_REGULAR_OPERATION = True
    rule = forming_rule(institution=institution, on=dt.date(2031, 2, 1))
    assert rule.allowed and rule.experiment is None


def _draft(actor):
    graduate = graduate_create(
        actor=actor,
        data=GraduateData(last_name="Иванов", first_name="Иван", birth_date=dt.date(2007, 5, 17), snils=make_snils(77)),
    )
    data = DocumentData(
        kind="secondary_general_certificate",
        number="77000000009999",
        registration_number="R-9999",
        issued_on=timezone.localdate() - dt.timedelta(days=1),
        grades=[{"subject": "Математика", "mark": "5"}],
    )
    return document_create_draft(actor=actor, graduate=graduate, data=data)


def test_issuing_is_refused_outside_the_stages(alice_actor, experiment):
    stage = experiment.stages.get()
    # The only stage starts tomorrow: nothing is active today.
    stage.starts_on = stage.ends_on = timezone.localdate() + dt.timedelta(days=1)
    stage.save()
    draft = _draft(alice_actor)
    with pytest.raises(NotAllowed) as caught:
        document_issue(actor=alice_actor, document=draft)
    assert caught.value.code == "stage_closed"
    draft.refresh_from_db()
    assert draft.status == "draft" and draft.experiment_id is None


def test_issuing_within_a_stage_puts_the_document_in_the_experiment(alice_actor, experiment):
    document = document_issue(actor=alice_actor, document=_draft(alice_actor))
    assert document.experiment == experiment
    assert document.legal_force is False


# --- The admin's checks -------------------------------------------------------------


@pytest.fixture
def operator(client):
    user = UserFactory(username="operator", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="experiment").exclude(codename__startswith="delete")
    )
    login_to_admin(client, user)
    return user


def _experiment_post(stages, **overrides):
    data = {
        "year": "2031",
        "title": "Эксперимент 2031",
        "starts_on": "2031-03-15",
        "ends_on": "2031-12-31",
        "purge_on": "2032-01-01",
        "target_school": "10",
        "target_college": "0",
        "target_university": "0",
        "target_additional": "0",
        "stages-TOTAL_FORMS": str(len(stages)),
        "stages-INITIAL_FORMS": "0",
        "stages-MIN_NUM_FORMS": "1",
        "stages-MAX_NUM_FORMS": "1000",
    }
    for i, (start, end) in enumerate(stages):
        data.update(
            {
                f"stages-{i}-number": str(i + 1),
                f"stages-{i}-title": f"Этап {i + 1}",
                f"stages-{i}-starts_on": start,
                f"stages-{i}-ends_on": end,
                f"stages-{i}-allows_forming": "on",
            }
        )
    data.update(overrides)
    return data


def test_admin_adds_an_experiment_with_its_stages(client, operator):
    response = client.post(
        reverse("admin:experiment_experiment_add"),
        _experiment_post([("2031-03-15", "2031-09-30"), ("2031-10-01", "2031-12-31")]),
    )
    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert Experiment.objects.get(year=2031).stages.count() == 2


def test_admin_refuses_an_inverted_stage_window_with_a_message(client, operator):
    response = client.post(reverse("admin:experiment_experiment_add"), _experiment_post([("2031-09-30", "2031-03-15")]))
    assert response.status_code == 200
    assert "The stage cannot end before it starts." in response.content.decode()
    assert not Experiment.objects.filter(year=2031).exists()


def test_admin_refuses_a_stage_window_outside_the_experiment_with_a_message(client, operator):
    response = client.post(reverse("admin:experiment_experiment_add"), _experiment_post([("2031-01-10", "2031-05-01")]))
    assert response.status_code == 200
    assert "must lie within the experiment" in response.content.decode()
    assert not Experiment.objects.filter(year=2031).exists()


def test_admin_checks_existing_stages_against_the_experiments_new_dates(client, operator):
    client.post(reverse("admin:experiment_experiment_add"), _experiment_post([("2031-03-15", "2031-09-30")]))
    experiment = Experiment.objects.get(year=2031)
    stage = experiment.stages.get()
    data = _experiment_post([], starts_on="2031-06-01")
    data.update(
        {
            "stages-TOTAL_FORMS": "1",
            "stages-INITIAL_FORMS": "1",
            "stages-0-id": str(stage.pk),
            "stages-0-experiment": str(experiment.pk),
            "stages-0-number": "1",
            "stages-0-title": stage.title,
            "stages-0-starts_on": "2031-03-15",
            "stages-0-ends_on": "2031-09-30",
            "stages-0-allows_forming": "on",
        }
    )
    response = client.post(reverse("admin:experiment_experiment_change", args=[experiment.pk]), data)
    assert response.status_code == 200
    assert "must lie within the experiment" in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.starts_on == dt.date(2031, 3, 15)


def test_admin_refuses_inverted_experiment_dates_and_a_purge_before_the_end(client, operator):
    stages = [("2031-03-15", "2031-09-30")]
    response = client.post(reverse("admin:experiment_experiment_add"), _experiment_post(stages, ends_on="2031-01-01"))
    assert "The experiment cannot end before it starts." in response.content.decode()
    response = client.post(reverse("admin:experiment_experiment_add"), _experiment_post(stages, purge_on="2031-12-31"))
    assert "The purge date must come after the experiment&#x27;s last day." in response.content.decode()
    assert not Experiment.objects.filter(year=2031).exists()
