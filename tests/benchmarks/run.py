"""`make bench`: measure the portal's hot paths beside their limits and print one table.

    BENCH_SCALE=small|full   a tenth of the sizes (default) or the sizes of spec/BENCHMARKS.md
    BENCH_JSON=FILE          also write the rows to FILE as a JSON list of objects
    BENCH_ONLY=a,b           run only these rows (module names without "bench_", e.g. purge,api_list)
    BENCH_MARKDOWN=FILE      append the run (date, machine, load, table) to FILE as Markdown
    BENCH_PROFILE=DIR        profile the import and the purge (cProfile; .prof and top costs in DIR)
    DATABASE_URL             default postgres://postgres@127.0.0.1:5432/registry_bench (created if missing;
                             registry_bench_small at BENCH_SCALE=small, so each scale keeps its dataset)
    CELERY_BROKER_URL        default redis://127.0.0.1:6379/9

Columns: `metric | project | limit | ratio | target | ok`. `ratio` is the project's
speed over the limit's, measured in the same run on the same data (for a latency,
the limit's time over the project's), so higher is better and 1.00 means as fast
as the limit. A row whose feature is not on main says so instead of a number.
"""

import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks import harness

# (module, metric shown if the module itself fails). Order matters only for speed:
# the 1M-row list dataset is generated once and reused by the rows that read it.
MODULES = [
    ("import", "bulk issue"),
    ("naive", "naive issue"),
    ("signing", "signing"),
    ("verify", "verification"),
    ("forwarding", "forwarding"),
    ("admin_list", "admin list"),
    ("api_list", "API list"),
    ("purge", "purge"),
]


def main() -> int:
    harness.configure_env()
    scale = harness.scale_name()
    only = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
    unknown = only - {name for name, _ in MODULES}
    if unknown:
        print(f"BENCH_ONLY: unknown rows {sorted(unknown)}; known: {[n for n, _ in MODULES]}", file=sys.stderr)
        return 2
    harness.log(f"scale={scale} database={os.environ['DATABASE_URL']} broker={os.environ['CELERY_BROKER_URL']}")
    harness.ensure_postgres()
    harness.ensure_redis()
    harness.setup_django()
    harness.migrate()
    from tests.benchmarks.datagen import restore_indexes

    restore_indexes()
    harness.flush_broker()

    import importlib

    load_before = os.getloadavg()
    ctx: dict = {}
    rows: list[harness.Row] = []
    started = time.monotonic()
    for name, metric in MODULES:
        if only and name not in only:
            continue
        harness.log(f"row {metric}")
        t0 = time.monotonic()
        try:
            module = importlib.import_module(f"tests.benchmarks.bench_{name}")
            got = module.run(ctx)
        except Exception as exc:
            traceback.print_exc()
            got = [harness.failed(metric, exc)]
        finally:
            from django.db import connection

            connection.close()
        for row in got:
            for note in row.notes:
                harness.log(f"  note ({row.metric}): {note}")
        rows.extend(got)
        harness.log(f"row {metric} took {time.monotonic() - t0:.0f} s")
    harness.flush_broker()

    print()
    print(f"BENCH_SCALE={scale}  ({time.monotonic() - started:.0f} s)")
    print(harness.render_table(rows))
    notes = [(row.metric, note) for row in rows for note in row.notes]
    if notes:
        print()
        for metric, note in notes:
            print(f"- {metric}: {note}")
    markdown = os.environ.get("BENCH_MARKDOWN")
    if markdown:
        write_markdown(markdown, rows, scale=scale, seconds=time.monotonic() - started, load_before=load_before)
        harness.log(f"wrote {markdown}")
    path = os.environ.get("BENCH_JSON")
    if path:
        harness.write_json(rows, path)
        harness.log(f"wrote {path}")
    return 0


def write_markdown(path: str, rows, *, scale: str, seconds: float, load_before) -> None:
    """Write the run as a Markdown section: when, on what machine, at what scale, the table."""
    import datetime as dt
    import subprocess

    def sh(*cmd) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    load_after = os.getloadavg()
    lines = [
        f"## BENCH_SCALE={scale}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {sh('nproc')} CPUs, `uname -r` {sh('uname', '-r')}; PostgreSQL and Redis on the same machine",
        f"- load average (1/5/15 min) before: {' / '.join(f'{x:.1f}' for x in load_before)}, "
        f"after: {' / '.join(f'{x:.1f}' for x in load_after)}",
        f"- commit: {sh('git', 'rev-parse', '--short', 'HEAD')}; run took {seconds:.0f} s",
        "",
        "```",
        sh("free", "-h"),
        "```",
        "",
        harness.render_table(rows),
        "",
    ]
    notes = [(row.metric, note) for row in rows for note in row.notes]
    lines += [f"- {metric}: {note}" for metric, note in notes]
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
