# ruff: noqa: S608 — every identifier in these statements comes from model metadata
# through quote_name, every value is a query parameter.
"""The year-end purge: withdraw an ended experiment's documents from Gosuslugi and delete them.

What a purge does, batch by batch, to the experiment's documents (and nothing else):
1. counts them by institution kind and document kind into the anonymous PurgeReport;
2. queues a withdraw of each document still placed at the portal (a done publish
   and no done withdraw) by the portal id of its last publish: bulk withdraw rows of
   a few hundred placements each, keeping only the portal ids and the institution —
   no document, no personal data — so they outlive the documents; the delivery
   sweep sends them;
3. deletes the documents' deliveries (done ones, pending publishes: cancelled);
4. deletes the documents;
5. deletes their graduates left with no document at all. A graduate who still has
   another document (non-experimental, a draft, another experiment's) is kept.

Drafts carry no experiment (a document joins one when it is issued), so a purge
leaves them alone, like every other non-experimental document.

Bounded batches, each its own short transaction, over the first N ids left
(`experiment_id = X AND id > last`, deleted as one range of the (experiment_id, id)
index, whose RETURNING gives the batch's ids; every other statement of the batch
works on those ids through a primary key or an FK index): a run
killed half-way has committed whole batches only, and the next run continues where
it stopped. The open PurgeReport (finished_at empty) is the progress record; it is
updated in the same transaction as each batch, so its counts are never ahead of or
behind the deletions. Idempotent: a run that finds no document and no open report
changes nothing and creates no report (it returns the last finished one).

Raw SQL throughout: the ORM's delete() would load every row (and its cascades) into
memory first; here only one batch's ids ever reach Python.
"""

import datetime as dt
import functools
import itertools
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from documents.history import event_record
from documents.models import Delivery, DeliveryAction, DeliveryState, Document, Graduate
from experiment.models import Experiment, PurgeReport
from institutions.models import Institution
from registry.actors import Actor
from registry.bulk import array_param, insert_rows, replica_role, set_based_keys
from registry.errors import Conflict, NotAllowed, NotFound

logger = logging.getLogger(__name__)

# Batch size. A batch runs about ten statements over its documents, about as many
# deliveries and graduates (all through the (experiment_id, id) index and the FK
# indexes) plus one commit. On PostgreSQL on 2 idle cores 5,000 documents take
# roughly 0.2–0.4 s: inside the 1 s a transaction may take, and 1,000,000 documents
# need only 200 batches, so per-batch overhead stays a small part of the 30 s budget.
# A loaded machine is slower, so the size adapts: it starts small and each next
# batch is sized from the last one's duration to take about TARGET_BATCH_SECONDS,
# never more than REGISTRY_PURGE_BATCH_SIZE (the hard cap, 5,000 by default). The
# target leaves room below the 1 s limit for a batch that meets a sudden load (on a
# shared machine one ran 2.7× its predecessor's time per row; at a million
# documents a batch that met a checkpoint's writes took 3.5×, 1.05 s, with a 0.3 s
# target), so it grows only by half a step. Python holds one batch's ids at most:
# memory stays flat.
DEFAULT_BATCH_SIZE = 5000
FIRST_BATCH_SIZE = 1000
TARGET_BATCH_SECONDS = 0.2
# Keeps an IN (...) list under every SQLite's host-parameter limit.
_IN_CHUNK = 900
# Placements per bulk withdraw row: at a few milliseconds a call, one row is a few
# seconds of a worker's time, well inside its lease (documents.delivery._withdraw_many).
WITHDRAW_BATCH = 500


@dataclass
class PurgeCounts:
    """What a purge deletes (or, in a dry run, would delete)."""

    documents: int = 0
    graduates: int = 0
    deliveries: int = 0
    withdrawals: int = 0
    by_institution_kind: dict[str, int] = field(default_factory=dict)
    by_document_kind: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of_report(cls, report: PurgeReport) -> "PurgeCounts":
        return cls(
            documents=report.documents_deleted,
            graduates=report.graduates_deleted,
            deliveries=report.deliveries_deleted,
            withdrawals=report.withdrawals_queued,
            by_institution_kind=dict(report.by_institution_kind),
            by_document_kind=dict(report.by_document_kind),
        )

    def as_event_data(self) -> dict:
        return {
            "documents": self.documents,
            "graduates": self.graduates,
            "deliveries": self.deliveries,
            "withdrawals": self.withdrawals,
        }


@dataclass
class PurgeOutcome:
    experiment: Experiment
    counts: PurgeCounts
    dry_run: bool = False
    report: PurgeReport | None = None
    resumed: bool = False
    nothing_to_do: bool = False


def purge_batch_done(*, report: PurgeReport, batch: int) -> None:
    """Called after each committed batch; a seam for progress logging (and tests)."""
    logger.info("purge %s: batch %s done, %s documents so far", report.experiment_year, batch, report.documents_deleted)


# --- SQL helpers ------------------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model) -> str:
    return _q(model._meta.db_table)


def _col(model, name: str) -> str:
    return _q(model._meta.get_field(name).column)


@functools.lru_cache(maxsize=4)
def _ids_param(ids: tuple[int, ...]) -> tuple[str, object]:
    """A batch's ids as one array parameter (registry.bulk.array_param), built once for its several statements."""
    return array_param(ids)


def _in_chunks(ids: Sequence[int]):
    """Yield (SQL condition on a column, params) covering `ids` in as few statements as the database allows."""
    if not ids:
        # Nothing to do; and a statement over no ids can still scan (its plan may
        # pick another index, on statistics the purge is making stale).
        return
    if connection.vendor == "postgresql":
        # One array parameter, however many ids.
        placeholder, param = _ids_param(tuple(ids))
        yield f"= ANY({placeholder})", [param]
        return
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        yield f"IN ({', '.join(['%s'] * len(chunk))})", chunk


class _Scope:
    """The documents a statement works on: the whole experiment, or one batch of it."""

    def __init__(self, experiment_id: int, lo: int | None = None, hi: int | None = None):
        self.where = f"{_col(Document, 'experiment')} = %s"
        self.params: list = [experiment_id]
        if lo is not None:
            self.where += f" AND {_q('id')} BETWEEN %s AND %s"
            self.params += [lo, hi]

    def where_on(self, alias: str) -> str:
        where = f"{alias}.{_col(Document, 'experiment')} = %s"
        if self.params[1:]:
            where += f" AND {alias}.{_q('id')} BETWEEN %s AND %s"
        return where

    def ids_sql(self) -> str:
        return f"SELECT {_q('id')} FROM {_table(Document)} WHERE {self.where}"


def _kind_counts(cursor, scope: _Scope) -> tuple[Counter, Counter, int]:
    doc, inst = _table(Document), _table(Institution)
    i_kind, d_kind = f"i.{_col(Institution, 'kind')}", f"d.{_col(Document, 'kind')}"
    cursor.execute(
        f"SELECT {i_kind}, {d_kind}, COUNT(*) "
        f"FROM {doc} d JOIN {inst} i ON i.{_q('id')} = d.{_col(Document, 'institution')} "
        f"WHERE {scope.where_on('d')} GROUP BY {i_kind}, {d_kind}",
        scope.params,
    )
    by_institution, by_document, total = Counter(), Counter(), 0
    for institution_kind, document_kind, n in cursor.fetchall():
        by_institution[institution_kind] += n
        by_document[document_kind] += n
        total += n
    return by_institution, by_document, total


def _live_publish_ids_sql(scope: _Scope) -> str:
    """SELECT pid: for each of the scope's documents still placed at the portal, its last done publish row.

    Still placed: a done publish with a portal id and no done withdraw. Documents
    never placed give a NULL pid.
    """
    doc, dlv = _table(Document), _table(Delivery)
    d_doc, d_act, d_state = _col(Delivery, "document"), _col(Delivery, "action"), _col(Delivery, "state")
    pk = _q("id")
    return (
        f"SELECT (SELECT MAX(p.{pk}) FROM {dlv} p WHERE p.{d_doc} = d.{pk} "
        f"AND p.{d_act} = '{DeliveryAction.PUBLISH}' AND p.{d_state} = '{DeliveryState.DONE}' "
        f"AND p.{_col(Delivery, 'portal_id')} <> '') AS pid "
        f"FROM {doc} d WHERE {scope.where_on('d')} "
        f"AND NOT EXISTS (SELECT 1 FROM {dlv} w WHERE w.{d_doc} = d.{pk} "
        f"AND w.{d_act} = '{DeliveryAction.WITHDRAW}' AND w.{d_state} = '{DeliveryState.DONE}')"
    )


def _deliveries_sql(scope: _Scope) -> str:
    return f"FROM {_table(Delivery)} WHERE {_col(Delivery, 'document')} IN ({scope.ids_sql()})"


def _graduates_left_sql(scope: _Scope, experiment_id: int) -> tuple[str, list]:
    """COUNT the graduates of the scope's documents who have no document outside it."""
    doc, grad = _table(Document), _table(Graduate)
    d_grad = _col(Document, "graduate")
    sql = (
        f"SELECT COUNT(*) FROM {grad} g WHERE g.{_q('id')} IN "
        f"(SELECT {d_grad} FROM {doc} WHERE {_q('id')} IN ({scope.ids_sql()})) "
        f"AND NOT EXISTS (SELECT 1 FROM {doc} o WHERE o.{d_grad} = g.{_q('id')} "
        f"AND (o.{_col(Document, 'experiment')} IS NULL OR o.{_col(Document, 'experiment')} <> %s))"
    )
    return sql, [*scope.params, experiment_id]


# --- Relations -----------------------------------------------------------------------


def _other_relations(model, *, handled: set) -> list:
    """Return the relations pointing at `model` that the purge must clear itself.

    Raw DELETE skips Django's on_delete emulation, so every SET_NULL and CASCADE
    relation is applied by hand (one level); a PROTECT one (other than those the
    purge handles) stops the purge before it changes anything.
    """
    relations = []
    # Hidden ones too: a relation with related_name="+" still holds rows that point here.
    for rel in model._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
            continue
        if rel.related_model in handled:
            continue
        if rel.on_delete in (models.SET_NULL, models.CASCADE, models.DO_NOTHING):
            relations.append(rel)
        else:
            raise NotAllowed(
                _("%(model)s.%(field)s protects the records the purge deletes; the purge cannot run.")
                % {"model": rel.related_model.__name__, "field": rel.field.name},
                code="purge_protected",
            )
    return relations


def _clear_relations(cursor, relations: list, ids: Sequence[int]) -> None:
    """Apply the relations' on_delete to the rows pointing at `ids` (about to be deleted).

    Each relation is first probed once over the ids' range: most batches have nothing
    pointing at them (a replaced document, a partner's idempotency key are rare),
    while the statement over the ids walks the column's index once per id
    (PostgreSQL 15 descends a btree for every element of an array).
    """
    if not ids:
        return
    lo, hi = min(ids), max(ids)
    for rel in relations:
        if rel.on_delete not in (models.SET_NULL, models.CASCADE):
            continue
        table, column = _table(rel.related_model), _q(rel.field.column)
        cursor.execute(f"SELECT 1 FROM {table} WHERE {column} BETWEEN %s AND %s LIMIT 1", [lo, hi])
        if cursor.fetchone() is None:
            continue
        for condition, params in _in_chunks(ids):
            if rel.on_delete is models.SET_NULL:
                cursor.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} {condition}", params)
            elif rel.on_delete is models.CASCADE:
                cursor.execute(f"DELETE FROM {table} WHERE {column} {condition}", params)


def _document_relations() -> list:
    return _other_relations(Document, handled={Delivery})


def _graduate_relations() -> list:
    return _other_relations(Graduate, handled={Document})


# --- Dry run -------------------------------------------------------------------------


def purge_plan(*, experiment: Experiment) -> PurgeCounts:
    """Return exactly what a purge of `experiment` would delete now; change nothing.

    A handful of aggregate queries over the whole experiment (indexed), no batches:
    reading needs no short transactions.
    """
    scope = _Scope(experiment.pk)
    with connection.cursor() as cursor:
        by_institution, by_document, total = _kind_counts(cursor, scope)
        cursor.execute(f"SELECT COUNT(s.pid) FROM ({_live_publish_ids_sql(scope)}) s", scope.params)
        withdrawals = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) {_deliveries_sql(scope)}", scope.params)
        deliveries = cursor.fetchone()[0]
        sql, params = _graduates_left_sql(scope, experiment.pk)
        cursor.execute(sql, params)
        graduates = cursor.fetchone()[0]
    return PurgeCounts(
        documents=total,
        graduates=graduates,
        deliveries=deliveries,
        withdrawals=withdrawals,
        by_institution_kind=dict(by_institution),
        by_document_kind=dict(by_document),
    )


# --- The purge -----------------------------------------------------------------------


_WITHDRAW_COLUMNS = ("institution_id", "action", "state", "portal_ids", "next_attempt_at", "created_at")


def _withdrawals_queue(placements: dict[int | None, list[str]], now) -> int:
    """Queue pending bulk withdraws of these placements ({institution id: portal ids}); return how many placements.

    One row per WITHDRAW_BATCH placements of an institution, holding only the portal
    ids and the institution — no document, nothing personal — so it outlives the
    documents; the delivery sweep sends it (documents.delivery._withdraw_many). A
    few rows per batch instead of a withdraw row per document: rewriting a million
    delivery rows through their indexes was half of a purge's time.
    """
    rows = [
        (
            institution_id,
            DeliveryAction.WITHDRAW,
            DeliveryState.PENDING,
            portal_ids[start : start + WITHDRAW_BATCH],
            now,
            now,
        )
        for institution_id, portal_ids in placements.items()
        for start in range(0, len(portal_ids), WITHDRAW_BATCH)
    ]
    # COPY, not bulk_create: Django sends a bulk_create as one array per column, and
    # psycopg escapes the JSON arrays' quotes in Python, a regular expression match
    # per portal id.
    insert_rows(Delivery, _WITHDRAW_COLUMNS, rows)
    return sum(len(ids) for ids in placements.values())


def _deliveries_delete(cursor, document_ids: Sequence[int]) -> tuple[int, dict[int | None, list[str]]]:
    """Delete every delivery of the documents; return (how many, {institution id: portal ids to withdraw}).

    One DELETE … RETURNING through the deliveries' document index (SQLite 3.35+ has
    RETURNING too), and the placements to withdraw are decided from what it returned,
    by the same rule as `_live_publish_ids_sql` (what the dry run counts): a document
    still placed at the portal — a done publish with a portal id and no done
    withdraw — is withdrawn by the portal id of its last such publish.
    """
    dlv, d_doc = _table(Delivery), _col(Delivery, "document")
    columns = ", ".join(_q(c) for c in ("id", "action", "state"))
    columns += f", {d_doc}, {_col(Delivery, 'portal_id')}, {_col(Delivery, 'institution')}"
    rows = []
    for condition, params in _in_chunks(document_ids):
        cursor.execute(f"DELETE FROM {dlv} WHERE {d_doc} {condition} RETURNING {columns}", params)
        rows += cursor.fetchall()
    publish, withdraw, done = str(DeliveryAction.PUBLISH), str(DeliveryAction.WITHDRAW), str(DeliveryState.DONE)
    withdrawn = {row[3] for row in rows if row[1] == withdraw and row[2] == done}
    live: dict[int, tuple] = {}
    for pk, action, state, document_id, portal_id, institution_id in rows:
        if action == publish and state == done and portal_id and document_id not in withdrawn:
            last = live.get(document_id)
            if last is None or pk > last[0]:
                live[document_id] = (pk, portal_id, institution_id)
    placements: dict[int | None, list[str]] = {}
    for _pk, portal_id, institution_id in sorted(live.values()):
        placements.setdefault(institution_id, []).append(portal_id)
    return len(rows), placements


def _delete_ids(cursor, table: str, ids: Sequence[int]) -> int:
    deleted = 0
    for condition, params in _in_chunks(ids):
        cursor.execute(f"DELETE FROM {table} WHERE {_q('id')} {condition}", params)
        deleted += cursor.rowcount
    return deleted


class _References:
    """The foreign keys into the purged tables, checked once per batch instead of once per row.

    PostgreSQL checks a foreign key on DELETE with a trigger per deleted row (a query
    through SPI, ~9 µs each): deleting a document fires one per relation pointing at
    documents, a graduate one more. At a million documents those triggers were four
    fifths of a plain DELETE's time. Where the purge's role may set
    `session_replication_role` (a superuser, or `GRANT SET ON PARAMETER
    session_replication_role` on PostgreSQL 15+), a batch switches those triggers off
    for its own transaction and makes the same check itself, one indexed statement per
    relation over the whole batch, after its deletes: if any row still points at a
    deleted document or graduate, the batch raises and rolls back, so it commits
    nothing a foreign key would have refused. A row another session adds meanwhile
    cannot slip through: its own (still enabled) check locks the referenced row, so it
    either committed before our check's snapshot and is seen, or it waits on our
    delete and fails when we commit.

    The relations are read from the database's catalogue, so every constraint the
    triggers enforce is checked, including any a later migration adds. The fast path
    is off (triggers as usual) when the role lacks the privilege, when a table the
    purge writes has a trigger of its own (replica mode would silence it), when a key
    spans several columns, or with REGISTRY_SET_BASED_CHECKS=0 (see
    registry.bulk.set_based_keys). The import does the same for its inserts
    (registry.bulk.InsertedReferences), locking what its rows refer to, so the two
    never leave a reference behind between them.
    """

    def __init__(self, documents: list[tuple[str, str]], graduates: list[tuple[str, str]]):
        # (table, column) pairs still to check after a batch's statements, per referenced table.
        self.documents, self.graduates = documents, graduates

    @classmethod
    def load(cls, relations: tuple) -> "_References | None":
        """Read the keys once per run; `relations` as experiment_purge computes them."""
        document_relations, graduate_relations = relations
        tables = [Document._meta.db_table, Graduate._meta.db_table, Delivery._meta.db_table]
        tables += [rel.related_model._meta.db_table for rel in document_relations + graduate_relations]
        keys = set_based_keys(tables, [Document._meta.db_table, Graduate._meta.db_table], pointing_at=True)
        if keys is None:
            return None
        # Cleared by the batch after it deleted the documents, so they cannot point at
        # them any more (see _purge_batch): not checked again. Nothing clears what
        # points at a graduate, so every key into graduates is checked.
        handled = {(Delivery._meta.db_table, Delivery._meta.get_field("document").column)}
        handled |= {(rel.related_model._meta.db_table, rel.field.column) for rel in document_relations}
        pointing = {Document._meta.db_table: [], Graduate._meta.db_table: []}
        for table, column, referenced, _column, _columns in keys:
            if referenced == Graduate._meta.db_table or (table, column) not in handled:
                pointing[referenced].append((table, column))
        return cls(pointing[Document._meta.db_table], pointing[Graduate._meta.db_table])

    def check(self, cursor, document_ids: Sequence[int], graduate_ids: Sequence[int]) -> None:
        """Raise IntegrityError (rolling the batch back) if a row still points at a deleted one.

        `graduate_ids` are the batch's graduates, deleted or kept: a kept one still
        exists, so only references to the deleted ones are found.
        """
        for pointing, ids, referenced in (
            (self.documents, document_ids, Document._meta.db_table),
            (self.graduates, graduate_ids, Graduate._meta.db_table),
        ):
            for (table, column), (condition, params) in itertools.product(pointing, _in_chunks(ids)):
                cursor.execute(
                    f"SELECT {_q(column)} FROM {_q(table)} r WHERE {_q(column)} {condition} "
                    f"AND NOT EXISTS (SELECT 1 FROM {_q(referenced)} x WHERE x.{_q('id')} = r.{_q(column)}) LIMIT 1",
                    params,
                )
                row = cursor.fetchone()
                if row is not None:
                    raise IntegrityError(
                        f"purge: {table}.{column} still points at the deleted {referenced} {row[0]}; "
                        "the batch is rolled back, run the purge again"
                    )


@dataclass
class _Batch:
    report: PurgeReport
    last_id: int


def _purge_batch(
    *,
    experiment: Experiment,
    report_id: int,
    after: int,
    batch_size: int,
    relations: tuple,
    references: "_References | None" = None,
) -> _Batch | None:
    """Purge the experiment's next `batch_size` documents with ids above `after`; None when none are left.

    A fixed handful of statements per batch: the documents' DELETE walks a range of
    the (experiment, id) index and returns the batch's ids, and every later one goes
    by primary key or an FK index on those ids. No statement joins or hashes a whole
    table, so a batch's time grows with its size only.
    """
    document_relations, graduate_relations = relations
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Safe to not wait for the WAL flush: a crash loses at most the last
            # batches, together with their report update, and the next run redoes
            # them (resumable). Saves a disk flush per batch. No JIT: compiling
            # these small indexed statements costs more than it saves.
            cursor.execute("SELECT set_config('synchronous_commit', 'off', true), set_config('jit', 'off', true)")
        # Serialises concurrent runs of the same purge: the second waits, then sees
        # the first one's batch gone.
        report = PurgeReport.objects.select_for_update().get(pk=report_id)
        if references is not None:
            # See _References: this batch's foreign keys are checked set-based below.
            replica_role(cursor, True)
        rows = _documents_delete(cursor, experiment_id=experiment.pk, after=after, batch_size=batch_size)
        if not rows:
            if references is not None:
                replica_role(cursor, False)
            return None
        document_ids = tuple(sorted(row[0] for row in rows))
        graduate_ids = tuple(sorted({row[1] for row in rows}))
        kinds = dict(Institution.objects.filter(pk__in={row[2] for row in rows}).values_list("pk", "kind"))
        by_institution = Counter(kinds[row[2]] for row in rows)
        by_document = Counter(row[3] for row in rows)
        del rows

        # The documents go first, then whatever points at them: each later statement
        # sees every row committed before it, and a row still being added waits on
        # the deleted one and then fails its own foreign-key check. So no reference
        # is left behind, whether the foreign keys are checked per row (deferred, at
        # commit) or by _References.
        documents = len(document_ids)
        deliveries, placements = _deliveries_delete(cursor, document_ids)
        withdrawals = _withdrawals_queue(placements, timezone.now())
        _clear_relations(cursor, document_relations, document_ids)
        graduates = _graduates_delete(cursor, graduate_ids, graduate_relations)
        if references is not None:
            references.check(cursor, document_ids, graduate_ids)
            # Back to normal before the batch ends: called inside an outer transaction
            # (a test), the setting would otherwise last until that one ends. (On an
            # error the batch's rollback undoes it.)
            replica_role(cursor, False)

        report.documents_deleted += documents
        report.graduates_deleted += graduates
        report.deliveries_deleted += deliveries
        report.withdrawals_queued += withdrawals
        report.by_institution_kind = dict(Counter(report.by_institution_kind) + by_institution)
        report.by_document_kind = dict(Counter(report.by_document_kind) + by_document)
        report.save()
    return _Batch(report=report, last_id=document_ids[-1])


def _documents_delete(cursor, *, experiment_id: int, after: int, batch_size: int) -> list[tuple]:
    """Delete the experiment's next `batch_size` documents with ids above `after`.

    Returns (id, graduate id, institution id, kind) of each. The batch's last id is
    read first, from the (experiment, id) index alone; the DELETE then walks that
    index over the range, so it neither reads the rows twice nor looks each one up
    by primary key. `after` skips the index entries of the batches already deleted
    in this run, which stay in the index until vacuum; a new run starts from 0 and
    so picks up anything an interrupted run left.
    """
    doc, pk, exp = _table(Document), _q("id"), _col(Document, "experiment")
    cursor.execute(
        f"SELECT {pk} FROM {doc} WHERE {exp} = %s AND {pk} > %s ORDER BY {pk} LIMIT 1 OFFSET %s",
        [experiment_id, after, batch_size - 1],
    )
    last = cursor.fetchone()
    where, params = f"{exp} = %s AND {pk} > %s", [experiment_id, after]
    if last is not None:
        where, params = where + f" AND {pk} <= %s", [*params, last[0]]
    returning = f"{pk}, {_col(Document, 'graduate')}, {_col(Document, 'institution')}, {_col(Document, 'kind')}"
    cursor.execute(f"DELETE FROM {doc} WHERE {where} RETURNING {returning}", params)
    return cursor.fetchall()


def _graduates_delete(cursor, graduate_ids: Sequence[int], relations: list) -> int:
    """Delete those of `graduate_ids` left with no document at all; return how many."""
    grad, doc, d_grad, pk = _table(Graduate), _table(Document), _col(Document, "graduate"), _q("id")
    orphan = f"NOT EXISTS (SELECT 1 FROM {doc} o WHERE o.{d_grad} = g.{pk})"
    deleted = 0
    for condition, params in _in_chunks(graduate_ids):
        if not relations:
            cursor.execute(f"DELETE FROM {grad} AS g WHERE g.{pk} {condition} AND {orphan}", params)
            deleted += cursor.rowcount
            continue
        cursor.execute(f"SELECT g.{pk} FROM {grad} g WHERE g.{pk} {condition} AND {orphan}", params)
        orphans = [row[0] for row in cursor.fetchall()]
        _clear_relations(cursor, relations, orphans)
        deleted += _delete_ids(cursor, grad, orphans)
    return deleted


def _actor_label(actor: Actor) -> str:
    return actor.user.get_username() if actor.user is not None else actor.label


def _report_open(*, experiment: Experiment, actor: Actor) -> tuple[PurgeReport | None, bool]:
    """Return (the open report, resumed), creating it when there is something to purge."""
    with transaction.atomic():
        # Two runs starting at once must not both open a report.
        Experiment.objects.select_for_update().get(pk=experiment.pk)
        report = (
            PurgeReport.objects.filter(experiment_year=experiment.year, finished_at__isnull=True)
            .order_by("started_at")
            .first()
        )
        if report is not None:
            event_record(
                actor=actor,
                action="experiment.purge_resumed",
                obj=experiment,
                data={"year": experiment.year, "report": report.pk, "documents_so_far": report.documents_deleted},
            )
            return report, True
        remaining = Document.objects.filter(experiment=experiment).count()
        if not remaining:
            return None, False
        report = PurgeReport.objects.create(experiment_year=experiment.year, triggered_by=_actor_label(actor))
        event_record(
            actor=actor,
            action="experiment.purge_started",
            obj=experiment,
            data={"year": experiment.year, "report": report.pk, "documents": remaining},
        )
        return report, False


def withdrawals_send() -> None:
    """Have the delivery sweep send the pending withdrawals (queued; in-process without a broker)."""
    from documents.tasks import sweep_deliveries

    sweep_deliveries.delay()


def experiment_purge(
    *,
    year: int,
    actor: Actor,
    as_of: dt.date | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    send_withdrawals: bool = True,
) -> PurgeOutcome:
    """Purge the experiment of `year` (see the module docstring); refuse before its purge date.

    Raises NotFound for an unknown year and NotAllowed when `as_of` (default: today)
    is before the experiment's purge date. A dry run returns what a real run would
    delete and changes nothing. Resumable and idempotent: an open report is
    continued; with nothing left to purge, nothing changes and no report is created
    (`nothing_to_do`, `report` = the last finished one). Call it outside any
    transaction: each batch commits on its own. With `send_withdrawals` false the
    caller sends them itself (`withdrawals_send`), e.g. after printing the counts.
    """
    as_of = as_of or timezone.localdate()
    experiment = Experiment.objects.filter(year=year).first()
    if experiment is None:
        raise NotFound(_("There is no experiment of %(year)s.") % {"year": year}, code="no_experiment")
    if experiment.purge_on > as_of:
        raise NotAllowed(
            _("The %(year)s experiment has not ended: its documents may be purged from %(purge_on)s (as of %(as_of)s).")
            % {"year": year, "purge_on": experiment.purge_on.isoformat(), "as_of": as_of.isoformat()},
            code="experiment_not_ended",
        )
    relations = (_document_relations(), _graduate_relations())
    if dry_run:
        return PurgeOutcome(experiment=experiment, counts=purge_plan(experiment=experiment), dry_run=True)

    report, resumed = _report_open(experiment=experiment, actor=actor)
    if report is None:
        last = PurgeReport.objects.filter(experiment_year=year, finished_at__isnull=False).order_by("-started_at")
        return PurgeOutcome(experiment=experiment, counts=PurgeCounts(), report=last.first(), nothing_to_do=True)

    references = _References.load(relations)
    cap = batch_size or getattr(settings, "REGISTRY_PURGE_BATCH_SIZE", DEFAULT_BATCH_SIZE)
    size, after, batch = min(FIRST_BATCH_SIZE, cap), 0, 0
    while True:
        started = time.monotonic()
        try:
            done = _purge_batch(
                experiment=experiment,
                report_id=report.pk,
                after=after,
                batch_size=size,
                relations=relations,
                references=references,
            )
        except IntegrityError as exc:
            # Rolled back whole: a foreign key (checked by a trigger or by _References)
            # refused it. The batches before it stay done; a new run resumes.
            raise Conflict(
                _(
                    "A record still points at a document or graduate of this batch, so nothing of the batch "
                    "was deleted; the batches before it stay purged. Run the purge again. (%(detail)s)"
                )
                % {"detail": str(exc).splitlines()[0][:300]},
                code="purge_reference_left",
            ) from exc
        if done is None:
            break
        report, after, batch = done.report, done.last_id, batch + 1
        purge_batch_done(report=report, batch=batch)
        elapsed = max(time.monotonic() - started, 0.001)
        # Size the next batch to take about TARGET_BATCH_SECONDS; grow at most 1.5× a step.
        size = max(1, min(cap, size * 3 // 2, int(size * TARGET_BATCH_SECONDS / elapsed)))

    with transaction.atomic():
        report = PurgeReport.objects.select_for_update().get(pk=report.pk)
        report.finished_at = timezone.now()
        report.save(update_fields=["finished_at"])
        counts = PurgeCounts.of_report(report)
        event_record(
            actor=actor,
            action="experiment.purge_finished",
            obj=experiment,
            data={"year": experiment.year, "report": report.pk, **counts.as_event_data()},
        )
        if counts.withdrawals and send_withdrawals:
            transaction.on_commit(withdrawals_send)
    return PurgeOutcome(experiment=experiment, counts=counts, report=report, resumed=resumed)


def experiments_purge_due(*, actor: Actor, as_of: dt.date | None = None) -> list[PurgeOutcome]:
    """Purge every experiment whose purge date has come (idempotent: purged ones are no-ops)."""
    as_of = as_of or timezone.localdate()
    years = list(Experiment.objects.filter(purge_on__lte=as_of).order_by("year").values_list("year", flat=True))
    return [experiment_purge(year=year, actor=actor, as_of=as_of) for year in years]
