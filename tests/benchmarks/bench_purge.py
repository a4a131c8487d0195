"""purge: the experiment purge in its own process vs a raw DELETE of the same rows.

Also its peak memory at two sizes, and the longest transaction any backend held
while it ran (sampled from pg_stat_activity by a side thread).
"""

from django.utils import timezone

from tests.benchmarks import datagen
from tests.benchmarks.harness import (
    LongestTransaction,
    Row,
    failed,
    flush_broker,
    fmt_mb,
    fmt_rate,
    log,
    na,
    run_child,
    scale_name,
    scaled,
    stopwatch,
)

METRIC = "purge"
TARGET = "≤ 30 s, ratio ≥ 0.20"
MEMORY_TARGET = "≤ 300 MB, flat in size"
TXN_TARGET = "no transaction > 1 s"


def _institutions(exp):
    insts = [datagen.institution(p) for p in datagen.PURGE_INSTITUTIONS]
    for inst in insts:
        datagen.enrol(inst, exp)
    return insts


def _populate(insts, exp, total: int) -> None:
    for inst in insts:
        datagen.wipe(inst)
    per = total // len(insts)
    with datagen.indexes_dropped(*datagen.BULK_TABLES):
        for inst, purpose in zip(insts, datagen.PURGE_INSTITUTIONS, strict=True):
            datagen.generate(inst, per, purpose=purpose, experiment=exp, delivery_state="done")
    datagen.analyze()


def _counts(insts, exp) -> dict:
    from django.db import connection

    ids = [i.pk for i in insts]
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM documents_document WHERE experiment_id = %s", [exp.pk])
        docs = c.fetchone()[0]
        c.execute("SELECT count(*) FROM documents_graduate WHERE institution_id = ANY(%s)", [ids])
        grads = c.fetchone()[0]
        c.execute(
            "SELECT count(*) FROM documents_delivery WHERE document_id IN "
            "(SELECT id FROM documents_document WHERE experiment_id = %s)",
            [exp.pk],
        )
        dlv = c.fetchone()[0]
    return {"documents": docs, "graduates": grads, "deliveries": dlv}


def _raw_delete(insts, exp) -> float:
    """Seconds to DELETE the purge's rows in one transaction, then roll it back.

    Rolling back keeps the very same rows for the purge itself (a second generation
    of a million documents would double the bench's run time); a VACUUM afterwards
    clears the hint bits the aborted delete left, so the purge pays nothing for it.
    """
    from django.db import connection, transaction

    ids = [i.pk for i in insts]
    with transaction.atomic(), connection.cursor() as c:
        with stopwatch() as t:
            c.execute(
                "DELETE FROM documents_delivery WHERE document_id IN "
                "(SELECT id FROM documents_document WHERE experiment_id = %s)",
                [exp.pk],
            )
            c.execute("DELETE FROM documents_document WHERE experiment_id = %s", [exp.pk])
            c.execute(
                "DELETE FROM documents_graduate g WHERE g.institution_id = ANY(%s) AND NOT EXISTS "
                "(SELECT 1 FROM documents_document d WHERE d.graduate_id = g.id)",
                [ids],
            )
            # Deferred foreign keys are checked at commit: check them now, inside the timing.
            c.execute("SET CONSTRAINTS ALL IMMEDIATE")
        transaction.set_rollback(True)
    datagen.analyze()
    return t.seconds


def _purge(insts, exp, total: int, *, populate: bool = True):
    if populate:
        _populate(insts, exp, total)
    before = _counts(insts, exp)
    flush_broker()
    from django.db import connection

    connection.close()  # nothing of ours open while the transactions are watched
    log(f"  purge {before}")
    with LongestTransaction() as watch:
        child = run_child("purge", {"year": exp.year, "as_of": timezone.localdate().isoformat()})
    after = _counts(insts, exp)
    flush_broker()
    return child, before, after, watch


def run(ctx: dict) -> list[Row]:
    n = scaled(1_000_000)
    small = n // 4
    exp = datagen.ended_experiment()
    insts = _institutions(exp)
    full = scale_name() == "full"
    max_seconds = 30.0 if full else 3.0

    _populate(insts, exp, n)
    before = _counts(insts, exp)
    rows_deleted = sum(before.values())
    limit_seconds = _raw_delete(insts, exp)
    limit_rate = rows_deleted / limit_seconds
    limit = fmt_rate(limit_rate, f"rows/s (raw DELETE, {limit_seconds:.1f} s)")

    child, before, after, watch = _purge(insts, exp, n, populate=False)
    if "missing" in child.result or "error" in child.result:
        for inst in insts:
            datagen.wipe(inst)
        if "missing" in child.result:
            return [
                na(METRIC, child.result["missing"], limit=limit, target=TARGET),
                na(f"{METRIC}: peak memory", child.result["missing"], target=MEMORY_TARGET),
                na(f"{METRIC}: longest transaction", child.result["missing"], target=TXN_TARGET),
            ]
        return [failed(METRIC, child.result["error"], limit=limit, target=TARGET)]

    seconds = child.result["seconds"]
    project_rate = rows_deleted / seconds
    leftover = after["documents"]

    small_child, _, _, _ = _purge(insts, exp, small)
    for inst in insts:
        datagen.wipe(inst)

    r = project_rate / limit_rate
    row = Row(
        METRIC,
        fmt_rate(project_rate, f"rows/s ({seconds:.1f} s for {before['documents']:,} docs + graduates + deliveries)"),
        limit,
        r,
        TARGET + ("" if full else " (3 s at small scale)"),
        seconds <= max_seconds and r >= 0.20 and leftover == 0,
    )
    if leftover:
        row.notes.append(f"{leftover} documents of the experiment left after the purge: {child.result.get('output')}")
    row.notes.append(f"purge output: {child.result.get('output')}")
    rows = [row]
    growth = child.peak_rss_mb / small_child.peak_rss_mb if small_child.peak_rss_mb else None
    rows.append(
        Row(
            f"{METRIC}: peak memory",
            f"{fmt_mb(small_child.peak_rss_mb)} at {small:,} docs; {fmt_mb(child.peak_rss_mb)} at {n:,} docs",
            "—",
            growth,
            MEMORY_TARGET + " (ratio = growth for 4× docs, ≤ 1.25)",
            child.peak_rss_mb <= 300 and (growth or 99) <= 1.25,
        )
    )
    row.notes.append(f"longest transaction ({watch.longest:.2f} s) was running: {watch.longest_query}")
    rows.append(
        Row(
            f"{METRIC}: longest transaction",
            f"{watch.longest:.2f} s ({watch.transactions} transactions seen)",
            "—",
            None,
            TXN_TARGET,
            watch.longest <= 1.0,
        )
    )
    return rows
