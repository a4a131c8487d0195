"""The year-end purge: refusals, dry run, exactly the experimental records, resumable, idempotent."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from documents.models import Delivery, Document, Event, Graduate
from experiment import purge, tasks
from experiment.models import Experiment, PurgeReport
from registry.actors import Actor
from registry.errors import NotAllowed
from tests.experiment.helpers import issued_document, row_counts
from tests.factories import ExperimentFactory, GraduateFactory, InstitutionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def exp2024(db):
    """The 2024 reference experiment (a data migration): ended, purge date 1 January 2025.

    A transactional test runs after others have flushed the database, data migrations
    included: it gets an experiment of the same shape.
    """
    return Experiment.objects.filter(year=2024).first() or ExperimentFactory(year=2024)


@pytest.fixture
def world(exp2024):
    """Two 2024 institutions with documents, and everything a purge must leave alone."""
    school = InstitutionFactory(kind="school")
    college = InstitutionFactory(kind="college")
    other_exp = ExperimentFactory(year=2023, starts_on=dt.date(2023, 3, 1), ends_on=dt.date(2023, 12, 31))
    w = {
        "school": school,
        "college": college,
        # Three experimental documents, two published at the portal.
        "exp_published": issued_document(experiment=exp2024, institution=school, portal_id="P-1"),
        "exp_unpublished": issued_document(experiment=exp2024, institution=school),
        "exp_college": issued_document(
            experiment=exp2024,
            institution=college,
            portal_id="P-2",
            kind="professional_retraining_diploma",
            number="DPO-1",
            programme_name="Управление",
            hours=72,
        ),
    }
    # A publication that failed for good: deleted with its document.
    Delivery.objects.create(document=w["exp_unpublished"], institution=school, action="publish", state="failed")
    # A graduate with an experimental and a regular document: keeps the regular one.
    shared = GraduateFactory(institution=school)
    w["exp_of_shared"] = issued_document(experiment=exp2024, graduate=shared, portal_id="P-3")
    w["regular_of_shared"] = issued_document(experiment=None, graduate=shared, portal_id="P-4")
    w["shared"] = shared
    # A regular document, a draft (no experiment yet), another experiment's document.
    w["regular"] = issued_document(experiment=None, institution=school, portal_id="P-5")
    w["other_exp"] = issued_document(experiment=other_exp, institution=school)
    w["draft"] = GraduateFactory(institution=school)
    from tests.factories import DocumentFactory

    w["draft_doc"] = DocumentFactory(graduate=w["draft"])
    # An experimental original replaced by a regular duplicate: the link is cleared.
    w["exp_original"] = issued_document(
        experiment=exp2024,
        institution=college,
        kind="vocational_diploma",
        series="123456",
        number="1234567",
        programme_code="09.02.07",
        programme_name="Программирование",
    )
    w["regular_duplicate"] = issued_document(
        experiment=None,
        graduate=w["exp_original"].graduate,
        kind="vocational_diploma",
        series="123456",
        number="7654321",
        programme_code="09.02.07",
        programme_name="Программирование",
        replaces=w["exp_original"],
    )
    return w


def run(*args) -> str:
    out = io.StringIO()
    call_command("purge_experiment", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def test_purge_refused_before_the_experiment_has_ended(world, exp2024):
    before = row_counts()
    with pytest.raises(CommandError, match="has not ended"):
        run(2024, "--as-of", "2024-12-31")
    with pytest.raises(NotAllowed):
        purge.experiment_purge(year=2024, actor=Actor.system("test"), as_of=dt.date(2024, 12, 31))
    assert row_counts() == before


def test_purge_of_a_running_experiment_is_refused(experiment):
    with pytest.raises(CommandError, match="has not ended"):
        run(experiment.year)


def test_dry_run_changes_nothing_and_prints_what_a_real_run_deletes(world):
    before = row_counts()
    dry = run(2024, "--dry-run", "--as-of", "2025-01-01")
    assert row_counts() == before
    assert "documents: 5" in dry
    assert "graduates: 3" in dry  # two graduates keep a regular document
    assert "deliveries: 4" in dry  # the three done publishes and the failed one
    assert "withdrawals queued: 3" in dry

    real = run(2024, "--as-of", "2025-01-01")
    assert dry.splitlines()[1:] == real.splitlines()[1:]


@pytest.fixture(params=[True, False], ids=["set-based-checks", "row-triggers"])
def key_checks(request, settings):
    """Both ways the purge's foreign keys are checked (the same on SQLite, which has only one)."""
    settings.REGISTRY_SET_BASED_CHECKS = request.param
    return request.param


def test_purge_deletes_exactly_the_experimental_records_and_keeps_the_rest(world, exp2024, key_checks):
    kept = [world[k].pk for k in ("regular_of_shared", "regular", "other_exp", "draft_doc", "regular_duplicate")]
    purged = [world[k].pk for k in ("exp_published", "exp_unpublished", "exp_college", "exp_of_shared", "exp_original")]
    purged_graduates = [world[k].graduate_id for k in ("exp_published", "exp_unpublished", "exp_college")]

    outcome = purge.experiment_purge(year=2024, actor=Actor.system("test"))

    assert not Document.objects.filter(experiment=exp2024).exists()
    assert not Document.objects.filter(pk__in=purged).exists()
    assert set(Document.objects.filter(pk__in=kept).values_list("pk", flat=True)) == set(kept)
    assert not Graduate.objects.filter(pk__in=purged_graduates).exists()
    assert Graduate.objects.filter(pk=world["shared"].pk).exists()
    assert Graduate.objects.filter(pk=world["draft"].pk).exists()
    assert Graduate.objects.filter(pk=world["exp_original"].graduate_id).exists()  # has the regular duplicate
    duplicate = Document.objects.get(pk=world["regular_duplicate"].pk)
    assert duplicate.replaces_id is None
    # The regular documents' deliveries are untouched.
    assert Delivery.objects.filter(document_id=world["regular"].pk, portal_id="P-5").exists()
    assert Delivery.objects.filter(document_id=world["regular_of_shared"].pk, portal_id="P-4").exists()

    report = outcome.report
    assert report.finished_at is not None
    assert report.documents_deleted == 5
    assert report.graduates_deleted == 3
    assert report.by_institution_kind == {"school": 3, "college": 2}
    assert report.by_document_kind == {
        "secondary_general_certificate": 3,
        "professional_retraining_diploma": 1,
        "vocational_diploma": 1,
    }
    assert report.triggered_by == "system:test"


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4])
def test_batches_of_any_size_delete_exactly_the_experiments_documents(world, exp2024, settings, batch_size):
    """A batch deletes an id range of the experiment's index: other documents between its ids stay,
    and the last, shorter batch takes what is left."""
    settings.REGISTRY_PURGE_BATCH_SIZE = batch_size
    before = set(Document.objects.exclude(experiment=exp2024).values_list("pk", flat=True))

    outcome = purge.experiment_purge(year=2024, actor=Actor.system("test"))

    assert not Document.objects.filter(experiment=exp2024).exists()
    assert set(Document.objects.values_list("pk", flat=True)) == before
    assert outcome.report.documents_deleted == 5
    assert outcome.report.graduates_deleted == 3
    assert outcome.report.by_institution_kind == {"school": 3, "college": 2}


def test_purge_queues_withdrawals_keeping_only_the_portal_ids(world):
    purge.experiment_purge(year=2024, actor=Actor.system("test"))
    withdrawals = Delivery.objects.filter(action="withdraw")
    # One bulk withdraw per institution, with the portal ids and nothing else of the documents.
    by_institution = {w.institution_id: w.portal_ids for w in withdrawals}
    assert len(withdrawals) == 2
    assert sorted(by_institution[world["school"].pk] + by_institution[world["college"].pk]) == ["P-1", "P-2", "P-3"]
    assert all(w.document_id is None and w.state == "pending" and w.portal_id == "" for w in withdrawals)
    # No delivery of a purged document is left behind.
    assert not Delivery.objects.filter(action="publish", portal_id__in=["P-1", "P-2", "P-3"]).exists()
    assert not Delivery.objects.filter(state="failed").exists()
    assert PurgeReport.objects.get().deliveries_deleted == 4


def test_purge_splits_an_institutions_withdrawals_into_bounded_rows(exp2024, monkeypatch):
    monkeypatch.setattr(purge, "WITHDRAW_BATCH", 2)
    school = InstitutionFactory()
    documents = [issued_document(experiment=exp2024, institution=school, portal_id=f"P-{n}") for n in range(5)]
    purge.experiment_purge(year=2024, actor=Actor.system("test"))
    rows = Delivery.objects.filter(action="withdraw").order_by("id")
    assert [len(row.portal_ids) for row in rows] == [2, 2, 1]
    assert [p for row in rows for p in row.portal_ids] == [f"P-{n}" for n in range(len(documents))]
    assert {row.institution_id for row in rows} == {school.pk}


def test_purge_does_not_withdraw_twice_what_was_already_withdrawn(exp2024):
    document = issued_document(experiment=exp2024, portal_id="P-9")
    Delivery.objects.create(document=document, action="withdraw", state="done", portal_id="P-9")
    purge.experiment_purge(year=2024, actor=Actor.system("test"))
    assert not Delivery.objects.exists()


def test_purge_records_events_with_counts_only(world, exp2024):
    purge.experiment_purge(year=2024, actor=Actor.system("test"))
    started = Event.objects.get(action="experiment.purge_started")
    finished = Event.objects.get(action="experiment.purge_finished")
    assert started.object_id == finished.object_id == exp2024.pk
    assert started.data["documents"] == 5
    assert finished.data["documents"] == 5 and finished.data["graduates"] == 3
    assert finished.actor_label == "system:test"


def test_purge_interrupted_after_its_first_batch_completes_on_the_next_run(world, exp2024, settings, monkeypatch):
    settings.REGISTRY_PURGE_BATCH_SIZE = 2

    class Killed(Exception):
        pass

    def die(**kwargs):
        raise Killed

    monkeypatch.setattr(purge, "purge_batch_done", die)
    with pytest.raises(Killed):
        purge.experiment_purge(year=2024, actor=Actor.system("test"))
    report = PurgeReport.objects.get()
    assert report.finished_at is None
    assert report.documents_deleted == 2
    assert Document.objects.filter(experiment=exp2024).count() == 3

    monkeypatch.undo()
    settings.REGISTRY_PURGE_BATCH_SIZE = 2
    outcome = purge.experiment_purge(year=2024, actor=Actor.system("test"))
    assert outcome.resumed
    assert PurgeReport.objects.get().pk == report.pk
    assert outcome.report.finished_at is not None
    assert outcome.report.documents_deleted == 5
    assert outcome.report.graduates_deleted == 3
    assert outcome.report.withdrawals_queued == 3
    assert not Document.objects.filter(experiment=exp2024).exists()
    assert Event.objects.filter(action="experiment.purge_resumed").count() == 1


def test_running_the_purge_twice_changes_nothing_the_second_time(world):
    first = run(2024)
    after_first = row_counts()
    second = run(2024)
    assert row_counts() == after_first
    assert "Nothing to purge" in second
    assert "Purged the 2024 experiment" in first


def test_beat_task_purges_only_due_experiments(exp2024, experiment):
    due = issued_document(experiment=exp2024)
    running = issued_document(experiment=experiment)
    tasks.purge_due_experiments()
    tasks.purge_due_experiments()
    assert not Document.objects.filter(pk=due.pk).exists()
    assert Document.objects.filter(pk=running.pk).exists()
    assert PurgeReport.objects.filter(experiment_year=2024).count() == 1
    assert not PurgeReport.objects.filter(experiment_year=experiment.year).exists()


def test_purge_task_by_year_is_idempotent(exp2024):
    issued_document(experiment=exp2024)
    tasks.purge_experiment(2024)
    tasks.purge_experiment(2024)
    assert not Document.objects.filter(experiment=exp2024).exists()
    assert PurgeReport.objects.count() == 1


def test_purge_report_holds_no_personal_data(world):
    report = purge.experiment_purge(year=2024, actor=Actor.system("test")).report
    text = repr({f.name: getattr(report, f.name) for f in PurgeReport._meta.concrete_fields}) + repr(
        list(Event.objects.filter(action__startswith="experiment.purge").values_list("data", flat=True))
    )
    for graduate_name in ("Иванов", "Петрова", "Сидоров", "Кузнецова"):
        assert graduate_name not in text


@pytest.mark.postgres
def test_a_privileged_role_checks_foreign_keys_per_batch_and_others_per_row(settings):
    """The suite's role is a superuser: the fast path is on, and it knows every key into the purged tables."""
    relations = (purge._document_relations(), purge._graduate_relations())
    references = purge._References.load(relations)
    assert references is not None
    # What the batch clears after deleting its documents is not checked again...
    assert references.documents == []
    # ...what points at graduates is: nothing clears it.
    assert references.graduates == [("documents_document", "graduate_id")]
    settings.REGISTRY_SET_BASED_CHECKS = False
    assert purge._References.load(relations) is None


@pytest.mark.postgres
def test_foreign_key_triggers_are_back_on_after_a_purge_inside_a_transaction(world, exp2024):
    """The batches switch the triggers off for themselves only, also inside a caller's transaction."""
    from django.db import IntegrityError, connection, transaction

    purge.experiment_purge(year=2024, actor=Actor.system("test"))

    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE documents_document SET graduate_id = -1 WHERE id = %s", [world["regular"].pk])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.django_db(transaction=True)  # each batch really commits, so deferred keys are checked
def test_a_reference_the_purge_leaves_behind_rolls_its_batch_back(world, exp2024, key_checks, monkeypatch):
    """Whichever way keys are checked, a batch that would leave a dangling reference commits nothing.

    Here a broken graduate step deletes every graduate of the batch, also the one whose
    regular document still points at them.
    """
    from registry.errors import Conflict

    def delete_all(cursor, graduate_ids, relations):
        return purge._delete_ids(cursor, purge._table(Graduate), graduate_ids)

    monkeypatch.setattr(purge, "_graduates_delete", delete_all)
    before = Document.objects.filter(experiment=exp2024).count()

    with pytest.raises(Conflict, match="nothing of the batch was deleted"):
        purge.experiment_purge(year=2024, actor=Actor.system("test"))

    assert Document.objects.filter(experiment=exp2024).count() == before
    assert Graduate.objects.filter(pk=world["shared"].pk).exists()
    assert PurgeReport.objects.get().documents_deleted == 0


def test_purge_takes_the_partner_idempotency_keys_of_its_documents(world):
    """A document issued through the partner API keeps its request's key (a hidden relation): it goes too."""
    from institutions.apikeys import api_key_create
    from institutions.models import ApiIdempotencyKey

    api_key, _ = api_key_create(name="ERP", scope="issue", institution=world["school"])
    purged = ApiIdempotencyKey.objects.create(
        api_key=api_key, key="req-1", request_hash="0" * 64, document=world["exp_published"]
    )
    kept = ApiIdempotencyKey.objects.create(
        api_key=api_key, key="req-2", request_hash="0" * 64, document=world["regular"]
    )

    purge.experiment_purge(year=2024, actor=Actor.system("test"))

    assert not ApiIdempotencyKey.objects.filter(pk=purged.pk).exists()
    assert ApiIdempotencyKey.objects.filter(pk=kept.pk, document=world["regular"]).exists()


# --- Through the outbox to the Gosuslugi emulator --------------------------------------


@pytest.fixture
def embedded_emulator(settings, tmp_path):
    """The in-process emulator, empty, with Celery tasks run in-process (the embedded shape)."""
    from documents.emulator import store
    from registry.celery import app

    settings.GOSUSLUGI_URL = ""
    settings.GOSUSLUGI_EMULATOR = True
    settings.GOSUSLUGI_EMULATOR_REDIS_URL = ""  # per test, not shared with parallel test processes
    settings.GOSUSLUGI_EMULATOR_DB = tmp_path / "gosuslugi-emulator.sqlite3"
    state = store()
    state.reset()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield state
    app.conf.task_always_eager = eager
    state.reset()


def test_purge_withdraws_the_documents_from_the_emulators_accounts(
    alice_actor, experiment, embedded_emulator, django_capture_on_commit_callbacks, settings
):
    from documents import delivery, gosuslugi
    from tests.documents.gosuslugi_support import issue_document

    settings.REGISTRY_REGULAR_OPERATION = True
    experimental = [issue_document(alice_actor) for _ in range(2)]
    snils = [document.graduate.snils for document in experimental]
    for document in experimental:
        row = Delivery.objects.get(document=document, action="publish")
        assert delivery.delivery_process(delivery_id=row.pk) == "done"
    assert all(len(gosuslugi.account_documents(snils=s)) == 1 for s in snils)
    # A regular document of another institution, placed in its holder's account: it stays.
    regular_school = InstitutionFactory()
    from tests.factories import MembershipFactory, UserFactory

    MembershipFactory(user=(signer := UserFactory()), institution=regular_school, role="signer")
    regular = issue_document(Actor.staff(user=signer, institution=regular_school, role="signer"))
    assert regular.experiment_id is None
    delivery.delivery_process(delivery_id=Delivery.objects.get(document=regular, action="publish").pk)
    regular_snils = regular.graduate.snils
    assert len(gosuslugi.account_documents(snils=regular_snils)) == 1

    # The purge commits its batches, then sends the withdrawals through the sweep.
    with django_capture_on_commit_callbacks(execute=True):
        outcome = purge.experiment_purge(year=experiment.year, actor=Actor.system("test"), as_of=experiment.purge_on)
    assert outcome.counts.withdrawals == 2

    assert all(gosuslugi.account_documents(snils=s) == [] for s in snils)
    assert len(gosuslugi.account_documents(snils=regular_snils)) == 1
    withdrawal = Delivery.objects.get(action="withdraw")
    assert withdrawal.state == "done" and withdrawal.document_id is None
    assert embedded_emulator.stats()["removed"] == 2


def test_the_daily_purge_is_in_the_beat_schedule(settings):
    from celery.schedules import crontab

    from registry.celery import app

    name = "experiment.tasks.purge_due_experiments"
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == name]
    assert len(entries) == 1
    schedule = entries[0]["schedule"]
    # Once a day at a fixed time, not every 24 hours counted from whenever beat started.
    assert isinstance(schedule, crontab)
    assert len(schedule.hour) == 1 and len(schedule.minute) == 1
    assert schedule.day_of_week == set(range(7)) and schedule.day_of_month == set(range(1, 32))
    assert app.tasks["experiment.tasks.purge_due_experiments"].name == tasks.purge_due_experiments.name


def test_a_malformed_as_of_date_is_a_usage_error():
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        run(2024, "--as-of", "2024-13-01")


@pytest.mark.postgres
def test_the_command_line_exit_codes_and_output(exp2024):
    """The contract as a scheduler sees it: 0 and the counts, 1 and a message on refusal, 2 on bad usage."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REGISTRY_DEMO": "1",
        "CELERY_BROKER_URL": "",
    }

    def command(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "purge_experiment", *args],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = command("2024", "--as-of", "2024-12-31")
    assert refused.returncode == 1
    # Commands speak the portal's default language, Russian.
    assert "не завершён" in refused.stderr and "Traceback" not in refused.stderr
    assert command("1999").returncode == 1
    bad = command("2024", "--as-of", "31.12.2024")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    dry = command("2024", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[1:] == ["documents: 0", "graduates: 0", "deliveries: 0", "withdrawals queued: 0"]


def test_the_purge_report_is_shown_read_only_in_the_admin(client, world):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    from tests.conftest import login_to_admin
    from tests.factories import UserFactory

    report = purge.experiment_purge(year=2024, actor=Actor.system("purge")).report
    operator = UserFactory(username="operator", is_staff=True)
    operator.user_permissions.set(Permission.objects.filter(content_type__app_label="experiment"))
    login_to_admin(client, operator)

    listing = client.get(reverse("admin:experiment_purgereport_changelist")).content.decode()
    assert "system:purge" in listing
    page = client.get(reverse("admin:experiment_purgereport_change", args=[report.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    # The counts by kind, by their names.
    assert "<td>Certificate of secondary general education (grade 11)</td><td>3</td>" in text
    assert "<td>College</td><td>2</td>" in text
    assert 'name="_save"' not in text  # nothing to edit
    assert client.get(reverse("admin:experiment_purgereport_add")).status_code == 403
    assert (
        client.post(reverse("admin:experiment_purgereport_delete", args=[report.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert PurgeReport.objects.filter(pk=report.pk).exists()
