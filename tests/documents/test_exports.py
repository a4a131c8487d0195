"""Exports of an institution's documents: the import format, round-trips, no formula injection."""

import io

import openpyxl
import pytest
from django.urls import reverse

from documents.imports import COLUMNS, import_job_create, import_job_run
from documents.models import Delivery, Document, DocumentStatus, Event, Graduate
from documents.services import document_issue
from tests.documents.cabinet_support import login, read_csv_response
from tests.factories import DocumentFactory, GraduateFactory, make_snils


@pytest.fixture(autouse=True)
def fast_settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LANGUAGE_CODE = "en"
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def documents(school, alice_actor):
    first = GraduateFactory(institution=school, last_name='=HYPERLINK("http://evil")', snils=make_snils(11))
    second = GraduateFactory(
        institution=school, last_name="Петрова", first_name="@Мария", middle_name="", snils=make_snils(12)
    )
    made = [
        DocumentFactory(graduate=first, number="77000000000001", registration_number="-12/А"),
        DocumentFactory(graduate=second, number="77000000000002", registration_number="-7"),
    ]
    return [document_issue(actor=alice_actor, document=d) for d in made]


FIELDS = ("kind", "series", "number", "registration_number", "issued_on", "programme_code", "programme_name", "hours")


def snapshot(institution):
    return sorted(
        (
            *(getattr(d, f) for f in FIELDS),
            d.honours,
            d.graduate.last_name,
            d.graduate.first_name,
            d.graduate.middle_name,
            d.graduate.birth_date,
            d.graduate.snils,
        )
        for d in Document.objects.filter(institution=institution).select_related("graduate")
    )


def wipe(institution):
    Delivery.objects.all().delete()
    Document.objects.filter(institution=institution).delete()
    Graduate.objects.filter(institution=institution).delete()


def test_csv_export_uses_the_import_columns_and_masks_snils_by_default(client, bob, documents):
    login(client, bob)
    response = client.get(reverse("cabinet:export", args=["csv"]))
    table = read_csv_response(response)
    assert response["Content-Disposition"].startswith("attachment")
    assert table[0] == list(COLUMNS)
    assert len(table) == 3
    body = "\n".join(";".join(r) for r in table)
    assert make_snils(11) not in body and "***-***-*** " + make_snils(11)[9:] in body


def test_cells_that_would_run_as_formulas_are_neutralised(client, alice, documents):
    login(client, alice)
    table = read_csv_response(client.get(reverse("cabinet:export", args=["csv"]), {"snils": "full"}))
    cells = [cell for row in table[1:] for cell in row]
    assert '\'=HYPERLINK("http://evil")' in cells and "'-12/А" in cells and "'@Мария" in cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)

    workbook = openpyxl.load_workbook(
        io.BytesIO(b"".join(client.get(reverse("cabinet:export", args=["xlsx"])).streaming_content))
    )
    values = [c.value for row in workbook.active.iter_rows(min_row=2) for c in row]
    assert all(c.data_type != "f" for row in workbook.active.iter_rows() for c in row)
    assert '\'=HYPERLINK("http://evil")' in values


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_full_export_round_trips_through_the_import(client, alice, alice_actor, school, documents, fmt):
    before = snapshot(school)
    login(client, alice)
    content = b"".join(client.get(reverse("cabinet:export", args=[fmt]), {"snils": "full"}).streaming_content)

    same = import_job_run(
        job_id=import_job_create(actor=alice_actor, institution=school, fileobj=io.BytesIO(content), name=f"e.{fmt}").pk
    )
    assert (same.imported, same.unchanged, same.rejected) == (0, 2, 0)

    wipe(school)
    again = import_job_run(
        job_id=import_job_create(actor=alice_actor, institution=school, fileobj=io.BytesIO(content), name=f"e.{fmt}").pk
    )
    assert (again.imported, again.rejected) == (2, 0)
    assert snapshot(school) == before
    assert all(d.status == DocumentStatus.ISSUED for d in Document.objects.filter(institution=school))


def test_full_export_is_for_signers_and_is_recorded(client, bob, alice, school, documents):
    login(client, bob)
    assert client.get(reverse("cabinet:export", args=["csv"]), {"snils": "full"}).status_code == 403
    client.logout()
    login(client, alice)
    response = client.get(reverse("cabinet:export", args=["csv"]), {"snils": "full"})
    assert response.status_code == 200
    assert make_snils(11) in b"".join(response.streaming_content).decode("utf-8-sig")
    assert Event.objects.filter(action="documents.exported_with_snils", institution_id_ref=school.pk).exists()


def test_export_holds_only_the_current_institutions_documents(client, charlie, other_school, documents):
    GraduateFactory(institution=other_school)
    login(client, charlie)
    for fmt in ("csv", "xlsx"):
        content = b"".join(client.get(reverse("cabinet:export", args=[fmt]), {"snils": "full"}).streaming_content)
        if fmt == "csv":
            assert content.decode("utf-8-sig").strip().splitlines() == [";".join(COLUMNS)]
        else:
            rows = list(openpyxl.load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
            assert rows == [tuple(COLUMNS)]


def test_export_filters_by_status(client, alice, school, documents):
    DocumentFactory(graduate=documents[0].graduate, number="77000000000003")
    login(client, alice)
    table = read_csv_response(client.get(reverse("cabinet:export", args=["csv"]), {"status": "draft"}))
    assert [row[2] for row in table[1:]] == ["77000000000003"]


def test_export_holds_what_the_filtered_list_shows(client, alice, school, documents):
    login(client, alice)
    query = {"q": "Петрова", "status": "issued"}
    shown = [d.number for d in client.get(reverse("cabinet:documents"), query).context["page"]]
    table = read_csv_response(client.get(reverse("cabinet:export", args=["csv"]), query))
    assert [row[2] for row in table[1:]] == shown == ["77000000000002"]


def test_unknown_export_format_is_404(client, alice, school):
    login(client, alice)
    assert client.get(reverse("cabinet:export", args=["pdf"])).status_code == 404
