"""A measured process: `python tests/benchmarks/child.py TASK JSON_ARGS`.

The import and the purge run here, in a process of their own, so that the parent
reads exactly their own peak resident size (VmHWM). The last line printed is
`BENCH_RESULT {json}`.
"""

import io
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.harness import configure_env


def _command_missing(name: str) -> bool:
    from django.core.management import get_commands

    return name not in get_commands()


def _call(name: str, *args) -> tuple[float, str]:
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    call_command(name, *args, stdout=out, stderr=err)
    seconds = time.perf_counter() - start
    return seconds, out.getvalue() + err.getvalue()


def task_noop() -> dict:
    """Django set up and nothing else: the baseline of every measured child."""
    return {"ok": True}


def task_import(path: str, inn: str) -> dict:
    if _command_missing("import_documents"):
        return {"missing": "manage.py import_documents"}
    seconds, text = _call("import_documents", path, "--institution", inn)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    summary = next((line for line in reversed(lines) if re.search(r"imported\s+\d+", line)), "")
    imported = re.search(r"imported\s+(\d+)", summary)
    rejected = re.search(r"rejected\s+(\d+)", summary)
    return {
        "seconds": seconds,
        "imported": int(imported.group(1)) if imported else None,
        "rejected": int(rejected.group(1)) if rejected else None,
        "summary": summary,
        "head": lines[:5],
    }


def task_purge(year: int, as_of: str) -> dict:
    if _command_missing("purge_experiment"):
        return {"missing": "manage.py purge_experiment"}
    seconds, text = _call("purge_experiment", str(year), "--as-of", as_of)
    return {"seconds": seconds, "output": text.strip().splitlines()[-8:]}


TASKS = {"noop": task_noop, "import": task_import, "purge": task_purge}


def main() -> None:
    configure_env()
    import django

    django.setup()
    task, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    profile_dir = os.environ.get("BENCH_PROFILE")
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        result = TASKS[task](**args)
    except BaseException as exc:  # report, never hang the bench
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    if profiler is not None:
        profiler.disable()
        result["profile"] = _save_profile(profiler, profile_dir, task)
    peak_kb = _own_peak_rss_kb()
    if peak_kb is not None:
        result["peak_rss_kb"] = peak_kb
    print("BENCH_RESULT " + json.dumps(result, default=str), flush=True)


def _own_peak_rss_kb() -> int | None:
    """This process's own peak resident size (VmHWM of its address space), in kB.

    Not ru_maxrss: on exec, Linux carries the high-water RSS of the address space
    being replaced into the new program's ru_maxrss, and with vfork/posix_spawn
    (what subprocess uses) that address space is the parent's. A child of a bench
    that has just generated a million rows would report the bench's peak, not its own.
    VmHWM belongs to the address space exec created, so it is the child's alone.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _save_profile(profiler, directory: str, task: str) -> str:
    """Write the cProfile stats and print the top costs (BENCH_PROFILE=DIR)."""
    import pstats

    path = Path(directory) / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}.prof"
    path.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(path)
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(15)
    return str(path)


if __name__ == "__main__":
    main()
