"""Enrolment of institutions: one by one, by an admin action on a filtered list, from a CSV of INNs."""

import datetime as dt

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from documents.models import Event
from experiment.models import Participation
from experiment.services import participation_enrol, participation_enrol_inns
from tests.conftest import login_to_admin
from tests.factories import ExperimentFactory, InstitutionFactory, ParticipationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def exp():
    return ExperimentFactory(
        year=2030, starts_on=dt.date(2030, 1, 1), ends_on=dt.date(2030, 12, 31), purge_on=dt.date(2031, 1, 1)
    )


@pytest.fixture
def operator(client):
    user = UserFactory(username="operator", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["experiment", "institutions"], codename__startswith="view"
        )
        | Permission.objects.filter(codename__in=["add_participation", "change_institution"])
    )
    login_to_admin(client, user)
    return user


def enrolled_ids(experiment) -> set[int]:
    return set(Participation.objects.filter(experiment=experiment).values_list("institution_id", flat=True))


def test_enrolling_twice_changes_nothing(exp):
    institution = InstitutionFactory()
    assert participation_enrol(experiment=exp, institution=institution) is True
    assert participation_enrol(experiment=exp, institution=institution) is False
    assert Participation.objects.filter(experiment=exp).count() == 1
    assert Event.objects.filter(action="experiment.enrolled").count() == 1


def test_operator_enrols_one_institution_in_the_admin(client, operator, exp):
    institution = InstitutionFactory()
    response = client.post(
        reverse("admin:experiment_participation_add"), {"experiment": exp.pk, "institution": institution.pk}
    )
    assert response.status_code == 302
    participation = Participation.objects.get(experiment=exp, institution=institution)
    assert participation.enrolled_by == operator


def test_the_participation_form_refuses_a_second_enrolment(client, operator, exp):
    institution = InstitutionFactory()
    ParticipationFactory(experiment=exp, institution=institution)
    response = client.post(
        reverse("admin:experiment_participation_add"), {"experiment": exp.pk, "institution": institution.pk}
    )
    assert response.status_code == 200
    assert Participation.objects.filter(experiment=exp, institution=institution).count() == 1


def test_institution_autocomplete_serves_the_participation_form(client, operator):
    InstitutionFactory(short_name="Лицей Ромашка")
    response = client.get(
        reverse("admin:autocomplete"),
        {"term": "Ромашка", "app_label": "experiment", "model_name": "participation", "field_name": "institution"},
    )
    assert response.status_code == 200
    assert "Ромашка" in response.json()["results"][0]["text"]


def test_action_asks_for_the_experiment_then_enrols_the_selected(client, operator, exp):
    chosen = [InstitutionFactory(), InstitutionFactory()]
    already = InstitutionFactory()
    ParticipationFactory(experiment=exp, institution=already)
    untouched = InstitutionFactory()
    url = reverse("admin:institutions_institution_changelist")
    selected = [str(i.pk) for i in [*chosen, already]]

    page = client.post(url, {"action": "enrol_in_experiment", ACTION_CHECKBOX_NAME: selected, "index": 0})
    assert page.status_code == 200
    assert "3 institutions are selected" in page.content.decode()
    assert enrolled_ids(exp) == {already.pk}

    done = client.post(
        url,
        {
            "action": "enrol_in_experiment",
            ACTION_CHECKBOX_NAME: selected,
            "index": 0,
            "apply": "1",
            "experiment": exp.pk,
        },
        follow=True,
    )
    assert "Enrolled 2 institutions in the 2030 experiment; 1 already enrolled." in done.content.decode()
    assert enrolled_ids(exp) == {already.pk, *(i.pk for i in chosen)}
    assert untouched.pk not in enrolled_ids(exp)


def test_action_on_a_filtered_list_enrols_all_it_shows(client, operator, exp):
    other = ExperimentFactory(year=2029, starts_on=dt.date(2029, 1, 1), ends_on=dt.date(2029, 12, 31))
    in_2029 = [InstitutionFactory(), InstitutionFactory()]
    for institution in in_2029:
        ParticipationFactory(experiment=other, institution=institution)
    outside = InstitutionFactory()
    url = reverse("admin:institutions_institution_changelist") + "?experiment=2029"
    response = client.post(
        url,
        {
            "action": "enrol_in_experiment",
            ACTION_CHECKBOX_NAME: [str(in_2029[0].pk)],
            "select_across": "1",
            "index": 0,
            "apply": "1",
            "experiment": exp.pk,
        },
    )
    assert response.status_code == 302
    assert enrolled_ids(exp) == {i.pk for i in in_2029}
    assert outside.pk not in enrolled_ids(exp)


def test_action_is_refused_without_the_enrolment_permission(client, exp):
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_institution", "change_institution"]))
    login_to_admin(client, user)
    institution = InstitutionFactory()
    client.post(
        reverse("admin:institutions_institution_changelist"),
        {
            "action": "enrol_in_experiment",
            ACTION_CHECKBOX_NAME: [institution.pk],
            "index": 0,
            "apply": "1",
            "experiment": exp.pk,
        },
    )
    assert not Participation.objects.exists()


def test_csv_upload_reports_every_line(client, operator, exp):
    new, already = InstitutionFactory(), InstitutionFactory()
    ParticipationFactory(experiment=exp, institution=already)
    body = "\n".join(
        [
            "ИНН;Наименование",
            f"{new.inn};Новая школа",
            f"{already.inn};Уже в эксперименте",
            "7707083893;Нет такой в реестре",
            "1234567890;Контрольная цифра неверна",
            "",
            f"{new.inn};Повтор",
        ]
    ).encode("cp1251")
    response = client.post(
        reverse("admin:experiment_participation_enrol_csv"),
        {"experiment": exp.pk, "file": SimpleUploadedFile("inns.csv", body, content_type="text/csv")},
    )
    assert response.status_code == 200
    report = response.context["report"]
    assert [(line.line, line.outcome) for line in report.lines] == [
        (2, "enrolled"),
        (3, "already_enrolled"),
        (4, "unknown_inn"),
        (5, "invalid_inn"),
        (7, "already_enrolled"),
    ]
    page = response.content.decode()
    assert "no institution with this INN" in page and "not a valid INN" in page
    assert enrolled_ids(exp) == {new.pk, already.pk}


def test_csv_of_bare_inns_in_utf8_with_bom(exp):
    a, b = InstitutionFactory(), InstitutionFactory()
    report = participation_enrol_inns(experiment=exp, data=f"\ufeff{a.inn}\r\n{b.inn}\r\n".encode())
    assert report.counts["enrolled"] == 2
    again = participation_enrol_inns(experiment=exp, data=f"{a.inn}\n{b.inn}\n".encode())
    assert again.counts == {"enrolled": 0, "already_enrolled": 2, "unknown_inn": 0, "invalid_inn": 0}


def test_csv_upload_is_refused_to_staff_without_the_permission(client, exp):
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_participation"))
    login_to_admin(client, user)
    response = client.get(reverse("admin:experiment_participation_enrol_csv"))
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\x98", "This is a spreadsheet, not a CSV file"),
        (bytes(range(256)), "This is not a text file"),
        (b"\x98\x98\x98", "neither UTF-8 nor Windows-1251"),
    ],
    ids=["xlsx", "binary", "undecodable"],
)
def test_csv_upload_of_a_file_that_is_not_a_csv_is_refused_with_a_message(client, operator, exp, body, message):
    InstitutionFactory()
    response = client.post(
        reverse("admin:experiment_participation_enrol_csv"),
        {"experiment": exp.pk, "file": SimpleUploadedFile("inns.xlsx", body)},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["report"] is None
    assert not Participation.objects.exists()


def test_csv_inns_with_spaces_apostrophes_and_a_quoted_name_column(exp):
    a, b = InstitutionFactory(), InstitutionFactory()
    body = f'Наименование;ИНН\n"Школа; №1";{a.inn[:4]} {a.inn[4:]}\n"Лицей, №2";\'{b.inn}\n'.encode("cp1251")
    report = participation_enrol_inns(experiment=exp, data=body)
    assert [(line.line, line.inn, line.outcome) for line in report.lines] == [
        (2, a.inn, "enrolled"),
        (3, b.inn, "enrolled"),
    ]
    assert enrolled_ids(exp) == {a.pk, b.pk}
