"""The bulk import: encodings, formats, line numbers and reasons, idempotence, resuming."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from documents import imports
from documents.imports import import_job_create, import_job_run, rejection_reasons
from documents.models import Delivery, Document, DocumentStatus, Event, Graduate, ImportJob, ImportJobState
from documents.tasks import import_run
from registry.actors import SYSTEM, Actor
from tests.documents.cabinet_support import (
    HEADER_EN,
    HEADER_RU,
    csv_bytes,
    good_row,
    login,
    mixed_rows,
    read_csv_response,
    xlsx_bytes,
)
from tests.factories import DocumentFactory, GraduateFactory, make_snils


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LANGUAGE_CODE = "en"  # messages are compared in English, whatever the translations say


def run_import(actor, institution, content: bytes, name: str, dry_run=False) -> ImportJob:
    job = import_job_create(
        actor=actor, institution=institution, fileobj=io.BytesIO(content), name=name, dry_run=dry_run
    )
    return import_job_run(job_id=job.pk)


def rejected_columns(job) -> dict[int, list[str]]:
    return {r.line: [field for field, _text in rejection_reasons(r, "en")] for r in job.rejections.all()}


FILES = {
    "utf8-semicolon": lambda rows: (csv_bytes(rows), "docs.csv"),
    "utf8-comma": lambda rows: (csv_bytes(rows, delimiter=","), "docs.csv"),
    "utf8-bom": lambda rows: (csv_bytes(rows, encoding="utf-8-sig"), "docs.csv"),
    "cp1251-russian-header": lambda rows: (csv_bytes(rows, header=HEADER_RU, encoding="cp1251"), "docs.csv"),
    "xlsx": lambda rows: (xlsx_bytes(rows), "docs.xlsx"),
    "xlsx-russian-header": lambda rows: (xlsx_bytes(rows, header=HEADER_RU), "docs.xlsx"),
}


@pytest.mark.parametrize("variant", FILES)
def test_mixed_file_imports_good_rows_and_rejects_bad_ones_with_their_lines(variant, alice_actor, school):
    rows, expected = mixed_rows()
    content, name = FILES[variant](rows)

    job = run_import(alice_actor, school, content, name)

    assert job.state == ImportJobState.DONE
    assert (job.imported, job.rejected, job.unchanged) == (2, 5, 0)
    assert job.total_rows == job.processed_rows == 7
    columns = rejected_columns(job)
    assert set(columns) == set(expected)
    assert all(expected[line] in cols for line, cols in columns.items())
    issued = Document.objects.filter(institution=school).order_by("number")
    assert [d.number for d in issued] == ["11000000000001", "11000000000007"]
    assert all(d.status == DocumentStatus.ISSUED and d.signature and d.import_job_id == job.pk for d in issued)
    graduate = issued[0].graduate
    assert (graduate.last_name, graduate.middle_name, str(graduate.birth_date)) == ("Иванов", "Сергеевич", "2007-05-17")


def test_reasons_name_the_problem_in_the_readers_language(alice_actor, school):
    rows, _expected = mixed_rows()
    job = run_import(alice_actor, school, csv_bytes(rows), "docs.csv")
    reasons = {r.line: rejection_reasons(r, "en") for r in job.rejections.all()}

    assert reasons[3] == [("snils", "SNILS must be 11 digits (XXX-XXX-XXX YY) with a valid check number.")]
    assert reasons[4] == [("number", "Number must be exactly 14 digits.")]
    assert reasons[5] == [("issued_on", "Use the format YYYY-MM-DD or DD.MM.YYYY.")]
    assert ("kind", "An institution of this kind may not issue this kind of document.") in reasons[6]
    assert reasons[7] == [("number", "The file already has a different row with this kind, series and number.")]
    stored = job.rejections.get(line=3).reasons[0]["text"]
    assert set(stored) == {"ru", "en"}


def test_reimporting_the_same_file_creates_nothing_twice(alice_actor, school):
    rows, _expected = mixed_rows()
    content = csv_bytes(rows)
    run_import(alice_actor, school, content, "docs.csv")
    counts = (Document.objects.count(), Graduate.objects.count(), Delivery.objects.count())

    again = run_import(alice_actor, school, content, "docs.csv")

    assert (again.imported, again.unchanged, again.rejected) == (0, 2, 5)
    assert (Document.objects.count(), Graduate.objects.count(), Delivery.objects.count()) == counts


def test_a_number_held_by_another_institution_is_rejected(alice_actor, charlie_actor, school, other_school):
    run_import(charlie_actor, other_school, csv_bytes([good_row(1)]), "theirs.csv")

    job = run_import(alice_actor, school, csv_bytes([good_row(1)]), "mine.csv")

    assert (job.imported, job.rejected) == (0, 1)
    assert rejected_columns(job) == {2: ["number"]}
    assert not Document.objects.filter(institution=school).exists()


def test_changed_row_for_an_existing_number_is_rejected(alice_actor, school):
    run_import(alice_actor, school, csv_bytes([good_row(1)]), "a.csv")
    changed = good_row(1)
    changed[3] = "Р-другой"

    job = run_import(alice_actor, school, csv_bytes([changed]), "b.csv")

    assert (job.imported, job.unchanged, job.rejected) == (0, 0, 1)
    assert rejection_reasons(job.rejections.get(), "en")[0][0] == "number"


def test_existing_graduate_is_reused_and_a_snils_of_someone_else_is_refused(alice_actor, school):
    existing = GraduateFactory(institution=school, last_name="Петрова", birth_date="2007-05-17", snils=make_snils(9001))
    same_person = good_row(1, last_name="Петрова", snils=make_snils(9001))
    other_person = good_row(2, last_name="Сидоров", snils=make_snils(9001))

    job = run_import(alice_actor, school, csv_bytes([same_person, other_person]), "a.csv")

    assert (job.imported, job.rejected) == (1, 1)
    assert Document.objects.get(institution=school).graduate == existing
    assert rejected_columns(job) == {3: ["snils"]}


def test_clerk_upload_creates_drafts_that_are_not_signed(bob_actor, school):
    job = run_import(bob_actor, school, csv_bytes([good_row(1)]), "a.csv")

    document = Document.objects.get()
    assert job.imported == 1
    assert document.status == DocumentStatus.DRAFT and not document.signature
    assert not Delivery.objects.exists()


def test_signed_import_queues_publication_and_records_one_event_per_batch(alice_actor, school, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    job = run_import(alice_actor, school, csv_bytes([good_row(n) for n in range(1, 6)]), "a.csv")

    assert job.imported == 5
    assert Delivery.objects.filter(action="publish", institution=school).count() == 5
    events = Event.objects.filter(object_type="importjob", object_id=job.pk)
    assert [e.data["count"] for e in events.order_by("seq")] == [2, 2, 1]


def test_dry_run_checks_rows_and_writes_nothing(alice_actor, school):
    rows, _expected = mixed_rows()
    job = run_import(alice_actor, school, csv_bytes(rows), "docs.csv", dry_run=True)

    assert (job.imported, job.rejected) == (2, 5)
    assert not Document.objects.exists() and not Graduate.objects.exists()


def test_interrupted_job_resumes_after_its_committed_batches(alice_actor, school, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    job = import_job_create(
        actor=alice_actor,
        institution=school,
        fileobj=io.BytesIO(csv_bytes([good_row(n) for n in range(1, 6)])),
        name="a.csv",
    )
    real_write = imports._BatchImporter._write
    calls = []

    def crash_on_second_batch(self, rows, job):
        calls.append(rows)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real_write(self, rows, job)

    monkeypatch.setattr(imports._BatchImporter, "_write", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.state, job.processed_rows, Document.objects.count()) == (ImportJobState.RUNNING, 2, 2)

    monkeypatch.setattr(imports._BatchImporter, "_write", real_write)
    import_run(job.pk)
    import_run(job.pk)  # a finished job is left alone

    job.refresh_from_db()
    assert (job.state, job.processed_rows, job.imported) == (ImportJobState.DONE, 5, 5)
    assert Document.objects.count() == 5


def test_missing_required_columns_fail_the_job_with_a_reason(alice_actor, school):
    content = csv_bytes([["x"]], header=["kind", "number"])
    job = run_import(alice_actor, school, content, "a.csv")

    assert job.state == ImportJobState.FAILED
    with translation.override("en"):
        assert "registration_number" in imports.job_error_text(job)


def test_stage_closed_fails_a_signed_import_with_the_reason(alice_actor, school, experiment):
    experiment.stages.update(allows_forming=False)
    job = run_import(alice_actor, school, csv_bytes([good_row(1)]), "a.csv")

    assert job.state == ImportJobState.FAILED
    assert "does not allow forming" in imports.job_error_text(job, "en")
    assert not Document.objects.exists()


def test_formula_prefixed_cells_from_an_export_are_read_back(alice_actor, school):
    row = good_row(1)
    row[3] = "'-12/А"  # an export neutralised a registration number starting with "-"
    job = run_import(alice_actor, school, csv_bytes([row]), "a.csv")

    assert job.imported == 1
    assert Document.objects.get().registration_number == "-12/А"


def test_xlsx_bomb_is_refused_before_parsing(alice_actor, school):
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<" + "a" * (20 * 1024 * 1024) + "/>")
    job = run_import(alice_actor, school, out.getvalue(), "bomb.xlsx")

    assert job.state == ImportJobState.FAILED
    assert not Document.objects.exists()


def test_import_documents_command_prints_rejections_and_the_total_last(school, tmp_path, capsys):
    rows, expected = mixed_rows()
    path = tmp_path / "docs.csv"
    path.write_bytes(csv_bytes(rows, encoding="cp1251"))
    out = io.StringIO()

    call_command("import_documents", str(path), "--institution", school.inn, stdout=out)

    lines = out.getvalue().strip().splitlines()
    assert lines[-1] == "imported 2, rejected 5"
    for line in expected:
        assert any(text.startswith(f"line {line}:") for text in lines)
    assert "line 3: snils: SNILS must be 11 digits" in out.getvalue()
    assert Document.objects.filter(institution=school, status=DocumentStatus.ISSUED).count() == 2


def test_import_documents_command_dry_run_and_rerun(school, tmp_path):
    path = tmp_path / "docs.csv"
    path.write_bytes(csv_bytes([good_row(1), good_row(2)]))

    out = io.StringIO()
    call_command("import_documents", str(path), "--institution", school.inn, "--dry-run", stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "imported 2, rejected 0"
    assert not Document.objects.exists()

    call_command("import_documents", str(path), "--institution", school.inn, stdout=io.StringIO())
    out = io.StringIO()
    call_command("import_documents", str(path), "--institution", school.inn, stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "imported 0, rejected 0"
    assert Document.objects.count() == 2


def test_command_actor_matches_the_upload_service(school):
    actor = Actor(label="system:import_documents", institution=school, role=SYSTEM)
    job = run_import(actor, school, csv_bytes([good_row(1)]), "a.csv")
    assert job.imported == 1 and Document.objects.get().status == DocumentStatus.ISSUED


# --- Through the pages ------------------------------------------------------------


def upload(client, content: bytes, name: str, django_capture_on_commit_callbacks, **extra):
    """POST the upload form, then run the job as the worker would (eager or not)."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("cabinet:upload"), {"file": SimpleUploadedFile(name, content), **extra})
    job = ImportJob.objects.order_by("-id").first()
    if callbacks:
        import_run(job.pk)
    return response, job


def test_upload_page_runs_a_job_and_shows_its_summary(client, alice, school, django_capture_on_commit_callbacks):
    login(client, alice)
    rows, _expected = mixed_rows()
    response, job = upload(client, csv_bytes(rows), "docs.csv", django_capture_on_commit_callbacks)

    assert response.status_code == 302 and response.url == reverse("cabinet:job", args=[job.pk])
    page = client.get(response.url)
    assert page.status_code == 200
    assert 'id="rejections"' in page.content.decode()
    progress = client.get(reverse("cabinet:job_progress", args=[job.pk])).json()
    assert progress | {"error": ""} == progress
    assert (progress["finished"], progress["percent"], progress["imported"], progress["rejected"]) == (True, 100, 2, 5)


def test_error_report_lists_each_rejected_row_in_the_users_language(
    client, alice, school, django_capture_on_commit_callbacks
):
    login(client, alice)
    rows, expected = mixed_rows()
    _response, job = upload(client, csv_bytes(rows), "docs.csv", django_capture_on_commit_callbacks)

    report = client.get(reverse("cabinet:job_errors", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="en")

    assert report["Content-Type"].startswith("text/csv")
    table = read_csv_response(report)
    assert table[0] == ["line", "column", "reason"]
    assert {int(line) for line, _column, _reason in table[1:]} == set(expected)
    assert all([str(line), column] in [r[:2] for r in table[1:]] for line, column in expected.items())
    assert ["6", "kind", "An institution of this kind may not issue this kind of document."] in table


def test_upload_refuses_other_file_types_and_oversized_files(client, alice, school, settings):
    login(client, alice)
    response = client.post(reverse("cabinet:upload"), {"file": SimpleUploadedFile("docs.txt", b"kind;number")})
    assert response.status_code == 200 and not ImportJob.objects.exists()
    assert "CSV or XLSX" in response.content.decode() or response.context["form"].errors["file"]

    fake = SimpleUploadedFile("docs.xlsx", b"not a zip at all")
    response = client.post(reverse("cabinet:upload"), {"file": fake})
    assert response.status_code == 200 and not ImportJob.objects.exists()

    settings.REGISTRY_MAX_UPLOAD_BYTES = 100
    response = client.post(reverse("cabinet:upload"), {"file": SimpleUploadedFile("big.csv", b"x;" * 200)})
    assert response.status_code == 200 and response.context["form"].errors["file"]
    assert not ImportJob.objects.exists()


def test_upload_requires_csrf(alice, school):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    login(client, alice)
    response = client.post(reverse("cabinet:upload"), {"file": SimpleUploadedFile("a.csv", csv_bytes([good_row(1)]))})
    assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_other_institution_cannot_see_a_job_its_progress_or_its_errors(
    client, alice, charlie, school, django_capture_on_commit_callbacks
):
    login(client, alice)
    rows, _expected = mixed_rows()
    _response, job = upload(client, csv_bytes(rows), "docs.csv", django_capture_on_commit_callbacks)
    client.logout()
    login(client, charlie)

    for name in ("cabinet:job", "cabinet:job_progress", "cabinet:job_errors"):
        assert client.get(reverse(name, args=[job.pk])).status_code == 404
    assert job.original_name not in client.get(reverse("cabinet:upload")).content.decode()


def test_headers_match_the_contract():
    assert list(imports.COLUMNS) == [
        *HEADER_EN[:10],
        "programme_code",
        "programme_name",
        "qualification",
        "honours",
        "hours",
    ]


def test_existing_documents_do_not_disturb_the_import(alice_actor, school):
    DocumentFactory(graduate=GraduateFactory(institution=school))
    job = run_import(alice_actor, school, csv_bytes([good_row(1)]), "a.csv")
    assert job.imported == 1


def test_an_imported_document_shows_its_batch_in_its_history(client, alice, alice_actor, school, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    job = run_import(alice_actor, school, csv_bytes([good_row(n) for n in range(1, 4)]), "a.csv")
    last = Document.objects.order_by("id").last()
    login(client, alice)

    events = client.get(reverse("cabinet:document", args=[last.pk])).context["events"]

    assert [(e.object_id, e.data["batch"]) for e in events] == [(job.pk, 2)]


def test_signer_issues_the_drafts_of_a_clerks_upload_once(
    client, bob, alice, school, django_capture_on_commit_callbacks
):
    login(client, bob)
    _response, job = upload(
        client, csv_bytes([good_row(n) for n in range(1, 4)]), "a.csv", django_capture_on_commit_callbacks
    )
    page = client.get(reverse("cabinet:job", args=[job.pk])).content.decode()
    assert 'id="job-drafts"' in page and 'id="issue-drafts"' not in page
    client.post(reverse("cabinet:job_issue", args=[job.pk]))
    assert not Document.objects.filter(status=DocumentStatus.ISSUED).exists()
    client.logout()

    login(client, alice)
    assert client.get(reverse("cabinet:job_issue", args=[job.pk])).status_code == 405
    assert 'id="issue-drafts"' in client.get(reverse("cabinet:job", args=[job.pk])).content.decode()
    client.post(reverse("cabinet:job_issue", args=[job.pk]))
    client.post(reverse("cabinet:job_issue", args=[job.pk]))

    issued = Document.objects.filter(import_job=job)
    assert all(d.status == DocumentStatus.ISSUED and d.signature and d.status_list_index is not None for d in issued)
    assert Delivery.objects.filter(action="publish").count() == 3
    assert Event.objects.filter(action="documents.issued_from_import", object_id=job.pk).count() == 1


def test_other_institution_cannot_issue_a_jobs_drafts(client, bob, charlie, school, django_capture_on_commit_callbacks):
    login(client, bob)
    _response, job = upload(client, csv_bytes([good_row(1)]), "a.csv", django_capture_on_commit_callbacks)
    client.logout()
    login(client, charlie)
    assert client.post(reverse("cabinet:job_issue", args=[job.pk])).status_code == 404
    assert Document.objects.get().status == DocumentStatus.DRAFT


def test_upload_page_says_why_a_signer_cannot_import_while_the_stage_is_closed(client, alice, school, experiment):
    experiment.stages.update(allows_forming=False)
    login(client, alice)
    assert "does not allow forming" in client.get(reverse("cabinet:upload")).content.decode()

    response = client.post(reverse("cabinet:upload"), {"file": SimpleUploadedFile("a.csv", csv_bytes([good_row(1)]))})

    assert response.status_code == 200
    assert "does not allow forming" in " ".join(response.context["form"].errors["file"])
    assert not ImportJob.objects.exists()


def test_page_and_command_run_the_same_import_and_a_second_upload_creates_nothing(
    client, alice, school, tmp_path, django_capture_on_commit_callbacks
):
    rows, expected = mixed_rows()
    content = csv_bytes(rows, encoding="cp1251")
    path = tmp_path / "docs.csv"
    path.write_bytes(content)
    out = io.StringIO()
    call_command("import_documents", str(path), "--institution", school.inn, stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == f"imported 2, rejected {len(expected)}"
    counts = (Document.objects.count(), Graduate.objects.count(), Delivery.objects.count())
    login(client, alice)

    for _attempt in range(2):
        _response, job = upload(client, content, "docs.csv", django_capture_on_commit_callbacks)
        job.refresh_from_db()
        assert (job.imported, job.unchanged, job.rejected) == (0, 2, len(expected))
        assert set(rejected_columns(job)) == set(expected)
        page = client.get(reverse("cabinet:job", args=[job.pk])).content.decode()
        assert "The same file was already imported" in page

    assert (Document.objects.count(), Graduate.objects.count(), Delivery.objects.count()) == counts


def test_error_report_follows_the_readers_language(client, alice, school, django_capture_on_commit_callbacks):
    login(client, alice)
    rows, _expected = mixed_rows()
    _response, job = upload(client, csv_bytes(rows), "docs.csv", django_capture_on_commit_callbacks)
    rejection = job.rejections.get(line=3)
    # Distinct texts per language, whatever the state of the translations.
    rejection.reasons[0]["text"] = {"ru": "СНИЛС неверен", "en": "SNILS is wrong"}
    rejection.save(update_fields=["reasons"])
    url = reverse("cabinet:job_errors", args=[job.pk])

    russian = read_csv_response(client.get(url, HTTP_ACCEPT_LANGUAGE="ru"))
    english = read_csv_response(client.get(url, HTTP_ACCEPT_LANGUAGE="en"))

    assert ["3", "snils", "СНИЛС неверен"] in russian and ["3", "snils", "SNILS is wrong"] in english
    with translation.override("ru"):
        assert russian[0] == [translation.gettext("line"), translation.gettext("column"), translation.gettext("reason")]
    job_page = client.get(reverse("cabinet:job", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "СНИЛС неверен" in job_page


def test_xlsx_with_typed_cells_is_read_as_its_text(alice_actor, school):
    import datetime as dt

    row = good_row(1)
    row[2] = int(row[2])  # a number typed into a numeric cell
    row[4] = dt.date.today() - dt.timedelta(days=1)  # date cells
    row[8] = dt.datetime(2007, 5, 17)
    row[10] = False

    job = run_import(alice_actor, school, xlsx_bytes([row]), "typed.xlsx")

    assert (job.imported, job.rejected) == (1, 0), list(job.rejections.values_list("reasons", flat=True))
    document = Document.objects.get()
    assert (document.number, document.issued_on, str(document.graduate.birth_date)) == (
        "11000000000001",
        row[4],
        "2007-05-17",
    )
    assert not document.honours


def test_errors_spread_over_batch_boundaries_keep_their_exact_lines(alice_actor, school, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 3)
    rows = [good_row(n) for n in range(1, 12)]
    bad = {3: 1, 5: 3, 6: 4, 8: 6, 12: 10}  # line → index into rows (the header is line 1)
    for index in bad.values():
        rows[index][9] = "112-233-445 96"  # a SNILS with a wrong check number
    rows.insert(7, [""] * len(rows[0]))  # a blank row at line 9, in the third batch
    bad = {line + (line >= 9): index for line, index in bad.items()}  # lines after the blank row move down

    job = run_import(alice_actor, school, csv_bytes(rows), "a.csv")

    assert (job.imported, job.rejected, job.processed_rows, job.total_rows) == (6, 5, 12, 12)
    assert rejected_columns(job) == {line: ["snils"] for line in bad}
    imported = sorted(Document.objects.filter(institution=school).values_list("number", flat=True))
    assert imported == sorted(good_row(n + 1)[2] for n in range(11) if n not in bad.values())


def test_a_bulk_import_keeps_the_history_chain_verifiable(alice_actor, school, monkeypatch):
    from documents.history import chain_for, history_verify

    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    first = run_import(alice_actor, school, csv_bytes([good_row(n) for n in range(1, 6)]), "a.csv")
    second = run_import(alice_actor, school, csv_bytes([good_row(n) for n in range(6, 9)]), "b.csv")

    [report] = history_verify(chains=[chain_for(school.pk)])
    assert report.fault is None
    events = Event.objects.filter(object_type="importjob").order_by("seq")
    assert [(e.object_id, e.data["batch"], e.data["count"]) for e in events] == [
        (first.pk, 1, 2),
        (first.pk, 2, 2),
        (first.pk, 3, 1),
        (second.pk, 1, 2),
        (second.pk, 2, 1),
    ]


def test_imported_documents_are_signed_over_exactly_what_is_stored(alice_actor, school, monkeypatch):
    from documents.signing import build_payload, signature_is_valid

    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    run_import(alice_actor, school, csv_bytes([good_row(n) for n in range(1, 6)]), "a.csv")

    documents = Document.objects.filter(institution=school).select_related(
        "institution", "graduate", "experiment", "signing_key"
    )
    assert len(documents) == 5
    assert len({d.verification_code for d in documents}) == 5
    assert len({d.status_list_index for d in documents}) == 5
    for document in documents:
        assert document.signed_payload == build_payload(document)
        assert signature_is_valid(document.signed_payload, document.signature, document.signing_key)
        assert (document.copy_mark, document.grades, document.replaces_id) == ("original", [], None)
    deliveries = Delivery.objects.filter(document__in=documents)
    assert sorted(deliveries.values_list("document_id", flat=True)) == sorted(d.pk for d in documents)
    assert {(d.action, d.state, d.attempts, d.institution_id) for d in deliveries} == {
        ("publish", "pending", 0, school.pk)
    }
    assert len({d.idempotency_key for d in deliveries}) == 5


def test_graduates_new_in_one_batch_are_found_by_the_next(alice_actor, school, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    same = make_snils(9500)
    rows = [good_row(n, snils=same) for n in range(1, 5)] + [good_row(5, last_name="Другой", snils=same)]

    job = run_import(alice_actor, school, csv_bytes(rows), "a.csv")

    assert (job.imported, job.rejected) == (4, 1)
    assert rejected_columns(job) == {6: ["snils"]}
    assert Graduate.objects.filter(institution=school).count() == 1
    assert Document.objects.filter(institution=school).values("graduate").distinct().count() == 1


def test_the_any_lookup_matches_in(school):
    documents = [DocumentFactory(institution=school) for _ in range(3)]
    numbers = [documents[0].number, documents[2].number, "no-such-number"]

    assert set(Document.objects.filter(number__any=numbers)) == set(Document.objects.filter(number__in=numbers))
    assert set(Document.objects.filter(pk__any=[documents[1].pk])) == {documents[1]}
    assert not Document.objects.filter(number__any=[]).exists()
