"""verification: POST /api/v1/verify/ under load (gunicorn, 2 workers) vs a trivial JSON view."""

import json
import random

from tests.benchmarks import datagen
from tests.benchmarks.harness import (
    Row,
    failed,
    fmt_ms,
    fmt_rate,
    gunicorn,
    http_request,
    interleaved,
    load,
    log,
    na,
    scaled,
)
from tests.benchmarks.keys import create_api_key

METRIC = "verification"
TARGET = "ratio ≥ 0.50"
P99_TARGET = "p99 ≤ 25 ms"
CONNECTIONS = 16
VERIFY_PATH = "/api/v1/verify/"
PING_PATH = "/bench/ping/"
# Each side gets `seconds` in all, in this many alternating rounds (harness.interleaved).
ROUNDS = 5


def run(ctx: dict) -> list[Row]:
    from documents.models import Document

    seconds = 10 if datagen_scale_full() else 5
    inst = datagen.list_dataset(ctx)
    n_codes = scaled(2_000, minimum=200)
    ids = list(Document.objects.filter(institution=inst).order_by("id").values_list("id", flat=True)[:n_codes])
    # Real payloads and signatures for the documents being verified (the rest carry placeholders).
    datagen.resign(ids)
    codes = list(Document.objects.filter(pk__in=ids).values_list("verification_code", flat=True))
    random.Random(9).shuffle(codes)
    key = create_api_key(name="bench-verify", scope="verify")

    bodies = [json.dumps({"code": code}).encode() for code in codes]
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    verify_requests = [http_request("POST", VERIFY_PATH, body=b, headers=headers) for b in bodies]
    ping_requests = [http_request("POST", PING_PATH, body=b, headers=headers) for b in bodies]

    server, port = gunicorn(workers=2, settings_module="tests.benchmarks.bench_settings")
    try:
        probe = load(port, lambda i: verify_requests[i % len(verify_requests)], connections=1, count=1)
        status = next(iter(probe.statuses), None)
        if key is None or status in (None, 404, 405):
            what = "create_api_key" if key is None else f"{VERIFY_PATH} answers {status}"
            return [na(METRIC, what, target=TARGET), na(f"{METRIC}: p99", what, target=P99_TARGET)]
        sides = {
            "limit": lambda i: ping_requests[i % len(ping_requests)],
            "project": lambda i: verify_requests[i % len(verify_requests)],
        }
        # Warm both (worker imports, database and Redis connections) before measuring.
        interleaved(port, sides, connections=CONNECTIONS, seconds=2, rounds=2)
        runs = interleaved(port, sides, connections=CONNECTIONS, seconds=seconds, rounds=ROUNDS)
        limit_run, project_run = runs["limit"], runs["project"]
        limit = f"{fmt_rate(limit_run.rps, 'req/s')}, p99 {fmt_ms(limit_run.p99_ms)} (trivial JSON view)"
    finally:
        server.stop()

    statuses = dict(project_run.statuses)
    log(f"  verify statuses {statuses}, errors {project_run.errors}; ping {dict(limit_run.statuses)}")
    good = statuses.get(200, 0)
    if good < project_run.requests * 0.99:
        return [failed(METRIC, f"verify answered {statuses} (errors {project_run.errors})", limit=limit, target=TARGET)]
    r = project_run.rps / limit_run.rps if limit_run.rps else None
    rows = [
        Row(
            METRIC,
            f"{fmt_rate(project_run.rps, 'req/s')} ({CONNECTIONS} conn, {seconds} s in {ROUNDS} rounds)",
            limit,
            r,
            TARGET,
            (r or 0) >= 0.50,
        ),
        Row(
            f"{METRIC}: p99",
            fmt_ms(project_run.p99_ms),
            fmt_ms(limit_run.p99_ms),
            limit_run.p99_ms / project_run.p99_ms if project_run.p99_ms else None,
            P99_TARGET,
            project_run.p99_ms <= 25,
        ),
    ]
    return rows


def datagen_scale_full() -> bool:
    from tests.benchmarks.harness import scale_name

    return scale_name() == "full"
