"""The outbox: claiming, delivering, retrying and withdrawing, against the in-process emulator."""

import datetime as dt
import logging

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from documents import delivery, gosuslugi, services, tasks
from documents.models import Delivery, DeliveryState, Document
from documents.signing import signed_form
from registry.celery import app as celery_app
from tests.conftest import login_to_admin
from tests.documents import gosuslugi_support as support
from tests.documents.gosuslugi_support import issue_document
from tests.factories import DocumentFactory, GraduateFactory

pytestmark = pytest.mark.django_db
emulator_state = support.emulator_state


@pytest.fixture(autouse=True)
def embedded(settings, emulator_state):
    """The embedded shape: in-process emulator, tasks run eagerly, no real waiting."""
    settings.GOSUSLUGI_URL = ""
    settings.GOSUSLUGI_EMULATOR = True
    settings.GOSUSLUGI_BACKOFF_BASE = 1.0
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield emulator_state
    celery_app.conf.task_always_eager = eager


def publish_row(document) -> Delivery:
    return Delivery.objects.get(document=document, action="publish")


def make_due(row: Delivery) -> None:
    Delivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def account(document) -> list[dict]:
    return gosuslugi.account_documents(snils=document.graduate.snils)


def test_a_publish_row_is_delivered_once_into_the_holders_account(alice_actor, embedded):
    document = issue_document(alice_actor)
    row = publish_row(document)
    assert row.state == DeliveryState.PENDING

    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.DONE

    row.refresh_from_db()
    assert row.portal_id and row.delivered_at and row.attempts == 1 and row.claimed_until is None
    placed = account(document)
    assert [d["id"] for d in placed] == [row.portal_id]
    assert placed[0]["document"]["payload"]["id"] == document.pk and placed[0]["document"]["signature"]


def test_running_deliver_twice_delivers_once(alice_actor, embedded):
    row = publish_row(issue_document(alice_actor))
    tasks.deliver(row.pk)
    tasks.deliver(row.pk)
    assert embedded.stats() == {"created": 1, "replayed": 0, "removed": 0, "placed": 1}


def test_a_row_held_by_another_worker_is_left_alone(alice_actor, embedded):
    row = publish_row(issue_document(alice_actor))
    Delivery.objects.filter(pk=row.pk).update(
        state=DeliveryState.IN_PROGRESS, claimed_until=timezone.now() + dt.timedelta(minutes=1)
    )
    assert delivery.delivery_process(delivery_id=row.pk) is None
    assert embedded.stats()["created"] == 0


def test_an_expired_lease_is_taken_over_and_the_key_prevents_a_second_copy(alice_actor, embedded):
    document = issue_document(alice_actor)
    row = publish_row(document)
    # A worker posted, then died before writing the outcome.
    gosuslugi.publish(
        snils=document.graduate.snils, document=signed_form(document), idempotency_key=str(row.idempotency_key)
    )
    Delivery.objects.filter(pk=row.pk).update(
        state=DeliveryState.IN_PROGRESS, attempts=1, claimed_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.DONE
    assert len(account(document)) == 1
    assert embedded.stats()["replayed"] == 1


def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_new_owner(alice_actor):
    row = publish_row(issue_document(alice_actor))
    now = timezone.now()
    first_lease = now + dt.timedelta(seconds=1)
    assert delivery._claim([row.pk], now=now, until=first_lease) == [row.pk]
    later = now + dt.timedelta(seconds=2)
    assert delivery._claim([row.pk], now=later, until=later + dt.timedelta(seconds=30)) == [row.pk]
    delivery._finish({row.pk: delivery._Outcome(DeliveryState.FAILED, error="stale")}, until=first_lease)
    row.refresh_from_db()
    assert row.state == DeliveryState.IN_PROGRESS and row.attempts == 2 and row.last_error == ""


def test_a_claim_takes_only_due_rows(alice_actor):
    due, future = publish_row(issue_document(alice_actor)), publish_row(issue_document(alice_actor))
    Delivery.objects.filter(pk=future.pk).update(next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    now = timezone.now()
    assert delivery._claim([due.pk, future.pk], now=now, until=now + dt.timedelta(seconds=30)) == [due.pk]
    assert delivery._claim([due.pk, future.pk], now=now, until=now + dt.timedelta(seconds=30)) == []


def test_a_server_error_backs_off_and_counts_the_attempt(alice_actor, embedded):
    row = publish_row(issue_document(alice_actor))
    gosuslugi.faults_set(error_rate=1)
    before = timezone.now()

    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.PENDING

    row.refresh_from_db()
    assert row.attempts == 1 and row.last_error.startswith("HTTP 503") and row.claimed_until is None
    assert before <= row.next_attempt_at <= before + dt.timedelta(seconds=2)
    if row.next_attempt_at > timezone.now():
        assert delivery.delivery_process(delivery_id=row.pk) is None


def test_after_the_last_attempt_the_row_fails_and_stays_failed(alice_actor, settings):
    settings.GOSUSLUGI_MAX_ATTEMPTS = 2
    row = publish_row(issue_document(alice_actor))
    gosuslugi.faults_set(error_rate=1)
    delivery.delivery_process(delivery_id=row.pk)
    make_due(row)
    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.FAILED
    row.refresh_from_db()
    assert row.attempts == 2 and "503" in row.last_error
    make_due(row)
    assert delivery.delivery_process(delivery_id=row.pk) is None


def test_retry_after_is_a_floor_for_the_delay(alice_actor, settings, embedded):
    settings.GOSUSLUGI_BACKOFF_BASE = 0.0
    rows = [publish_row(issue_document(alice_actor)) for _ in range(4)]
    gosuslugi.faults_set(rate_limit_per_s=1)
    for row in rows:
        started = timezone.now()
        if delivery.delivery_process(delivery_id=row.pk) == DeliveryState.PENDING:
            row.refresh_from_db()
            assert "429" in row.last_error
            assert row.next_attempt_at >= started + dt.timedelta(seconds=1)
            return
    pytest.fail("the rate limit never answered 429")


def test_a_refused_document_fails_at_once_without_retrying(alice_actor, school):
    graduate = GraduateFactory(institution=school, snils="11111111100")
    draft = DocumentFactory(graduate=graduate)
    row = publish_row(services.document_issue(actor=alice_actor, document=draft))

    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.FAILED

    row.refresh_from_db()
    assert row.attempts == 1 and row.last_error.startswith("HTTP 400") and "11111111100" not in row.last_error
    make_due(row)
    assert delivery.delivery_process(delivery_id=row.pk) is None


def test_annul_after_delivery_withdraws_from_the_account(alice_actor, embedded):
    document = issue_document(alice_actor)
    delivery.delivery_process(delivery_id=publish_row(document).pk)
    assert len(account(document)) == 1

    services.document_annul(actor=alice_actor, document=document, reason="ошибка")
    withdraw = Delivery.objects.get(document=document, action="withdraw")
    assert withdraw.portal_id == publish_row(document).portal_id

    assert delivery.delivery_process(delivery_id=withdraw.pk) == DeliveryState.DONE
    assert account(document) == []
    assert embedded.stats()["removed"] == 1


def test_a_withdraw_already_gone_at_the_portal_is_done(alice_actor, embedded):
    document = issue_document(alice_actor)
    delivery.delivery_process(delivery_id=publish_row(document).pk)
    gosuslugi.withdraw(portal_id=publish_row(document).portal_id)
    services.document_annul(actor=alice_actor, document=document, reason="ошибка")
    withdraw = Delivery.objects.get(document=document, action="withdraw")
    assert delivery.delivery_process(delivery_id=withdraw.pk) == DeliveryState.DONE


def test_a_withdraw_of_a_never_published_document_is_skipped(school):
    document = DocumentFactory(graduate=GraduateFactory(institution=school))
    [row] = delivery.deliveries_enqueue(documents=[document], action="withdraw")
    assert row.state == DeliveryState.SKIPPED


def test_annulling_before_the_publication_was_sent_cancels_it(alice_actor, embedded):
    document = issue_document(alice_actor)
    services.document_annul(actor=alice_actor, document=document, reason="ошибка")
    withdraw = Delivery.objects.get(document=document, action="withdraw")

    assert delivery.delivery_process(delivery_id=withdraw.pk) == DeliveryState.SKIPPED

    assert publish_row(document).state == DeliveryState.SKIPPED
    assert delivery.delivery_process(delivery_id=publish_row(document).pk) is None
    assert embedded.stats()["created"] == 0


def test_a_withdraw_waits_for_a_publication_that_may_have_reached_the_portal(alice_actor, embedded):
    document = issue_document(alice_actor)
    publication = publish_row(document)
    gosuslugi.faults_set(error_rate=1)
    delivery.delivery_process(delivery_id=publication.pk)
    services.document_annul(actor=alice_actor, document=document, reason="ошибка")
    withdraw = Delivery.objects.get(document=document, action="withdraw")

    assert delivery.delivery_process(delivery_id=withdraw.pk) == DeliveryState.PENDING
    withdraw.refresh_from_db()
    assert withdraw.attempts == 0

    gosuslugi.faults_set()
    make_due(publication)
    assert delivery.delivery_process(delivery_id=publication.pk) == DeliveryState.DONE
    make_due(withdraw)
    assert delivery.delivery_process(delivery_id=withdraw.pk) == DeliveryState.DONE
    assert account(document) == []


def placed_documents(alice_actor, n: int) -> list[Document]:
    documents = [issue_document(alice_actor) for _ in range(n)]
    for document in documents:
        assert delivery.delivery_process(delivery_id=publish_row(document).pk) == DeliveryState.DONE
    return documents


def bulk_withdraw(documents) -> Delivery:
    """A bulk withdraw row as the purge writes it: portal ids and the institution only."""
    return Delivery.objects.create(
        institution_id=documents[0].institution_id,
        action="withdraw",
        portal_ids=[publish_row(d).portal_id for d in documents],
    )


def test_a_bulk_withdraw_removes_every_placement_through_faults(alice_actor, embedded):
    documents = placed_documents(alice_actor, 8)
    row = bulk_withdraw(documents)
    gosuslugi.faults_set(error_rate=0.3)
    left = list(row.portal_ids)
    for _ in range(40):
        if delivery.delivery_process(delivery_id=row.pk) == DeliveryState.DONE:
            break
        row.refresh_from_db()
        # Only what failed stays, and nothing withdrawn is tried again.
        assert set(row.portal_ids) <= set(left) and row.last_error
        left = row.portal_ids
        make_due(row)
    else:
        pytest.fail("the bulk withdraw never finished")
    gosuslugi.faults_set()
    assert all(account(d) == [] for d in documents)
    assert embedded.stats()["removed"] == 8


def test_a_failing_portal_ends_a_bulk_attempt_early_and_keeps_every_placement(alice_actor, embedded):
    documents = placed_documents(alice_actor, 5)
    row = bulk_withdraw(documents)
    gosuslugi.faults_set(error_rate=1)

    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.PENDING

    row.refresh_from_db()
    assert row.portal_ids == [publish_row(d).portal_id for d in documents]
    assert row.attempts == 1 and "5" in row.last_error and "503" in row.last_error
    assert row.next_attempt_at > timezone.now() - dt.timedelta(seconds=1)
    gosuslugi.faults_set()
    assert all(len(account(d)) == 1 for d in documents)


def test_a_bulk_attempt_that_removed_some_does_not_use_up_the_attempts(alice_actor, embedded, settings, monkeypatch):
    settings.GOSUSLUGI_MAX_ATTEMPTS = 1
    documents = placed_documents(alice_actor, 6)
    row = bulk_withdraw(documents)
    first, *flaky = row.portal_ids
    failed_once: set[str] = set()
    real_withdraw = gosuslugi.withdraw

    def portal(*, portal_id):
        # Every placement but the first fails once, then goes: the first attempt
        # removes one and stops after three failures in a row.
        if portal_id != first and portal_id not in failed_once:
            failed_once.add(portal_id)
            raise gosuslugi.RetryableError("HTTP 503", status=503)
        return real_withdraw(portal_id=portal_id)

    monkeypatch.setattr(gosuslugi, "withdraw", portal)

    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.PENDING
    row.refresh_from_db()
    assert row.portal_ids == flaky and row.attempts == 0
    # The next attempt removes the three that failed before; the last two fail their once.
    make_due(row)
    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.PENDING
    row.refresh_from_db()
    assert row.portal_ids == flaky[3:] and row.attempts == 0
    make_due(row)
    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.DONE
    assert all(account(d) == [] for d in documents)


def test_a_final_error_fails_a_bulk_withdraw_with_what_is_left(alice_actor, embedded, monkeypatch):
    documents = placed_documents(alice_actor, 3)
    row = bulk_withdraw(documents)
    _first, refused, last = row.portal_ids
    real_withdraw = gosuslugi.withdraw

    def portal(*, portal_id):
        # The portal refuses one placement for good (a 4xx other than 404).
        if portal_id == refused:
            raise gosuslugi.FinalError("HTTP 409: the placement is locked", status=409)
        return real_withdraw(portal_id=portal_id)

    monkeypatch.setattr(gosuslugi, "withdraw", portal)

    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.FAILED

    row.refresh_from_db()
    # The first one went; the refused one and the one after it wait for an operator.
    assert row.portal_ids == [refused, last]
    assert refused in row.last_error and "409" in row.last_error
    assert [len(account(d)) for d in documents] == [0, 1, 1]
    make_due(row)
    assert delivery.delivery_process(delivery_id=row.pk) is None


def test_a_bulk_withdraw_out_of_time_waits_for_the_next_claim_without_using_an_attempt(alice_actor, embedded, settings):
    documents = placed_documents(alice_actor, 2)
    row = bulk_withdraw(documents)
    settings.GOSUSLUGI_LEASE = 0  # no time budget at all: not a single call

    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.PENDING

    row.refresh_from_db()
    assert row.attempts == 0 and len(row.portal_ids) == 2 and row.next_attempt_at <= timezone.now()
    settings.GOSUSLUGI_LEASE = 30
    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.DONE
    assert all(account(d) == [] for d in documents)


def test_a_stage_without_transfer_holds_the_publication_back(alice_actor, experiment, embedded):
    document = issue_document(alice_actor)
    experiment.stages.update(allows_transfer=False)
    row = publish_row(document)

    assert delivery.delivery_process(delivery_id=row.pk) == DeliveryState.PENDING

    row.refresh_from_db()
    assert row.attempts == 0 and row.next_attempt_at > timezone.now() + dt.timedelta(hours=1)
    assert embedded.stats()["created"] == 0


def test_the_sweep_delivers_due_rows_in_bounded_runs(alice_actor, embedded):
    rows = [publish_row(issue_document(alice_actor)) for _ in range(3)]
    Delivery.objects.filter(pk=rows[2].pk).update(next_attempt_at=timezone.now() + dt.timedelta(minutes=5))

    assert delivery.deliveries_sweep(limit=1) == (1, rows[0].pk)
    assert delivery.deliveries_sweep(after_id=rows[0].pk, limit=1) == (1, rows[1].pk)
    assert delivery.deliveries_sweep(after_id=rows[1].pk, limit=1) == (0, None)

    states = dict(Delivery.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", "state"))
    assert states == {rows[0].pk: "done", rows[1].pk: "done", rows[2].pk: "pending"}


def test_the_sweep_task_runs_twice_harmlessly(alice_actor, embedded):
    issue_document(alice_actor)
    tasks.sweep_deliveries()
    tasks.sweep_deliveries()
    assert embedded.stats()["created"] == 1


def test_the_embedded_mode_delivers_in_process_on_commit(alice_actor, embedded, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        document = issue_document(alice_actor)
    assert publish_row(document).state == DeliveryState.DONE
    assert len(account(document)) == 1


def test_a_broker_outage_at_commit_is_logged_not_raised(caplog):
    with (
        support.celery_broker(f"redis://127.0.0.1:{support.free_port()}/0"),
        caplog.at_level(logging.WARNING, logger="documents.delivery"),
    ):
        assert delivery.deliveries_dispatch(delivery_ids=[1, 2, 3]) == 0
    assert "the sweep will" in caplog.text


def test_retry_now_gives_a_failed_row_a_fresh_budget(alice_actor, django_capture_on_commit_callbacks):
    row = publish_row(issue_document(alice_actor))
    Delivery.objects.filter(pk=row.pk).update(state=DeliveryState.FAILED, attempts=8, last_error="HTTP 503")
    with django_capture_on_commit_callbacks(execute=True):
        count = delivery.deliveries_retry_now(actor=alice_actor, delivery_ids=[row.pk])
    row.refresh_from_db()
    assert count == 1 and row.state == DeliveryState.DONE and row.attempts == 1


def test_retry_now_does_not_republish_an_annulled_document(alice_actor):
    document = issue_document(alice_actor)
    row = publish_row(document)
    Delivery.objects.filter(pk=row.pk).update(state=DeliveryState.FAILED, attempts=8)
    Document.objects.filter(pk=document.pk).update(status="annulled")
    assert delivery.deliveries_retry_now(actor=alice_actor, delivery_ids=[row.pk]) == 0
    row.refresh_from_db()
    assert row.state == DeliveryState.SKIPPED


def test_admin_lists_failed_deliveries_and_retries_them(alice_actor, client, django_capture_on_commit_callbacks):
    row = publish_row(issue_document(alice_actor))
    Delivery.objects.filter(pk=row.pk).update(state=DeliveryState.FAILED, attempts=8, last_error="HTTP 503")
    operator = get_user_model().objects.create_superuser("op", "op@example.org", "pw-op-123456")
    login_to_admin(client, operator)
    changelist = reverse("admin:documents_delivery_changelist")

    failed = client.get(reverse("admin:documents_delivery_failed"), follow=True)
    assert failed.status_code == 200 and "HTTP 503" in failed.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist, {"action": "retry_now", "_selected_action": [row.pk]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.state == DeliveryState.DONE
    assert client.get(reverse("admin:documents_delivery_change", args=[row.pk])).status_code == 200


def test_counts_by_state_and_the_documents_state(alice_actor):
    delivered = issue_document(alice_actor)
    delivery.delivery_process(delivery_id=publish_row(delivered).pk)
    waiting = issue_document(alice_actor)

    counts = delivery.delivery_counts_by_state()
    assert counts["done"] == 1 and counts["pending"] == 1 and counts["failed"] == 0
    assert delivery.delivery_state_for(delivered).state == DeliveryState.DONE
    assert delivery.delivery_state_for(waiting).label
    assert set(delivery.delivery_states_for([delivered, waiting])) == {delivered.pk, waiting.pk}


def test_no_snils_reaches_the_log_or_the_row(alice_actor, caplog, settings):
    settings.GOSUSLUGI_MAX_ATTEMPTS = 1
    document = issue_document(alice_actor)
    gosuslugi.faults_set(error_rate=1)
    with caplog.at_level(logging.DEBUG):
        delivery.delivery_process(delivery_id=publish_row(document).pk)
    snils = document.graduate.snils
    assert snils not in caplog.text and snils not in publish_row(document).last_error


@pytest.mark.parametrize("attempts", [1, 3, 10])
def test_backoff_uses_full_jitter_under_the_cap(settings, attempts):
    settings.GOSUSLUGI_BACKOFF_BASE, settings.GOSUSLUGI_BACKOFF_MAX = 2.0, 10.0
    delays = [delivery.backoff_seconds(attempts=attempts) for _ in range(200)]
    assert all(0 <= d <= min(10.0, 2.0 * 2 ** (attempts - 1)) for d in delays)
    assert min(delivery.backoff_seconds(attempts=attempts, retry_after=7) for _ in range(50)) >= 7


def test_an_imported_batch_is_delivered_through_one_dispatch(
    alice_actor, school, embedded, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    import io

    from documents import imports
    from tests.documents.cabinet_support import csv_bytes, good_row

    settings.MEDIA_ROOT = tmp_path
    settings.GOSUSLUGI_BATCH_SIZE = 2
    monkeypatch.setattr(imports, "BATCH_SIZE", 5)
    sent = []
    real_apply_async = tasks.dispatch_deliveries.apply_async
    monkeypatch.setattr(
        tasks.dispatch_deliveries,
        "apply_async",
        lambda args, **kw: sent.append(args[0]) or real_apply_async(args, **kw),
    )
    job = imports.import_job_create(
        actor=alice_actor,
        institution=school,
        fileobj=io.BytesIO(csv_bytes([good_row(n) for n in range(1, 8)])),
        name="a.csv",
    )

    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_run(job_id=job.pk)

    assert [len(ids) for ids in sent] == [5, 2]  # one message per imported batch
    rows = Delivery.objects.filter(institution=school, action="publish")
    assert rows.count() == 7 and {row.state for row in rows} == {DeliveryState.DONE}
    assert embedded.stats()["created"] == 7


def test_a_broker_outage_when_handing_a_batch_to_a_worker_is_logged_not_raised(caplog):
    with (
        support.celery_broker(f"redis://127.0.0.1:{support.free_port()}/0"),
        caplog.at_level(logging.WARNING, logger="documents.delivery"),
    ):
        delivery.deliveries_dispatch_in_worker(delivery_ids=[1, 2, 3])
    assert "Could not send 3 delivery row(s)" in caplog.text
