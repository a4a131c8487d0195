"""The Gosuslugi outbox: delivery rows written with the change, delivered after commit.

Life of a row (`Delivery`):

1. `deliveries_enqueue` writes it inside the caller's transaction (issue, annul,
   correct, purge) and sends the delivery task only on commit.
2. A worker claims it with one conditional UPDATE — `state = pending AND
   next_attempt_at <= now`, or `in_progress` whose lease (`claimed_until`) has
   expired — and delivers only the rows that UPDATE returned, so two workers never
   deliver the same row at once. The claim counts the attempt, so a worker killed
   mid-call still uses one up.
3. The outcome is written with a second conditional UPDATE that also matches the
   worker's own lease; a worker whose lease ran out writes nothing (another one
   owns the row now, and the portal's idempotency key makes its repeat harmless).
4. A retryable failure sets `next_attempt_at` (exponential backoff, full jitter,
   Retry-After as a floor); the last allowed attempt, or a final 4xx, fails the row.
   The delay lives in the row: the beat sweep re-sends whatever is due, so a lost
   broker message, a broker outage or a killed worker delays a delivery but never
   loses it. No long ETA tasks: Redis gives an unacknowledged ETA message back only
   after its visibility timeout and can drop it on restart.

The purge's withdrawals are bulk rows: `portal_ids` lists a few hundred placements,
removed one call each; what a failed or interrupted attempt leaves stays in the
list for the next one (`_withdraw_many`).
"""

import datetime as dt
import logging
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from documents import gosuslugi
from documents.models import Delivery, DeliveryAction, DeliveryState, Document, DocumentStatus
from documents.pii import snils_decrypt
from documents.signing import signed_form_of
from registry.actors import Actor
from registry.bulk import allocate_ids, insert_rows

logger = logging.getLogger(__name__)

PENDING, IN_PROGRESS, DONE, FAILED, SKIPPED = (
    DeliveryState.PENDING,
    DeliveryState.IN_PROGRESS,
    DeliveryState.DONE,
    DeliveryState.FAILED,
    DeliveryState.SKIPPED,
)
PUBLISH, WITHDRAW = DeliveryAction.PUBLISH, DeliveryAction.WITHDRAW


# --- Writing the outbox ---------------------------------------------------------


def deliveries_enqueue(*, documents: list[Document], action: str) -> list[Delivery]:
    """Write one outbox row per document and send the delivery tasks on commit.

    Runs in the caller's transaction: the rows commit or roll back with the change.
    A withdraw of a document that was never published is recorded as skipped (there
    is nothing at the portal to remove); one whose publication is done carries the
    portal id, so it can outlive a purged document.
    """
    documents = list(documents)
    now = timezone.now()
    latest_publish: dict[int, dict] = {}
    if action == WITHDRAW and documents:
        publishes = (
            Delivery.objects.filter(document__in=[d.pk for d in documents], action=PUBLISH)
            .exclude(state=SKIPPED)
            .order_by("document_id", "-id")
            .values("document_id", "state", "portal_id")
        )
        for row in publishes:
            latest_publish.setdefault(row["document_id"], row)
    rows = []
    for document in documents:
        row = Delivery(document=document, institution_id=document.institution_id, action=action, next_attempt_at=now)
        if action == WITHDRAW:
            published = latest_publish.get(document.pk)
            if published is None:
                row.state = SKIPPED
            elif published["portal_id"]:
                row.portal_id = published["portal_id"]
        rows.append(row)
    Delivery.objects.bulk_create(rows)
    due = [row.pk for row in rows if row.state == PENDING]
    if due:
        transaction.on_commit(lambda: deliveries_dispatch(delivery_ids=due))
    return rows


_NEW_DELIVERY_COLUMNS = ("id", "document_id", "institution_id", "action", "state", "next_attempt_at", "created_at")


def deliveries_enqueue_new(*, document_ids: list[int], institution_id: int) -> list[int]:
    """Write a publish row per newly issued document in one go; send the tasks on commit.

    `deliveries_enqueue` for bulk issuance (the import): the documents were never
    published, so every row is a pending publish, and the rows are written without
    model instances (registry.bulk). Runs in the caller's transaction. Return the
    rows' ids.
    """
    if not document_ids:
        return []
    now = timezone.now()
    ids = allocate_ids(Delivery, len(document_ids))
    insert_rows(
        Delivery,
        _NEW_DELIVERY_COLUMNS,
        [
            (pk, document_id, institution_id, PUBLISH, PENDING, now, now)
            for pk, document_id in zip(ids, document_ids, strict=True)
        ],
    )
    transaction.on_commit(lambda: deliveries_dispatch_in_worker(delivery_ids=ids))
    return ids


def _eager() -> bool:
    from registry.celery import app

    return bool(app.conf.task_always_eager)


def deliveries_dispatch_in_worker(*, delivery_ids: list[int]) -> None:
    """Have a worker send the delivery tasks for these rows (one message); never raises.

    For a bulk import's batch: one broker message per thousand rows instead of one
    per GOSUSLUGI_BATCH_SIZE rows keeps the import's commits cheap, and the worker
    that receives it splits the rows as `deliveries_dispatch` does. With the broker
    away the rows wait in the database for the sweep, as always.
    """
    from documents.tasks import dispatch_deliveries

    ids = list(delivery_ids)
    if not ids:
        return
    if _eager():
        dispatch_deliveries.apply_async((ids,))  # runs here, now
        return
    _send_fail_fast(dispatch_deliveries, [(ids,)])


def _send_fail_fast(task, argument_lists: list[tuple], countdown: float | None = None) -> int:
    """Send `task` once per argument tuple (a list of delivery ids first) over one connection.

    Return the messages sent. Fail fast when the broker is away (Celery's defaults
    retry for seconds per message): the request that issued the documents must not
    hang, and the sweep sends the rows once the broker is back.
    """
    from registry.celery import app

    sent = 0
    try:
        with app.pool.acquire(block=True, timeout=5) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=2)
            for arguments in argument_lists:
                task.apply_async(
                    arguments,
                    countdown=countdown,
                    connection=connection,
                    retry=True,
                    retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
                )
                sent += 1
    except Exception as exc:
        unsent = sum(len(arguments[0]) for arguments in argument_lists[sent:])
        logger.warning("Could not send %d delivery row(s) to the broker, the sweep will: %r", unsent, exc)
    return sent


def deliveries_dispatch(*, delivery_ids: list[int], countdown: float | None = None) -> int:
    """Send delivery tasks for these rows, GOSUSLUGI_BATCH_SIZE rows per task; return rows sent.

    Never raises: with the broker down the rows simply wait in the database for the
    sweep, and the caller's change (already committed) must not look failed.
    """
    from documents.tasks import deliver_batch

    ids = list(delivery_ids)
    size = max(1, settings.GOSUSLUGI_BATCH_SIZE)
    chunks = [ids[start : start + size] for start in range(0, len(ids), size)]
    if not chunks:
        return 0
    if _eager():
        for chunk in chunks:
            deliver_batch.apply_async((chunk,))
        return len(ids)
    sent = _send_fail_fast(deliver_batch, [(chunk,) for chunk in chunks], countdown=countdown)
    return sum(len(chunk) for chunk in chunks[:sent])


# --- Delivering -----------------------------------------------------------------


@dataclass
class _Outcome:
    state: str
    portal_id: str = ""
    error: str = ""
    next_attempt_at: dt.datetime | None = None
    # -1 gives back the attempt the claim counted (the row only waited, nothing was sent).
    attempts_delta: int = 0
    nudge: float | None = None
    # A bulk withdraw's placements still to remove (None: the row's list stays as it is).
    portal_ids: list[str] | None = None


def backoff_seconds(*, attempts: int, retry_after: float | None = None) -> float:
    """Delay before the next try: full jitter over base·2^(attempts−1), capped; Retry-After is a floor."""
    ceiling = min(settings.GOSUSLUGI_BACKOFF_MAX, settings.GOSUSLUGI_BACKOFF_BASE * 2 ** max(0, attempts - 1))
    delay = random.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.GOSUSLUGI_BACKOFF_MAX))
    return delay


# In the model's field order, as `Model.from_db` expects a partial row.
_CLAIM_COLUMNS = tuple(
    f.attname
    for f in Delivery._meta.concrete_fields
    if f.attname in {"id", "action", "attempts", "portal_id", "portal_ids", "document_id", "idempotency_key"}
)


def _claim_rows(ids: list[int], *, now: dt.datetime, until: dt.datetime) -> list[Delivery]:
    """Take the due rows among `ids` for this worker; return them (the columns a delivery needs), by id.

    One conditional UPDATE … RETURNING: the database decides, so of two workers
    racing for a row exactly one gets it back. `until` (the lease) is also this
    claim's token: the outcome is written only while the row still carries it.
    The UPDATE returns what the delivery reads, so claiming costs one round trip.
    """
    if not ids:
        return []
    ops, q = connection.ops, connection.ops.quote_name
    table = q(Delivery._meta.db_table)
    placeholders = ", ".join(["%s"] * len(ids))
    returning = ", ".join(q(column) for column in _CLAIM_COLUMNS)
    # Only quoted column names and placeholders are interpolated into the statement.
    sql = (
        f"UPDATE {table} SET {q('state')} = %s, {q('attempts')} = {q('attempts')} + 1, "  # noqa: S608
        f"{q('claimed_until')} = %s, {q('updated_at')} = %s "
        f"WHERE {q('id')} IN ({placeholders}) AND (({q('state')} = %s AND {q('next_attempt_at')} <= %s) "
        f"OR ({q('state')} = %s AND {q('claimed_until')} < %s)) RETURNING {returning}"
    )
    at, until_db = ops.adapt_datetimefield_value(now), ops.adapt_datetimefield_value(until)
    params = [IN_PROGRESS, until_db, at, *ids, PENDING, at, IN_PROGRESS, at]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    key_field, ids_field = Delivery._meta.get_field("idempotency_key"), Delivery._meta.get_field("portal_ids")
    key_at, ids_at = _CLAIM_COLUMNS.index("idempotency_key"), _CLAIM_COLUMNS.index("portal_ids")
    rows = []
    for values in fetched:
        values = list(values)
        # SQLite hands the UUID back as text, a raw cursor JSON as text: the fields'
        # converters make them a UUID and a list again.
        values[key_at] = key_field.to_python(values[key_at])
        if isinstance(values[ids_at], str):
            values[ids_at] = ids_field.from_db_value(values[ids_at], None, connection)
        rows.append(Delivery.from_db(connection.alias, list(_CLAIM_COLUMNS), values))
    rows.sort(key=lambda row: row.pk)
    return rows


def _claim(ids: list[int], *, now: dt.datetime, until: dt.datetime) -> list[int]:
    """Take the due rows among `ids` for this worker; return the ids it now holds (see `_claim_rows`)."""
    return [row.pk for row in _claim_rows(ids, now=now, until=until)]


def _transfer_wait(experiment_id: int | None, *, now: dt.datetime, cache: dict) -> dt.datetime | None:
    """Return when to look again if the document's experiment forbids transfer today, else None.

    The document's own experiment decides (not `forming_rule`, which answers for the
    institution's current experiment): a stage without `allows_transfer` holds its
    documents back until a stage that allows it starts. Regular documents transfer.
    `cache` keeps the answer per experiment for the batch.
    """
    from experiment.models import Experiment
    from experiment.services import active_stages

    if experiment_id is None:
        return None
    if experiment_id not in cache:
        today = timezone.localdate(now)
        experiment = Experiment.objects.get(pk=experiment_id)
        if any(stage.allows_transfer for stage in active_stages(experiment=experiment, on=today)):
            cache[experiment_id] = None
        else:
            upcoming = experiment.stages.filter(allows_transfer=True, starts_on__gt=today).order_by("starts_on").first()
            cache[experiment_id] = (
                timezone.make_aware(dt.datetime.combine(upcoming.starts_on, dt.time.min))
                if upcoming
                else now + dt.timedelta(days=1)
            )
    return cache[experiment_id]


def _retry_later(exc: gosuslugi.GosuslugiError, *, attempts: int, now: dt.datetime, **outcome) -> _Outcome:
    """Pending again after the backoff for `attempts` (Retry-After a floor); nudged when that is soon."""
    delay = backoff_seconds(attempts=attempts, retry_after=getattr(exc, "retry_after", None))
    nudge = delay if delay <= settings.GOSUSLUGI_NUDGE_MAX else None
    return _Outcome(PENDING, error=str(exc), next_attempt_at=now + dt.timedelta(seconds=delay), nudge=nudge, **outcome)


def _retry_or_fail(row: Delivery, exc: gosuslugi.GosuslugiError, *, now: dt.datetime) -> _Outcome:
    if isinstance(exc, gosuslugi.FinalError) or row.attempts >= settings.GOSUSLUGI_MAX_ATTEMPTS:
        return _Outcome(FAILED, error=str(exc))
    return _retry_later(exc, attempts=row.attempts, now=now)


def _publish(row: Delivery, document: dict | None, *, now: dt.datetime, transfer_cache: dict) -> _Outcome:
    """Place the document (`_documents_for` values) at the portal under the row's idempotency key."""
    if document is None:
        return _Outcome(SKIPPED, error=str(_("The document no longer exists.")))
    wait_until = _transfer_wait(document["experiment_id"], now=now, cache=transfer_cache)
    if wait_until is not None:
        return _Outcome(
            PENDING,
            error=str(_("The experiment's current stage does not allow transfer to Gosuslugi.")),
            next_attempt_at=wait_until,
            attempts_delta=-1,
        )
    if document["signed_payload"] is None or document["signing_key__kid"] is None:
        # Only signed documents are published; treated like any other broken row.
        raise ValueError("the document is not signed")
    portal_id = gosuslugi.publish(
        snils=snils_decrypt(document["graduate__snils_encrypted"]),
        document=signed_form_of(
            payload=document["signed_payload"], kid=document["signing_key__kid"], signature=document["signature"]
        ),
        idempotency_key=str(row.idempotency_key),
    )
    return _Outcome(DONE, portal_id=portal_id)


def _documents_for(rows: list[Delivery]) -> dict[int, dict]:
    """Return {document id: what a publish sends} for the rows' documents, in one query.

    Plain values, not model instances: a batch needs five columns of each document,
    not the whole row and three related objects.
    """
    ids = {row.document_id for row in rows if row.action == PUBLISH and row.document_id is not None}
    if not ids:
        return {}
    values = Document.objects.filter(pk__in=ids).values(
        "id", "experiment_id", "signed_payload", "signature", "signing_key__kid", "graduate__snils_encrypted"
    )
    return {value["id"]: value for value in values}


def _withdraw(row: Delivery, *, now: dt.datetime) -> _Outcome:
    portal_id = row.portal_id
    if not portal_id:
        publication = (
            Delivery.objects.filter(document_id=row.document_id, action=PUBLISH, pk__lt=row.pk)
            .exclude(state=SKIPPED)
            .order_by("-id")
            .first()
            if row.document_id
            else None
        )
        if publication is None:
            return _Outcome(SKIPPED, error=str(_("Never published: nothing to withdraw.")))
        if publication.state == FAILED:
            return _Outcome(SKIPPED, error=str(_("The publication failed: nothing to withdraw.")))
        if publication.state == PENDING and publication.attempts == 0:
            # Never sent: cancel it instead of placing and then removing the document.
            # Conditional, so a worker that claimed it meanwhile wins and we wait.
            cancelled = Delivery.objects.filter(pk=publication.pk, state=PENDING, attempts=0).update(
                state=SKIPPED, last_error=str(_("Cancelled: the document was withdrawn first.")), updated_at=now
            )
            if cancelled:
                return _Outcome(SKIPPED, error=str(_("The publication was cancelled before it was sent.")))
        if publication.state != DONE:
            # The publication may have reached the portal (a timeout, a worker killed
            # mid-call): withdraw only after it has finished and we know its id.
            later = max(publication.next_attempt_at, now) + dt.timedelta(seconds=settings.GOSUSLUGI_BACKOFF_BASE)
            return _Outcome(
                PENDING,
                error=str(_("Waiting for the publication to finish.")),
                next_attempt_at=later,
                attempts_delta=-1,
                nudge=(later - now).total_seconds(),
            )
        portal_id = publication.portal_id
    gosuslugi.withdraw(portal_id=portal_id)
    return _Outcome(DONE, portal_id=portal_id)


# A bulk withdraw gives up for this attempt after so many retryable failures in a
# row (the portal is down or overloaded: the rest would only wait for timeouts).
_BULK_FAILURES_IN_A_ROW = 3


def _withdraw_many(row: Delivery, *, now: dt.datetime, deadline: float) -> _Outcome:
    """Remove a bulk withdraw's placements (`row.portal_ids`) one call each; keep what is left in the row.

    A placement the portal could not remove now (a timeout, 5xx) stays in the list
    for the next attempt while the others go on; a 429, a few such failures in a
    row, or the claim's time budget (`deadline`, time.monotonic()) ends the attempt
    early; only an attempt that removed nothing counts toward the attempt limit. A
    final error (4xx other than 404) fails the row with every placement not yet
    removed, for an operator to look at and retry. Removing is idempotent at the
    portal, so a worker killed half-way only makes the next one repeat calls.
    """
    todo, left = list(row.portal_ids), []
    error: gosuslugi.GosuslugiError | None = None
    in_a_row = removed = 0
    while todo:
        if time.monotonic() >= deadline:
            break
        portal_id = todo.pop(0)
        try:
            gosuslugi.withdraw(portal_id=portal_id)
            in_a_row, removed = 0, removed + 1
        except gosuslugi.FinalError as exc:
            failed = [*left, portal_id, *todo]
            message = ngettext(
                "%(id)s: %(error)s (%(count)s placement not withdrawn)",
                "%(id)s: %(error)s (%(count)s placements not withdrawn)",
                len(failed),
            ) % {"id": portal_id, "error": exc, "count": len(failed)}
            return _Outcome(FAILED, error=message, portal_ids=failed)
        except gosuslugi.RetryableError as exc:
            left.append(portal_id)
            error, in_a_row = exc, in_a_row + 1
            if exc.retry_after is not None or in_a_row >= _BULK_FAILURES_IN_A_ROW:
                break
    left += todo
    if not left:
        return _Outcome(DONE)
    if error is None:
        # Out of time, nothing failed: due again at once, and the attempt is given back.
        return _Outcome(
            PENDING,
            error=ngettext(
                "%(count)s placement still to withdraw.", "%(count)s placements still to withdraw.", len(left)
            )
            % {"count": len(left)},
            next_attempt_at=now,
            attempts_delta=-1,
            nudge=0,
            portal_ids=left,
        )
    if removed:
        # Progress: the attempt is given back, so only attempts that removed nothing
        # count toward GOSUSLUGI_MAX_ATTEMPTS (a flaky portal ends most attempts of a
        # long list early, yet each one takes dozens of placements off it).
        outcome = _retry_later(error, attempts=1, now=timezone.now(), attempts_delta=-1)
    else:
        outcome = _retry_or_fail(row, error, now=timezone.now())
    outcome.portal_ids = left
    outcome.error = ngettext(
        "%(count)s placement still to withdraw; last error: %(error)s",
        "%(count)s placements still to withdraw; last error: %(error)s",
        len(left),
    ) % {"count": len(left), "error": error}
    return outcome


def deliveries_process(*, delivery_ids: list[int]) -> dict[int, str]:
    """Deliver the due rows among `delivery_ids`; return {id: new state} for the rows it held.

    Idempotent and safe to run concurrently: rows that are done, not yet due, or
    held by another worker are left alone (and absent from the result). Calls are
    made outside any transaction, one row after another.
    """
    ids = sorted(set(delivery_ids))
    if not ids:
        return {}
    now = timezone.now()
    lease = settings.GOSUSLUGI_LEASE + len(ids) * settings.GOSUSLUGI_TIMEOUT
    until = now + dt.timedelta(seconds=lease)
    # A bulk withdraw makes many calls under one row's share of the lease: it stops
    # when half the base lease is spent (one call may still be running, bounded by the
    # timeout) and leaves the rest for a fresh claim.
    deadline = time.monotonic() + settings.GOSUSLUGI_LEASE / 2
    rows = _claim_rows(ids, now=now, until=until)
    if not rows:
        return {}
    documents = _documents_for(rows)
    transfer_cache: dict = {}
    outcomes: dict[int, _Outcome] = {}
    for row in rows:
        try:
            if row.action == PUBLISH:
                outcomes[row.pk] = _publish(
                    row, documents.get(row.document_id), now=timezone.now(), transfer_cache=transfer_cache
                )
            elif row.portal_ids:
                outcomes[row.pk] = _withdraw_many(row, now=timezone.now(), deadline=deadline)
            else:
                outcomes[row.pk] = _withdraw(row, now=timezone.now())
        except gosuslugi.GosuslugiError as exc:
            outcomes[row.pk] = _retry_or_fail(row, exc, now=timezone.now())
        except Exception as exc:
            # A bug or a broken row must not stall the rest of the batch; it is
            # retried like a portal error and fails after the last attempt.
            logger.exception("Delivery %s raised", row.pk)
            outcomes[row.pk] = _retry_or_fail(row, gosuslugi.RetryableError(type(exc).__name__), now=timezone.now())
    _finish(outcomes, until=until)
    nudges = [(pk, o.nudge) for pk, o in outcomes.items() if o.state == PENDING and o.nudge is not None]
    if nudges and not _eager():
        for pk, delay in nudges:
            deliveries_dispatch(delivery_ids=[pk], countdown=delay)
    return {pk: o.state for pk, o in outcomes.items()}


def _finish(outcomes: dict[int, _Outcome], *, until: dt.datetime) -> None:
    """Write the outcomes, each only if the row still carries this worker's lease."""
    now = timezone.now()
    mine = Delivery.objects.filter(state=IN_PROGRESS, claimed_until=until)
    done = {pk: o for pk, o in outcomes.items() if o.state == DONE}
    if done:
        _finish_done(done, now=now, until=until)
    for pk, outcome in outcomes.items():
        if outcome.state == DONE:
            continue
        changes = {
            "state": outcome.state,
            "claimed_until": None,
            "last_error": outcome.error[:2000],
            "updated_at": now,
        }
        if outcome.next_attempt_at is not None:
            changes["next_attempt_at"] = outcome.next_attempt_at
        if outcome.attempts_delta:
            changes["attempts"] = F("attempts") + outcome.attempts_delta
        if outcome.portal_ids is not None:
            changes["portal_ids"] = outcome.portal_ids
        updated = mine.filter(pk=pk).update(**changes)
        if updated and outcome.state == FAILED:
            logger.warning("Delivery %s failed: %s", pk, outcome.error[:300])


def _finish_done(done: dict[int, _Outcome], *, now: dt.datetime, until: dt.datetime) -> None:
    """Mark the batch's successes done with one UPDATE (raw: the ORM's CASE costs more than the call)."""
    ops, q = connection.ops, connection.ops.quote_name
    at, until_db = ops.adapt_datetimefield_value(now), ops.adapt_datetimefield_value(until)
    cases = " ".join(["WHEN %s THEN %s"] * len(done))
    placeholders = ", ".join(["%s"] * len(done))
    # Only quoted column names and placeholders are interpolated into the statement.
    sql = (
        f"UPDATE {q(Delivery._meta.db_table)} SET {q('state')} = %s, "  # noqa: S608
        f"{q('portal_id')} = CASE {q('id')} {cases} END, {q('delivered_at')} = %s, "
        f"{q('claimed_until')} = NULL, {q('last_error')} = '', {q('updated_at')} = %s "
        f"WHERE {q('id')} IN ({placeholders}) AND {q('state')} = %s AND {q('claimed_until')} = %s"
    )
    params = [DONE]
    for pk, outcome in done.items():
        params += [pk, outcome.portal_id]
    params += [at, at, *done, IN_PROGRESS, until_db]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def delivery_process(*, delivery_id: int) -> str | None:
    """Deliver one row if it is due and nobody holds it; return its new state, or None if untouched.

    Idempotent: a done, failed or skipped row, a row not yet due, or one claimed by
    another worker is left as it is, so running it twice delivers once.
    """
    return deliveries_process(delivery_ids=[delivery_id]).get(delivery_id)


def deliveries_sweep(*, after_id: int = 0, limit: int | None = None) -> tuple[int, int | None]:
    """Re-send every due row, `limit` rows (GOSUSLUGI_SWEEP_LIMIT) per run in id order.

    Due: pending and past `next_attempt_at`, or in progress past its lease (a killed
    worker). Returns (rows sent, the id to continue after — None when finished), so
    a large backlog is swept in bounded runs. Idempotent: a row sent twice is
    claimed once.
    """
    limit = limit or settings.GOSUSLUGI_SWEEP_LIMIT
    now = timezone.now()
    due = Q(state=PENDING, next_attempt_at__lte=now) | Q(state=IN_PROGRESS, claimed_until__lt=now)
    ids = list(Delivery.objects.filter(due, pk__gt=after_id).order_by("pk").values_list("pk", flat=True)[:limit])
    deliveries_dispatch(delivery_ids=ids)
    return len(ids), (ids[-1] if len(ids) == limit else None)


@transaction.atomic
def deliveries_retry_now(*, actor: Actor, delivery_ids: list[int]) -> int:
    """Make failed or waiting rows due now with a fresh attempt budget; return how many.

    Rows done, skipped or in progress are left alone. A publish of a document that
    is no longer issued is skipped instead: placing it again would undo its
    withdrawal. The tasks are sent on commit.
    """
    now = timezone.now()
    locked = list(
        Delivery.objects.select_for_update()
        .filter(pk__in=list(delivery_ids), state__in=[FAILED, PENDING])
        .values_list("pk", flat=True)
    )
    stale = Delivery.objects.filter(pk__in=locked, action=PUBLISH).exclude(document__status=DocumentStatus.ISSUED)
    stale_ids = set(stale.values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=stale_ids).update(
        state=SKIPPED, last_error=str(_("The document is no longer issued.")), updated_at=now
    )
    ids = [pk for pk in locked if pk not in stale_ids]
    Delivery.objects.filter(pk__in=ids).update(
        state=PENDING, attempts=0, next_attempt_at=now, claimed_until=None, last_error="", updated_at=now
    )
    if ids:
        from documents.history import event_record

        event_record(actor=actor, action="delivery.retry_now", object_type="delivery", data={"deliveries": ids[:1000]})
        transaction.on_commit(lambda: deliveries_dispatch(delivery_ids=ids))
    return len(ids)


# --- Reads for pages and dashboards ---------------------------------------------


def delivery_counts_by_state(*, institution=None, action: str | None = None) -> dict[str, int]:
    """Return {state: count} over every state (zeros included), optionally for one institution/action."""
    rows = Delivery.objects.all()
    if institution is not None:
        rows = rows.filter(institution=institution)
    if action:
        rows = rows.filter(action=action)
    counts = dict.fromkeys(DeliveryState.values, 0)
    for row in rows.values("state").annotate(n=Count("id")).order_by():
        counts[row["state"]] = row["n"]
    return counts


@dataclass(frozen=True)
class DeliveryStatus:
    """A document's standing at Gosuslugi, for display."""

    action: str
    state: str
    attempts: int
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    last_error: str

    @property
    def label(self) -> str:
        return str(_LABELS.get((self.action, self.state), DeliveryState(self.state).label))


_LABELS = {
    (PUBLISH, PENDING): _("Waiting to be sent to Gosuslugi"),
    (PUBLISH, IN_PROGRESS): _("Being sent to Gosuslugi"),
    (PUBLISH, DONE): _("Placed in the holder's Gosuslugi account"),
    (PUBLISH, FAILED): _("Sending to Gosuslugi failed"),
    (PUBLISH, SKIPPED): _("Not sent to Gosuslugi"),
    (WITHDRAW, PENDING): _("Waiting to be withdrawn from Gosuslugi"),
    (WITHDRAW, IN_PROGRESS): _("Being withdrawn from Gosuslugi"),
    (WITHDRAW, DONE): _("Withdrawn from Gosuslugi"),
    (WITHDRAW, FAILED): _("Withdrawal from Gosuslugi failed"),
    (WITHDRAW, SKIPPED): _("Nothing to withdraw from Gosuslugi"),
}


def _status(row: Delivery) -> DeliveryStatus:
    return DeliveryStatus(
        action=row.action,
        state=row.state,
        attempts=row.attempts,
        delivered_at=row.delivered_at,
        next_attempt_at=row.next_attempt_at if row.state == PENDING else None,
        last_error=row.last_error,
    )


def delivery_states_for(documents) -> dict[int, DeliveryStatus]:
    """Return {document id: status of its latest delivery} for a page of documents, in one query."""
    ids = [d.pk if isinstance(d, Document) else d for d in documents]
    latest: dict[int, DeliveryStatus] = {}
    for row in Delivery.objects.filter(document_id__in=ids).order_by("document_id", "-id"):
        if row.document_id not in latest:
            latest[row.document_id] = _status(row)
    return latest


def delivery_state_for(document: Document) -> DeliveryStatus | None:
    """Return the status of the document's latest publish or withdraw, or None if it has none."""
    row = Delivery.objects.filter(document=document).order_by("-id").first()
    return _status(row) if row is not None else None
