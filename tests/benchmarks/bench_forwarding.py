"""forwarding: publish deliveries through Celery + Redis to the emulator vs plain POSTs of the same bodies.

Project side: pending publish rows, the project's own dispatch (the tasks its outbox
sends on commit), a real Celery worker (prefork, CONCURRENCY processes) delivering
to the emulator running as its own server; timed from the dispatch until every row
is done; the best of PROJECT_RUNS runs, the rows made pending again with fresh
idempotency keys between runs. Limit side: the same request bodies POSTed straight
to the emulator from CONCURRENCY keep-alive connections, with fresh idempotency
keys; the best of LIMIT_RUNS runs (see run()).
"""

import json
import os
import time
import uuid

from tests.benchmarks import datagen
from tests.benchmarks.harness import (
    PY,
    ROOT,
    Row,
    Service,
    failed,
    flush_broker,
    fmt_rate,
    free_port,
    http_request,
    load,
    log,
    na,
    scaled,
    wait_http,
)

METRIC = "forwarding"
TARGET = "ratio ≥ 0.50"
CONCURRENCY = int(os.environ.get("BENCH_FORWARD_CONCURRENCY", "4"))
TOKEN = "bench-emulator-token"
LIMIT_RUNS = 5
# The workers' connections to the emulator are placed as the limit's are (below), so
# the project side is also the best of several runs: until run 12 it ran once
# against the limit's best of five.
PROJECT_RUNS = 3
# The emulator's processes. A keep-alive connection stays with the process that
# accepted it, and each process runs Python on one core at a time: with 2 processes
# the 4 connections of either side were split 3/1 or 4/0 in five runs out of eight,
# and such a run read half the POSTs a second of a 2/2 run (the limit's five runs
# ranged 269–673/s). With 4 processes a run is cut short only when three or four
# connections meet in one process (one run in five), for the limit and the workers alike.
EMULATOR_WORKERS = 4


def _emulator_redis_url() -> str:
    return os.environ.get("GOSUSLUGI_EMULATOR_REDIS_URL") or os.environ["REDIS_URL"]


def _flush_emulator() -> None:
    import redis

    redis.Redis.from_url(_emulator_redis_url()).flushdb()


def _start_emulator() -> tuple[Service, int]:
    port = free_port()
    service = Service(
        "emulator",
        [
            PY,
            str(ROOT / "manage.py"),
            "run_gosuslugi_emulator",
            "--port",
            str(port),
            "--workers",
            str(EMULATOR_WORKERS),
            "--token",
            TOKEN,
        ],
        env={"GOSUSLUGI_EMULATOR_REDIS_URL": _emulator_redis_url(), "GOSUSLUGI_TOKEN": TOKEN},
    )
    try:
        wait_http(port, "/", service=service)
    except Exception:
        service.stop()
        raise
    return service, port


def _start_worker(port: int) -> Service:
    from registry.celery import app

    name = f"bench-forward-{os.getpid()}@127.0.0.1"
    service = Service(
        "celery",
        [
            str(ROOT / ".venv" / "bin" / "celery") if (ROOT / ".venv" / "bin" / "celery").exists() else "celery",
            "-A",
            "registry",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(CONCURRENCY),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
            "-n",
            name,
        ],
        env={"GOSUSLUGI_URL": f"http://127.0.0.1:{port}", "GOSUSLUGI_TOKEN": TOKEN},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"celery worker exited: {service.log_tail()}")
        if app.control.ping(destination=[name], timeout=0.5):
            return service
    service.stop()
    raise RuntimeError("celery worker did not answer a ping")


def _dispatch(ids: list[int]) -> None:
    from documents import delivery

    dispatch = getattr(delivery, "deliveries_dispatch", None)
    if dispatch is not None:
        dispatch(delivery_ids=ids)
        return
    from documents.tasks import deliver

    for delivery_id in ids:
        deliver.delay(delivery_id)


def _make_pending_again(ids: list[int]) -> None:
    """Turn the delivered rows back into new publications: pending, fresh idempotency keys.

    The emulator's state is flushed beside this, so the next run does the same work;
    VACUUM, so it does not wade through this run's dead row versions.
    """
    from django.db import connection

    from documents.models import Delivery

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Delivery._meta.db_table} SET state = 'pending', attempts = 0, next_attempt_at = now(), "
            "claimed_until = NULL, last_error = '', portal_id = '', delivered_at = NULL, "
            "idempotency_key = gen_random_uuid(), updated_at = now() WHERE id BETWEEN %s AND %s",
            [min(ids), max(ids)],
        )
        cursor.execute(f"VACUUM ANALYZE {Delivery._meta.db_table}")
    _flush_emulator()


def _wait_done(ids: list[int], timeout: float) -> dict:
    """Poll until none of the rows is pending; return their counts by state.

    By id range (the rows are one contiguous run of ids, checked by the caller), not
    by a list of ten thousand ids: the poll must not take CPU from the workers it
    watches (with the list it took a tenth of the machine).
    """
    from django.db.models import Count

    from documents.models import Delivery

    low, high = min(ids), max(ids)
    deadline = time.monotonic() + timeout
    while True:
        states = dict(Delivery.objects.filter(pk__gte=low, pk__lte=high).values_list("state").annotate(n=Count("id")))
        pending = states.get("pending", 0) + states.get("in_progress", 0)
        if pending == 0 or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


def run(ctx: dict) -> list[Row]:
    from django.core.management import get_commands

    from documents import delivery
    from documents.models import Delivery, Document
    from documents.signing import signed_form

    if "run_gosuslugi_emulator" not in get_commands() or not hasattr(delivery, "deliveries_process"):
        return [na(METRIC, "the emulator command and documents.delivery.deliveries_process", target=TARGET)]

    n = scaled(10_000)
    inst = datagen.institution("forward")
    exp = datagen.current_experiment()
    datagen.enrol(inst, exp)
    datagen.wipe(inst)
    first, last = datagen.generate(inst, n, purpose="forward", experiment=exp, delivery_state="pending")
    datagen.resign(list(range(first, last + 1)))
    ids = list(
        Delivery.objects.filter(document_id__gte=first, document_id__lte=last)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if ids[-1] - ids[0] + 1 != len(ids):
        return [failed(METRIC, "the generated deliveries' ids are not one contiguous run", target=TARGET)]

    # The limit's bodies: exactly what the client sends for these documents.
    docs = Document.objects.filter(pk__range=(first, last)).select_related("graduate", "signing_key").order_by("id")
    bodies = [
        json.dumps({"snils": d.graduate.snils, "document": signed_form(d)}, ensure_ascii=False, separators=(",", ":"))
        for d in docs
    ]
    headers = {"Content-Type": "application/json", "Accept": "application/json", "Authorization": f"Bearer {TOKEN}"}

    _flush_emulator()
    flush_broker()
    emulator, port = _start_emulator()
    try:
        worker = _start_worker(port)
        try:
            project_runs = []  # (deliveries done, seconds, states)
            for number in range(PROJECT_RUNS):
                if number:
                    _make_pending_again(ids)
                log(f"  dispatch {len(ids):,} deliveries to {CONCURRENCY} worker processes")
                start = time.perf_counter()
                _dispatch(ids)
                states = _wait_done(ids, timeout=600)
                project_runs.append((states.get("done", 0), time.perf_counter() - start, states))
                if project_runs[-1][0] < len(ids):
                    break
        finally:
            worker.stop()
        log(f"  project runs: {', '.join(f'{d / t:,.0f}' for d, t, _s in project_runs)} deliveries/s")
        done, seconds, states = max(project_runs, key=lambda run: (run[0] >= len(ids), run[0] / run[1]))

        # The limit is the best of LIMIT_RUNS: its keep-alive connections land on the
        # emulator's 2 processes as the kernel hands them out, and unevenly placed
        # (vmstat: one core idle) a run reads half, about 650 against 1,250 POST/s;
        # more than half the runs were such, three in a row once. The best run is
        # what the emulator can take; a worse one would flatter the project side.
        runs = []
        for _ in range(LIMIT_RUNS):
            requests = [
                http_request(
                    "POST",
                    "/documents",
                    body=body.encode(),
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                for body in bodies
            ]
            runs.append(load(port, lambda i, r=requests: r[i], connections=CONCURRENCY, count=len(requests)))
        log(f"  limit runs: {', '.join(f'{run.rps:,.0f}' for run in runs)} POST/s")
        result = max(runs, key=lambda run: run.rps)
    finally:
        emulator.stop()
        _flush_emulator()
        flush_broker()
    datagen.wipe(inst)

    limit_rate = result.rps
    limit = fmt_rate(limit_rate, f"POST/s ({CONCURRENCY} connections, best of {LIMIT_RUNS})")
    ok_statuses = result.statuses.get(201, 0) + result.statuses.get(200, 0)
    if ok_statuses < len(requests):
        log(f"  limit statuses {dict(result.statuses)} errors {result.errors}")
    if done < len(ids):
        return [
            failed(METRIC, f"{done} of {len(ids)} delivered in {seconds:.0f} s: {states}", limit=limit, target=TARGET)
        ]
    rate = done / seconds
    r = rate / limit_rate if limit_rate else None
    return [
        Row(
            METRIC,
            fmt_rate(rate, f"deliveries/s ({done:,}, {CONCURRENCY} worker processes, best of {len(project_runs)})"),
            limit,
            r,
            TARGET,
            (r or 0) >= 0.50,
        )
    ]
