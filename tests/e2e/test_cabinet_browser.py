"""The cabinet in headless Chromium (Debian's package) against a live server.

The import job runs eagerly on commit here, whether or not a broker is configured,
so the page's progress bar reaches the end without a worker.
"""

import pytest
from django.db import connections

from documents.models import Document, DocumentStatus, ImportJob
from tests.documents.cabinet_support import csv_bytes, good_row, mixed_rows
from tests.factories import (
    PASSWORD,
    DocumentFactory,
    GraduateFactory,
    InstitutionFactory,
    MembershipFactory,
    ParticipationFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def eager_tasks(settings, tmp_path):
    from registry.celery import app

    settings.MEDIA_ROOT = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    _fresh_producer_pools(app)
    yield
    app.conf.task_always_eager = previous


def _fresh_producer_pools(app):
    """Drop Celery's and kombu's cached pools: even an eager send takes a producer,
    and a test that switched brokers earlier in this process may have closed them."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls in
    # the test (not in the page) are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en"})
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        browser.close()
        # The ORM calls made while Playwright ran (this test's and its fixtures')
        # opened connections that the test database's teardown cannot see: Django
        # keeps them in context variables, and Playwright's greenlets run in a
        # context of their own. Left open, they stop the database from being dropped.
        connections.close_all()
        assert not errors, errors


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.form-card button[type=submit]")
    page.wait_for_url(f"{live_server.url}/cabinet/")


def test_signer_issues_a_document_and_opens_its_printable_view(
    transactional_db, live_server, eager_tasks, page, alice, school
):
    draft = DocumentFactory(graduate=GraduateFactory(institution=school), number="77000000000777")
    log_in(page, live_server, "alice")

    page.goto(f"{live_server.url}/cabinet/documents/{draft.pk}/")
    page.click("#issue-button")
    page.wait_for_selector("#document-status.issued")

    draft.refresh_from_db()
    assert draft.status == DocumentStatus.ISSUED
    page.click("#print-link")
    page.wait_for_selector("#qr svg")
    assert draft.verification_code in page.inner_text("#verification-url")


def test_document_form_adapts_to_the_kind(transactional_db, live_server, eager_tasks, page, alice, school):
    graduate = GraduateFactory(institution=school)
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/cabinet/graduates/{graduate.pk}/documents/new/")

    assert page.is_visible("fieldset.grades")
    assert not page.is_visible("[data-field=hours]")
    assert not page.is_visible("[data-field=programme_code]")
    page.click("[data-add-grade]")
    assert page.locator("input[name=grade_subject]").count() == 4


def test_college_form_switches_between_diploma_and_additional_education(
    transactional_db, live_server, eager_tasks, page, experiment
):
    college = InstitutionFactory(kind="college")
    ParticipationFactory(experiment=experiment, institution=college)
    MembershipFactory(user=UserFactory(username="dean"), institution=college, role="clerk")
    graduate = GraduateFactory(institution=college)
    log_in(page, live_server, "dean")
    page.goto(f"{live_server.url}/cabinet/graduates/{graduate.pk}/documents/new/")

    page.select_option("select[name=kind]", "vocational_diploma")
    assert page.is_visible("[data-field=programme_code]") and page.is_visible("[data-field=qualification]")
    assert page.is_visible("fieldset.grades") and not page.is_visible("[data-field=hours]")

    page.select_option("select[name=kind]", "qualification_upgrade_certificate")
    assert page.is_visible("[data-field=hours]") and page.is_visible("[data-field=programme_name]")
    assert not page.is_visible("[data-field=programme_code]") and not page.is_visible("fieldset.grades")

    page.fill("input[name=number]", "ПК-1")
    page.fill("input[name=registration_number]", "R-1")
    page.fill("input[name=programme_name]", "Охрана труда")
    page.fill("input[name=hours]", "72")
    page.click("form[data-kind-form] button[type=submit]")
    page.wait_for_selector("#document-status.draft")
    document = Document.objects.get()
    assert (document.kind, document.hours, document.grades) == ("qualification_upgrade_certificate", 72, [])


class WorkerKilled(Exception):
    pass


def test_upload_shows_progress_to_the_end_and_the_rejected_rows(
    transactional_db, live_server, eager_tasks, page, alice, school, tmp_path, monkeypatch
):
    """The job page polls the job's state and moves its bar while a worker runs it.

    No worker runs here: the test plays the worker in between the page's polls
    (the page's clock is frozen, so page and worker never touch the database at
    once) and first stops the job after its first batch, as a killed worker would.
    """
    from documents import imports

    monkeypatch.setattr(imports, "import_job_dispatch", lambda job_id: None)
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    rows, expected = mixed_rows()
    path = tmp_path / "graduates.csv"
    path.write_bytes(csv_bytes([*rows, good_row(8)], encoding="cp1251"))
    log_in(page, live_server, "alice")
    page.clock.install()

    page.goto(f"{live_server.url}/cabinet/imports/")
    page.set_input_files("input[name=file]", str(path))
    with page.expect_response(lambda r: r.url.endswith("/progress/")):
        page.click("#upload-form button[type=submit]")
    assert page.get_attribute("[data-job-progress]", "data-finished") == "0"
    assert page.inner_text("[data-field=percent]") == "0"
    assert page.is_hidden("#error-report")
    job = ImportJob.objects.get()

    # Storing a batch is the step both the sequential and the pipelined import take.
    real_write = imports._BatchImporter._write
    batches = []

    def killed_after_the_first_batch(self, batch, job):
        batches.append(batch)
        if len(batches) == 2:
            raise WorkerKilled
        return real_write(self, batch, job)

    monkeypatch.setattr(imports._BatchImporter, "_write", killed_after_the_first_batch)
    with pytest.raises(WorkerKilled):
        imports.import_job_run(job_id=job.pk)
    with page.expect_response(lambda r: r.url.endswith("/progress/")):
        page.clock.run_for(1500)
    # A selector, not wait_for_function: polling a JS expression needs eval, which the
    # page's Content-Security-Policy forbids.
    page.wait_for_selector("[data-field=percent]:text-is('25')")
    assert page.inner_text("[data-field=processed]") == "2"
    assert page.inner_text("[data-field=total]") == "8"
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "25"
    assert page.get_attribute("[data-job-progress]", "data-finished") == "0"

    monkeypatch.setattr(imports._BatchImporter, "_write", real_write)
    imports.import_job_run(job_id=job.pk)
    with page.expect_navigation():  # finished with rejected rows: the page reloads once to list them
        page.clock.run_for(1500)
    page.wait_for_selector("[data-job-progress][data-finished='1']")

    assert page.inner_text("[data-field=percent]") == "100"
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "100"
    assert page.inner_text("[data-field=imported]") == "3"
    assert page.inner_text("[data-field=rejected]") == str(len(expected))
    assert page.is_visible("#error-report")
    assert page.locator("#rejections tbody tr, #rejections > tr").count() >= len(expected)
    job.refresh_from_db()
    assert (job.imported, job.rejected) == (3, len(expected))
    assert Document.objects.filter(institution=school, status=DocumentStatus.ISSUED).count() == 3
