"""Hostile input through every way in, and its escaped or neutralised way out.

The corpus (tests/security/hostile.py): script tags, attribute breakers, formula
prefixes, a right-to-left override, a 10,000-character value, a NUL byte. Markup
and formulas are valid text for a name, so they are stored and must come out
escaped (pages) or neutralised (spreadsheets); NUL, direction overrides and
over-long values are refused with a validation message — never a server error
(PostgreSQL would refuse a NUL outright).
"""

import pytest
from django.core.cache import cache
from django.urls import reverse

from documents import services
from documents.models import Document, Graduate
from experiment.selectors import dashboard_cache_key
from registry.csv_safe import FORMULA_PREFIXES as FORMULA_STARTS
from registry.errors import ValidationFailed
from tests.factories import make_snils
from tests.security.conftest import certificate_data, graduate_data
from tests.security.hostile import (
    ACCEPTED,
    ATTRIBUTE_BREAKER,
    FORMULAS,
    RAW_MARKUP,
    REFUSED,
    SCRIPT,
    assert_escaped,
)

pytestmark = pytest.mark.django_db


# --- The shared layer: services refuse what the database would -------------------


@pytest.mark.parametrize("field", ["last_name", "first_name", "middle_name"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_graduate_service_refuses_with_a_field_message(alice_actor, field, case):
    with pytest.raises(ValidationFailed) as caught:
        services.graduate_create(actor=alice_actor, data=graduate_data(**{field: REFUSED[case]}))
    assert field in caught.value.errors
    assert not Graduate.objects.exists()


@pytest.mark.parametrize("field", ["programme_name", "qualification", "series", "registration_number"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_document_service_refuses_with_a_field_message(alice_actor, world, field, case):
    count = Document.objects.count()
    with pytest.raises(ValidationFailed) as caught:
        services.document_create_draft(
            actor=alice_actor,
            graduate=world.graduate,
            data=certificate_data(number="22345678901234", **{field: REFUSED[case]}),
        )
    assert field in caught.value.errors
    assert Document.objects.count() == count


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_grades_with_hostile_text_are_refused(alice_actor, world, case):
    grades = [{"subject": REFUSED[case][:150], "mark": "5"}]
    if case == "long":
        grades = [{"subject": REFUSED[case], "mark": "5"}]
    with pytest.raises(ValidationFailed) as caught:
        services.document_create_draft(
            actor=alice_actor, graduate=world.graduate, data=certificate_data(number="22345678901234", grades=grades)
        )
    assert "grades" in caught.value.errors


@pytest.mark.parametrize("case", ["nul", "rlo"])
def test_annul_reason_with_hostile_text_is_refused(alice_actor, world, case):
    with pytest.raises(ValidationFailed) as caught:
        services.document_annul(actor=alice_actor, document=world.issued, reason=REFUSED[case])
    assert "reason" in caught.value.errors
    world.issued.refresh_from_db()
    assert world.issued.status == "issued"


@pytest.mark.parametrize("value", ACCEPTED)
def test_markup_and_formulas_are_stored_as_typed(alice_actor, value):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data(last_name=value, snils=make_snils(9)))
    graduate.refresh_from_db()
    assert graduate.last_name == value


def test_surrounding_whitespace_is_not_refused(alice_actor):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data(last_name=" Иванова\t"))
    assert graduate.last_name == "Иванова"


# --- Pages: the admin -------------------------------------------------------------


@pytest.fixture
def hostile_document(alice_actor):
    graduate = services.graduate_create(
        actor=alice_actor, data=graduate_data(last_name=SCRIPT, first_name=ATTRIBUTE_BREAKER, snils=make_snils(11))
    )
    return services.document_create_draft(
        actor=alice_actor,
        graduate=graduate,
        data=certificate_data(number="32345678901234", qualification=SCRIPT, registration_number="R-9"),
    )


def admin_url(obj, view="change"):
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[obj.pk])


@pytest.mark.parametrize("view", ["change", "history"])
def test_admin_pages_escape_a_hostile_graduate(verified_admin_client, hostile_document, view):
    response = verified_admin_client.get(admin_url(hostile_document.graduate, view))
    assert response.status_code == 200
    assert_escaped(response.content.decode(), SCRIPT)


def test_admin_changelist_escapes_hostile_values(verified_admin_client, hostile_document):
    for model in (Graduate, Document):
        meta = model._meta
        response = verified_admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert response.status_code == 200
        html = response.content.decode()
        for raw in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>"):
            assert raw not in html


# --- The cabinet's forms and pages --------------------------------------------------

UNIVERSITY_DIPLOMA = {
    "kind": "bachelor_diploma",
    "series": "123456",
    "number": "1234567",
    "registration_number": "B-1",
    "programme_code": "09.03.01",
    "programme_name": "Информатика",
    "qualification": "Бакалавр",
}


@pytest.fixture
def university_signer(experiment):
    from tests.factories import InstitutionFactory, MembershipFactory, ParticipationFactory, UserFactory

    university = InstitutionFactory(kind="university", short_name="Университет")
    ParticipationFactory(experiment=experiment, institution=university)
    user = UserFactory(username="dean")
    MembershipFactory(user=user, institution=university, role="signer")
    return user


@pytest.fixture
def dean_client(university_signer):
    from django.test import Client

    client = Client()
    client.force_login(university_signer)
    return client


def graduate_form(**over):
    import datetime as dt

    body = {
        "last_name": "Иванова",
        "first_name": "Мария",
        "middle_name": "",
        "birth_date": dt.date(2003, 3, 1).isoformat(),
        "snils": make_snils(21),
    }
    body.update(over)
    return body


def document_form(**over):
    import datetime as dt

    body = dict(UNIVERSITY_DIPLOMA, issued_on=(dt.date.today() - dt.timedelta(days=1)).isoformat())
    body.update(over)
    return body


def test_cabinet_shows_hostile_names_escaped_everywhere(dean_client):
    response = dean_client.post(
        reverse("cabinet:graduate_create"),
        graduate_form(last_name=SCRIPT, first_name=ATTRIBUTE_BREAKER, middle_name="=1+1"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    graduate = Graduate.objects.get(last_name=SCRIPT)
    response = dean_client.post(
        reverse("cabinet:document_create", args=[graduate.pk]),
        document_form(programme_name=SCRIPT, qualification=ATTRIBUTE_BREAKER, grade_subject=[], grade_mark=[]),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    document = Document.objects.get(graduate=graduate)
    pages = [
        reverse("cabinet:graduates"),
        reverse("cabinet:graduate", args=[graduate.pk]),
        reverse("cabinet:graduate_edit", args=[graduate.pk]),
        reverse("cabinet:documents"),
        reverse("cabinet:document", args=[document.pk]),
        reverse("cabinet:document_edit", args=[document.pk]),
        reverse("cabinet:document_print", args=[document.pk]),
        reverse("cabinet:graduates") + "?q=" + SCRIPT,
    ]
    for url in pages:
        response = dean_client.get(url)
        assert response.status_code == 200, url
        assert_escaped(response.content.decode(), SCRIPT)


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("field", ["last_name", "first_name"])
def test_cabinet_graduate_form_refuses_hostile_text_with_a_message(dean_client, case, field):
    response = dean_client.post(reverse("cabinet:graduate_create"), graduate_form(**{field: REFUSED[case]}))
    assert response.status_code == 200
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert not Graduate.objects.exists()


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("field", ["programme_name", "qualification", "registration_number"])
def test_cabinet_document_form_refuses_hostile_text_with_a_message(dean_client, university_signer, case, field):
    dean_client.post(reverse("cabinet:graduate_create"), graduate_form())
    graduate = Graduate.objects.get()
    response = dean_client.post(
        reverse("cabinet:document_create", args=[graduate.pk]), document_form(**{field: REFUSED[case]})
    )
    assert response.status_code == 200
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert not Document.objects.exists()


def test_cabinet_annul_reason_is_escaped_in_the_cabinet_and_on_the_verification_page(alice, world):
    from django.test import Client

    client = Client()
    client.force_login(alice)
    response = client.post(reverse("cabinet:document_annul", args=[world.issued.pk]), {"reason": SCRIPT})
    assert response.status_code == 302
    world.issued.refresh_from_db()
    assert world.issued.annul_reason == SCRIPT
    assert_escaped(client.get(reverse("cabinet:document", args=[world.issued.pk])).content.decode(), SCRIPT)
    verification = Client().get(reverse("verify-code", args=[world.issued.verification_code]))
    assert verification.status_code == 200
    assert_escaped(verification.content.decode(), SCRIPT)


@pytest.mark.parametrize("case", ["nul", "rlo", "long"])
def test_cabinet_annul_refuses_hostile_reasons_cleanly(alice, world, case):
    from django.test import Client

    client = Client()
    client.force_login(alice)
    response = client.post(reverse("cabinet:document_annul", args=[world.issued.pk]), {"reason": REFUSED[case]})
    assert response.status_code == 200
    world.issued.refresh_from_db()
    assert world.issued.status == "issued"


def test_multiline_annul_reason_is_accepted(alice_actor, world):
    document = services.document_annul(actor=alice_actor, document=world.issued, reason="Ошибка\nв фамилии")
    assert document.annul_reason == "Ошибка\nв фамилии"


def test_verification_page_escapes_a_hostile_holder(alice_actor):
    from django.test import Client

    document = services.document_create_and_issue(
        actor=alice_actor,
        graduate_data=graduate_data(last_name=SCRIPT, first_name=ATTRIBUTE_BREAKER, snils=make_snils(31)),
        data=certificate_data(number="42345678901234"),
    )
    response = Client().get(reverse("verify-code", args=[document.verification_code]))
    assert response.status_code == 200
    html = response.content.decode()
    for raw in ("<script>", "<img src=x onerror"):
        assert raw not in html


# --- The import ------------------------------------------------------------------


def import_rows(rows, *, client, django_capture_on_commit_callbacks, name="hostile.csv", content=None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from documents.models import ImportJob
    from documents.tasks import import_run
    from tests.documents.cabinet_support import csv_bytes

    content = content if content is not None else csv_bytes(rows)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("cabinet:upload"), {"file": SimpleUploadedFile(name, content)})
    job = ImportJob.objects.order_by("-id").first()
    if callbacks and job is not None:
        import_run(job.pk)
        job.refresh_from_db()
    return response, job


def hostile_import_rows():
    """{line: (row, accepted)}: padding rows, then markup and formulas (imported) and
    refused values (rejected with a reason).

    A NUL within the first 64 KiB makes the upload refuse the whole CSV as not text
    (tested below); padding past that makes the import meet the NUL row by row.
    """
    from tests.documents.cabinet_support import good_row

    rows = {}
    line = 2
    padding_name = "Сергеевич" * 11  # 99 characters, 198 bytes
    for i in range(260):
        row = good_row(1000 + i)
        row[7] = padding_name
        rows[line] = (row, True)
        line += 1
    for i, value in enumerate(ACCEPTED):
        rows[line] = (good_row(100 + i, last_name=value), True)
        line += 1
    for i, value in enumerate(REFUSED.values()):
        rows[line] = (good_row(200 + i, last_name=value), False)
        line += 1
    return rows


def test_import_takes_markup_as_text_and_rejects_refused_values_with_reasons(
    alice_client, django_capture_on_commit_callbacks
):
    from documents.models import ImportRejection
    from tests.documents.cabinet_support import csv_bytes

    rows = hostile_import_rows()
    content = csv_bytes([row for row, _ in rows.values()])
    assert b"\x00" not in content[: 64 * 1024] and b"\x00" in content
    response, job = import_rows(
        None,
        content=content,
        client=alice_client,
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == "done", job.state
    imported = set(Graduate.objects.values_list("last_name", flat=True))
    assert set(ACCEPTED) <= imported
    rejected_lines = set(ImportRejection.objects.filter(job=job).values_list("line", flat=True))
    assert rejected_lines == {line for line, (_row, accepted) in rows.items() if not accepted}
    for url in (reverse("cabinet:job", args=[job.pk]), reverse("cabinet:graduates") + "?q=alert"):
        page = alice_client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        for raw in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>"):
            assert raw not in html


def test_import_refuses_a_csv_with_nul_bytes_cleanly(alice_client, django_capture_on_commit_callbacks):
    from documents.models import ImportJob
    from tests.documents.cabinet_support import good_row

    response, _job = import_rows(
        [good_row(1, last_name=REFUSED["nul"])],
        client=alice_client,
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200
    assert response.context["form"].errors["file"]
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize("bomb", ["zip", "entities"])
def test_import_refuses_hostile_xlsx_with_a_message(alice_client, django_capture_on_commit_callbacks, bomb):
    from tests.security.test_uploads import BILLION_LAUGHS, replace_member, valid_xlsx, zip_bomb

    content = (
        zip_bomb(16) if bomb == "zip" else replace_member(valid_xlsx(), "xl/worksheets/sheet1.xml", BILLION_LAUGHS)
    )
    response, job = import_rows(
        None,
        content=content,
        name="bomb.xlsx",
        client=alice_client,
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert response.status_code in (200, 302)
    if job is not None:
        job.refresh_from_db()
        assert job.state == "failed"
        assert job.imported == 0
        page = alice_client.get(reverse("cabinet:job", args=[job.pk]))
        assert page.status_code == 200
    assert not Document.objects.exists()


# --- The API -------------------------------------------------------------------------


@pytest.fixture
def issuer(school):
    from rest_framework.test import APIClient

    from institutions.apikeys import api_key_create

    _row, plaintext = api_key_create(name="School IS", scope="issue", institution=school)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def api_body(n: int, **over) -> dict:
    import datetime as dt

    body = {
        "kind": "secondary_general_certificate",
        "number": f"{77300000000000 + n:014d}",
        "registration_number": f"API-{n}",
        "issued_on": (dt.date.today() - dt.timedelta(days=1)).isoformat(),
        "last_name": "Петрова",
        "first_name": "Мария",
        "middle_name": "Сергеевна",
        "birth_date": "2007-05-17",
        "snils": make_snils(3000 + n),
        "grades": [{"subject": "Математика", "mark": "5"}],
    }
    body.update(over)
    return body


@pytest.mark.parametrize("value", ACCEPTED)
def test_api_stores_markup_as_text_and_returns_it_as_json(issuer, value):
    response = issuer.post("/api/v1/documents/", api_body(1, last_name=value, first_name=value), format="json")
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["last_name"] == value


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("field", ["last_name", "registration_number"])
def test_api_refuses_hostile_text_with_a_400(issuer, case, field):
    response = issuer.post("/api/v1/documents/", api_body(2, **{field: REFUSED[case]}), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Document.objects.exists()


@pytest.mark.parametrize("case", ["nul", "rlo"])
def test_api_refuses_hostile_grades_with_a_400(issuer, case):
    body = api_body(3, grades=[{"subject": REFUSED[case], "mark": "5"}])
    response = issuer.post("/api/v1/documents/", body, format="json")
    assert response.status_code == 400, response.content
    assert not Document.objects.exists()


@pytest.mark.parametrize("case", ["nul", "rlo", "long"])
def test_api_annul_refuses_a_hostile_reason_with_a_400(issuer, world, case):
    response = issuer.post(f"/api/v1/documents/{world.issued.pk}/annul/", {"reason": REFUSED[case]}, format="json")
    assert response.status_code == 400, response.content
    world.issued.refresh_from_db()
    assert world.issued.status == "issued"


# --- Exports -----------------------------------------------------------------------


@pytest.fixture
def formula_documents(alice_actor):
    for i, value in enumerate([*FORMULAS, SCRIPT]):
        services.document_create_and_issue(
            actor=alice_actor,
            graduate_data=graduate_data(last_name=value, middle_name=value, snils=make_snils(40 + i)),
            data=certificate_data(number=f"{52345678901200 + i}", registration_number=f"R-5{i}"),
        )


def test_csv_export_neutralises_formulas(alice_client, formula_documents):
    from tests.documents.cabinet_support import read_csv_response

    response = alice_client.get(reverse("cabinet:export", args=["csv"]))
    assert response.status_code == 200
    rows = read_csv_response(response)
    header, body = rows[0], rows[1:]
    last_names = [row[header.index("last_name")] for row in body]
    for value in FORMULAS:
        assert "'" + value in last_names
    assert SCRIPT in last_names  # not a formula: unchanged, the file is not HTML
    for row in body:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), cell


def test_xlsx_export_neutralises_formulas(alice_client, formula_documents):
    import io

    import openpyxl

    response = alice_client.get(reverse("cabinet:export", args=["xlsx"]))
    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    cells = [cell for row in workbook.active.iter_rows() for cell in row if cell.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    values = {c.value for c in cells}
    for value in FORMULAS:
        assert "'" + value in values
        assert value not in values


def test_import_error_report_neutralises_formulas(alice_client, django_capture_on_commit_callbacks):
    from tests.documents.cabinet_support import good_row, read_csv_response

    bad = good_row(1)
    bad[9] = "=1+1"  # an invalid SNILS that a spreadsheet would run
    _response, job = import_rows(
        [bad], client=alice_client, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks
    )
    rows = read_csv_response(alice_client.get(reverse("cabinet:job_errors", args=[job.pk])))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), cell


def test_the_exports_use_the_one_neutralising_function():
    from documents import exports, imports
    from registry.csv_safe import neutralise_formula

    assert imports.neutralize is neutralise_formula
    assert exports.neutralize is neutralise_formula


# --- Names typed by operators ------------------------------------------------------


def test_hostile_institution_names_are_escaped_wherever_they_are_shown(
    world, alice_actor, alice_client, verified_admin_client
):
    """An institution's names come from the admin; they reach the cabinet, the
    printable view, the public verification page, the admin and the dashboard."""
    from django.test import Client

    from documents.models import Delivery, DeliveryState
    from institutions.models import Institution

    Institution.objects.filter(pk=world.school.pk).update(short_name=SCRIPT, full_name=ATTRIBUTE_BREAKER + SCRIPT)
    alice_actor.institution.refresh_from_db()
    # Signed after the renaming, so the signed form (the verification page) carries the names too.
    document = services.document_create_and_issue(
        actor=alice_actor,
        graduate_data=graduate_data(snils=make_snils(41)),
        data=certificate_data(number="52345678901234"),
    )
    experiment = document.experiment
    # The dashboard names institutions with failed deliveries; its cached figures are by
    # experiment id, which another test (or an earlier run, in Redis) may have used.
    Delivery.objects.filter(document=document).update(state=DeliveryState.FAILED)
    cache.delete(dashboard_cache_key(experiment.pk))
    pages = [
        (alice_client, reverse("cabinet:home")),
        (alice_client, reverse("cabinet:document", args=[document.pk])),
        (alice_client, reverse("cabinet:document_print", args=[document.pk])),
        (Client(), reverse("verify-code", args=[document.verification_code])),
        (verified_admin_client, reverse("admin:institutions_institution_changelist")),
        (verified_admin_client, reverse("admin:institutions_institution_change", args=[world.school.pk])),
        (verified_admin_client, reverse("admin:documents_document_changelist")),
        (verified_admin_client, reverse("admin:experiment_participation_changelist")),
        (verified_admin_client, reverse("admin:experiment_experiment_dashboard") + f"?year={experiment.year}"),
    ]
    for client, url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for raw in RAW_MARKUP:
            assert raw not in html, f"raw markup {raw!r} on {url}"
        assert "&lt;script&gt;" in html, f"the name is not shown on {url}"
