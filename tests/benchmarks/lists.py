"""What the admin and API list rows share: timing requests and the raw indexed select."""

import time

from tests.benchmarks.harness import p50_ms

WARMUP = 2


def requests_p50(get, path: str, n: int, **extra) -> tuple[float, int, bytes]:
    """p50 ms of `n` GETs of `path` (after warm-up), the status, and the last body."""
    samples = []
    response = None
    for i in range(WARMUP + n):
        start = time.perf_counter()
        response = get(path, **extra)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            return float("nan"), response.status_code, response.content
        if i >= WARMUP:
            samples.append(elapsed)
    return p50_ms(samples), response.status_code, response.content


def sql_p50(sql: str, params: list, n: int) -> float:
    """p50 ms of a raw select, fetched whole, through the same database connection."""
    from django.db import connection

    samples = []
    with connection.cursor() as cursor:
        for i in range(WARMUP + n):
            start = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            if i >= WARMUP:
                samples.append(time.perf_counter() - start)
    return p50_ms(samples)


def requests_count() -> int:
    from tests.benchmarks.harness import scale_name

    return 21 if scale_name() == "full" else 11
