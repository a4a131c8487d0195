"""The pipelined import (PostgreSQL): batch N+1 is prepared while a writer thread stores batch N.

These tests commit for real (transaction=True): the writer thread has its own
connection, which sees only committed rows. The writer is slowed down so that
the next batches are prepared while the earlier ones are still in flight.
"""

import io
import threading
import time

import pytest
from django.db import IntegrityError

from documents import imports
from documents.history import chain_for, history_verify
from documents.imports import import_job_create, import_job_run, rejection_reasons
from documents.models import Delivery, Document, Event, Graduate, ImportJobState
from documents.signing import build_payload, signature_is_valid
from documents.tasks import import_run
from tests.documents.cabinet_support import csv_bytes, good_row
from tests.factories import make_snils

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    settings.LANGUAGE_CODE = "en"
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)


@pytest.fixture
def writer_threads(monkeypatch):
    """The threads that stored batches; each write is slowed so the preparer runs ahead."""
    threads = []
    real_write = imports._BatchImporter.write

    def slow_write(self, batch):
        threads.append(threading.current_thread())
        time.sleep(0.05)
        return real_write(self, batch)

    monkeypatch.setattr(imports._BatchImporter, "write", slow_write)
    return threads


def create_job(actor, institution, rows):
    return import_job_create(actor=actor, institution=institution, fileobj=io.BytesIO(csv_bytes(rows)), name="a.csv")


def rejected_columns(job) -> dict[int, list[str]]:
    return {r.line: [field for field, _text in rejection_reasons(r, "en")] for r in job.rejections.all()}


def no_writer_left() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("import-writer-")]


@pytest.mark.parametrize("set_based", [True, False], ids=["keys-per-batch", "keys-per-row"])
def test_batches_in_flight_are_seen_by_the_next_ones(
    alice_actor, school, writer_threads, monkeypatch, settings, set_based
):
    """Whether the foreign keys are checked by the batch (registry.bulk.InsertedReferences) or by triggers."""
    settings.REGISTRY_SET_BASED_CHECKS = set_based
    redone = []  # batches redone one by one after a write lost a race: none here
    real_run = imports._BatchImporter.run
    monkeypatch.setattr(
        imports._BatchImporter, "run", lambda self, records: redone.append(records) or real_run(self, records)
    )
    same = make_snils(9500)
    rows = [
        good_row(1, snils=same),  # line 2, batch 1: a new graduate
        good_row(2, snils=same),  # line 3
        good_row(3, snils=same),  # line 4, batch 2: the graduate of batch 1, still in flight
        good_row(4, snils=same, last_name="Другой"),  # line 5: that SNILS, someone else
        good_row(1, snils=same),  # line 6, batch 3: line 2 again
        good_row(7, number=good_row(2)[2]),  # line 7: line 3's number, other data
        good_row(8, snils="112-233-445 96"),  # line 8, batch 4: a bad SNILS
        good_row(9),  # line 9
        good_row(10),  # line 10, batch 5
    ]
    job = import_job_run(job_id=create_job(alice_actor, school, rows).pk)

    assert writer_threads and all(t is not threading.main_thread() for t in writer_threads)
    assert no_writer_left() and not redone
    assert (job.state, job.processed_rows, job.imported, job.rejected, job.unchanged) == (
        ImportJobState.DONE,
        9,
        5,
        3,
        1,
    )
    assert rejected_columns(job) == {5: ["snils"], 7: ["number"], 8: ["snils"]}
    assert Graduate.objects.filter(institution=school).count() == 3
    documents = Document.objects.filter(institution=school).select_related(
        "institution", "graduate", "experiment", "signing_key"
    )
    assert len(documents) == 5
    assert Delivery.objects.filter(document__in=documents, action="publish").count() == 5
    assert len({d.status_list_index for d in documents}) == 5
    assert len({d.graduate_id for d in documents if d.number in {good_row(n)[2] for n in (1, 2, 3)}}) == 1
    for document in documents:
        assert document.signed_payload == build_payload(document)
        assert signature_is_valid(document.signed_payload, document.signature, document.signing_key)
    events = Event.objects.filter(object_type="importjob", object_id=job.pk).order_by("seq")
    assert [(e.data["batch"], e.data["count"]) for e in events] == [(1, 2), (2, 1), (4, 1), (5, 1)]
    [report] = history_verify(chains=[chain_for(school.pk)])
    assert report.fault is None

    again = import_job_run(job_id=create_job(alice_actor, school, rows).pk)
    assert (again.imported, again.unchanged, again.rejected) == (0, 6, 3)
    assert Document.objects.filter(institution=school).count() == 5


def test_a_failing_write_stops_the_job_after_its_committed_batches(alice_actor, school, writer_threads, monkeypatch):
    job = create_job(alice_actor, school, [good_row(n) for n in range(1, 8)])
    real_write = imports._BatchImporter._write
    calls = []

    def crash_on_second_batch(self, batch, job):
        calls.append(batch)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_write(self, batch, job)

    monkeypatch.setattr(imports._BatchImporter, "_write", crash_on_second_batch)
    with pytest.raises(RuntimeError, match="disk full"):
        import_job_run(job_id=job.pk)
    assert no_writer_left()
    job.refresh_from_db()
    assert (job.state, job.processed_rows, job.imported) == (ImportJobState.RUNNING, 2, 2)
    assert Document.objects.count() == 2 and Graduate.objects.count() == 2

    monkeypatch.setattr(imports._BatchImporter, "_write", real_write)
    import_run(job.pk)
    job.refresh_from_db()
    assert (job.state, job.processed_rows, job.imported) == (ImportJobState.DONE, 7, 7)
    assert Document.objects.count() == 7
    [report] = history_verify(chains=[chain_for(school.pk)])
    assert report.fault is None


def test_a_write_losing_a_race_is_redone_one_batch_at_a_time(alice_actor, school, writer_threads, monkeypatch):
    real_write = imports._BatchImporter._write
    calls = []

    def conflict_once(self, batch, job):
        calls.append(batch)
        if len(calls) == 2:
            raise IntegrityError("duplicate key value violates unique constraint")
        return real_write(self, batch, job)

    monkeypatch.setattr(imports._BatchImporter, "_write", conflict_once)
    same = make_snils(9600)
    rows = [good_row(n, snils=same) for n in range(1, 8)]
    job = import_job_run(job_id=create_job(alice_actor, school, rows).pk)

    assert no_writer_left()
    assert (job.state, job.processed_rows, job.imported, job.rejected) == (ImportJobState.DONE, 7, 7, 0)
    assert Graduate.objects.filter(institution=school).count() == 1
    assert Document.objects.filter(institution=school).values("graduate").distinct().count() == 1
    events = Event.objects.filter(object_type="importjob", object_id=job.pk).order_by("seq")
    assert [e.data["batch"] for e in events] == [1, 2, 3, 4]
    [report] = history_verify(chains=[chain_for(school.pk)])
    assert report.fault is None


def test_a_failure_while_preparing_keeps_the_batches_before_it(alice_actor, school, writer_threads, monkeypatch):
    real_prepare = imports._BatchImporter.prepare
    calls = []

    def crash_on_third_batch(self, records, start, **kwargs):
        calls.append(start)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real_prepare(self, records, start, **kwargs)

    monkeypatch.setattr(imports._BatchImporter, "prepare", crash_on_third_batch)
    job = create_job(alice_actor, school, [good_row(n) for n in range(1, 8)])
    with pytest.raises(RuntimeError, match="worker killed"):
        import_job_run(job_id=job.pk)
    assert no_writer_left()
    job.refresh_from_db()  # the two batches prepared before are stored whole
    assert (job.state, job.processed_rows, job.imported, Document.objects.count()) == (ImportJobState.RUNNING, 4, 4, 4)

    monkeypatch.setattr(imports._BatchImporter, "prepare", real_prepare)
    import_run(job.pk)
    job.refresh_from_db()
    assert (job.state, job.processed_rows, job.imported, Document.objects.count()) == (ImportJobState.DONE, 7, 7, 7)


def test_a_runner_stops_when_another_has_moved_the_job_on(alice_actor, school, monkeypatch):
    from documents.models import ImportJob

    real_write = imports._BatchImporter.write
    calls = []

    def overtaken_before_second_batch(self, batch):
        calls.append(batch)
        if len(calls) == 2:  # another runner commits the second batch first
            ImportJob.objects.filter(pk=self.job.pk).update(processed_rows=4)
        return real_write(self, batch)

    monkeypatch.setattr(imports._BatchImporter, "write", overtaken_before_second_batch)
    job = create_job(alice_actor, school, [good_row(n) for n in range(1, 8)])
    import_job_run(job_id=job.pk)

    assert no_writer_left() and len(calls) >= 2
    job.refresh_from_db()
    assert (job.state, job.processed_rows, job.imported) == (ImportJobState.RUNNING, 4, 2)
    assert Document.objects.count() == 2  # nothing of the batches this runner prepared after
