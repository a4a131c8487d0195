"""Shared machinery of `make bench`: services, the bench database, rows, timing, processes.

Every benchmark measures the project side and its limit in the same run on the same
data, because these machines are shared and an absolute time means little. This
module owns everything the rows have in common; each `bench_*.py` module measures
one row (or a small family of rows) and returns `Row`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/registry_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/9"
DEFAULT_CACHE_URL = "redis://127.0.0.1:6379/10"

# The bench runs the production shape (demo off) over plain HTTP on loopback; these
# are fixed, bench-only secrets so encrypted data generated in one run stays
# readable in the next (the bench database is reused between runs).
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "registry.settings",
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdef0123456789abcdef",
    "REGISTRY_MASTER_KEY": "YmVuY2gtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=",
    "REGISTRY_DEMO": "0",
    "DEBUG": "0",
    "SECURE_SSL_REDIRECT": "0",
    "LOG_LEVEL": "WARNING",
    "GOSUSLUGI_EMULATOR": "1",
    # The partner API's per-key rate limits would turn a load test into a test of the
    # limiter (429s); lifted far out of reach, the throttle still runs and is measured.
    "REGISTRY_API_RATE_VERIFY": "100000000/min",
    "REGISTRY_API_RATE_ISSUE": "100000000/min",
}


def configure_env() -> None:
    """Set the bench's environment before Django is imported (children inherit it)."""
    # One database per scale by default, so each keeps its own million- (or
    # hundred-thousand-) row list dataset between runs instead of regenerating it.
    suffix = "" if scale_name() == "full" else "_small"
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL + suffix)
    os.environ.setdefault("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_CACHE_URL)
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    existing = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in existing.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), existing) if p)


# --- Scale ------------------------------------------------------------------------


def scale_name() -> str:
    name = os.environ.get("BENCH_SCALE", "small").strip().lower() or "small"
    if name not in ("small", "full"):
        raise SystemExit(f"BENCH_SCALE must be small or full, got {name!r}")
    return name


def scaled(full_size: int, *, minimum: int = 1) -> int:
    """Return `full_size` at BENCH_SCALE=full and a tenth of it at small."""
    if scale_name() == "full":
        return full_size
    return max(minimum, full_size // 10)


# --- Services ---------------------------------------------------------------------


def _pg_connect(url: str, dbname: str | None = None):
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname=dbname or parts.path.lstrip("/"),
        autocommit=True,
        connect_timeout=3,
    )


def _wait(what: str, check, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise SystemExit(f"bench: {what} did not come up")


def ensure_postgres() -> None:
    """Use the PostgreSQL at DATABASE_URL; start the local cluster if it is down; create the database."""
    import psycopg

    url = os.environ["DATABASE_URL"]

    def up() -> bool:
        try:
            _pg_connect(url, "postgres").close()
            return True
        except psycopg.OperationalError:
            return False

    if not up():
        host = urlsplit(url).hostname
        clusters = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if host in ("127.0.0.1", "localhost") and clusters and shutil.which("pg_ctlcluster"):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[0], "main", "start"],
                check=False,
                capture_output=True,
            )
        _wait("PostgreSQL", up)
    name = urlsplit(url).path.lstrip("/")
    with _pg_connect(url, "postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def ensure_redis() -> None:
    """Use the Redis at CELERY_BROKER_URL; start a local one if it is down."""
    import redis

    url = os.environ["CELERY_BROKER_URL"]

    def up() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    if up():
        return
    parts = urlsplit(url)
    if parts.hostname in ("127.0.0.1", "localhost") and shutil.which("redis-server"):
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                str(parts.port or 6379),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=False,
            capture_output=True,
        )
    _wait("Redis", up)


def flush_broker() -> None:
    """Empty the bench's own broker database (never FLUSHALL: other databases are others')."""
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def setup_django() -> None:
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def raw_connection():
    """The psycopg 3 connection under Django's default connection (for COPY)."""
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


def side_connection():
    """A separate autocommit psycopg connection to the bench database."""
    return _pg_connect(os.environ["DATABASE_URL"])


# --- Rows -------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table. `project`/`limit` are shown as given; `ratio` and `ok` may be None."""

    metric: str
    project: str
    limit: str
    ratio: float | None
    target: str
    ok: bool | None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("notes")
        return data


def na(metric: str, what: str, *, limit: str = "—", target: str = "") -> Row:
    """A row whose project side cannot be measured because its entry point is not on main."""
    return Row(metric, f"n/a (feature not on main: {what})", limit, None, target, None)


def failed(metric: str, error: BaseException | str, *, limit: str = "—", target: str = "") -> Row:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = " ".join(str(text).split())[:160]
    return Row(metric, f"error: {text}", limit, None, target, False)


def fmt_rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def fmt_ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def fmt_mb(value: float) -> str:
    return f"{value:,.0f} MB"


def ratio(project: float | None, limit: float | None) -> float | None:
    if not project or not limit:
        return None
    return project / limit


def render_table(rows: list[Row]) -> str:
    header = ["metric", "project", "limit", "ratio", "target", "ok"]
    body = []
    for row in rows:
        ok = "n/a" if row.ok is None else ("yes" if row.ok else "NO")
        # Cut, not rounded: a ratio of 0.496 against a target of 0.50 must not read 0.50.
        r = "—" if row.ratio is None else f"{math.floor(row.ratio * 100) / 100:.2f}"
        body.append([row.metric, row.project, row.limit, r, row.target, ok])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def write_json(rows: list[Row], path: str) -> None:
    Path(path).write_text(json.dumps([row.as_json() for row in rows], ensure_ascii=False, indent=2) + "\n")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S', time.gmtime())}] {message}", file=sys.stderr, flush=True)


# --- Timing -----------------------------------------------------------------------


@contextlib.contextmanager
def stopwatch():
    """`with stopwatch() as t: ...; t.seconds`."""

    class _T:
        seconds = 0.0

    t = _T()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def percentile_ms(samples: list[float], pct: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index] * 1000


# --- Subprocesses -----------------------------------------------------------------


@dataclass
class ChildResult:
    result: dict
    peak_rss_mb: float
    seconds: float
    output: str


def run_child(task: str, args: dict, *, timeout: float = 1800) -> ChildResult:
    """Run `tests/benchmarks/child.py TASK ARGS` and return its JSON result and peak RSS.

    The peak resident size is the child's own VmHWM, which it reports in its result.
    Not `ru_maxrss` from wait4: Linux folds the high-water RSS of the address space an
    exec replaces into the new program's ru_maxrss, and subprocess spawns with vfork,
    so that was this (parent) process's peak — after generating a million rows, a
    child that did nothing "peaked" at several hundred MB.
    """
    out = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (read back after wait4, closed below)
    cmd = [PY, str(ROOT / "tests" / "benchmarks" / "child.py"), task, json.dumps(args)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    out.seek(0)
    text = out.read().decode(errors="replace")
    out.close()
    result: dict = {}
    for line in reversed(text.splitlines()):
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line[len("BENCH_RESULT ") :])
            break
    if not result:
        tail = "\n".join(text.splitlines()[-15:])
        result = {"error": f"child {task} exited {proc.returncode} without a result: {tail}"}
    if result.get("profile"):
        Path(result["profile"]).with_suffix(".txt").write_text(text)
        log(f"  profile of {task}: {result['profile']} (top costs in the .txt beside it)")
    # The child's own VmHWM (kB) when it reports one; ru_maxrss (kB on Linux) is only
    # a fallback: it includes this process's peak, inherited through vfork + exec.
    peak_kb = result.get("peak_rss_kb") or usage.ru_maxrss
    return ChildResult(result=result, peak_rss_mb=peak_kb / 1024, seconds=seconds, output=text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A background process (gunicorn, a Celery worker) stopped by its own pid."""

    def __init__(self, name: str, cmd: list[str], *, env: dict | None = None, log_path: Path | None = None):
        self.name = name
        self.log_path = log_path or Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wait_http(port: int, path: str = "/health/", *, service: Service | None = None, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            raise RuntimeError(f"{service.name} exited: {service.log_tail()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server on port {port} did not answer {path}")


def gunicorn(
    *, workers: int = 2, settings_module: str | None = None, env: dict | None = None, extra: list[str] | None = None
) -> tuple[Service, int]:
    """Start gunicorn serving the portal on a free loopback port.

    It runs from the repository root, so a project `gunicorn.conf.py` there applies,
    as it would in production; the command line fixes the workers and the port.
    """
    port = free_port()
    cmd = [
        str(Path(PY).with_name("gunicorn")),
        "registry.wsgi:application",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        *(extra or []),
    ]
    child_env = dict(env or {})
    if settings_module:
        child_env["DJANGO_SETTINGS_MODULE"] = settings_module
    service = Service("gunicorn", cmd, env=child_env)
    try:
        wait_http(port, service=service)
    except Exception:
        service.stop()
        raise
    return service, port


# --- HTTP load --------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        return percentile_ms(self.latencies, 99)

    @property
    def p50_ms(self) -> float:
        return percentile_ms(self.latencies, 50)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split()[1])
    length, chunked, close = None, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            close = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()
        close = True
    return status, close


async def _load(port, requests_for, connections, seconds, *, count=None) -> LoadResult:
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = 0
    deadline = time.perf_counter() + seconds if seconds else None
    sent = 0

    async def worker(n: int) -> None:
        nonlocal errors, sent
        reader = writer = None
        while True:
            if deadline is not None and time.perf_counter() >= deadline:
                break
            if count is not None and sent >= count:
                break
            payload = requests_for(sent)
            sent += 1
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(payload)
                await writer.drain()
                status, close = await _read_response(reader)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[status] += 1
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    elapsed = time.perf_counter() - start
    return LoadResult(len(latencies), elapsed, latencies, statuses, errors)


def http_request(method: str, path: str, *, body: bytes = b"", headers: dict | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: registry-bench"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def load(
    port: int, requests_for, *, connections: int, seconds: float | None = None, count: int | None = None
) -> LoadResult:
    """Drive `connections` keep-alive connections (reconnecting when the server closes).

    `requests_for(i)` returns the raw request bytes of the i-th request. Runs for
    `seconds`, or until `count` requests were sent. Latency includes connecting,
    as a real client's would.
    """
    return asyncio.run(_load(port, requests_for, connections, seconds, count=count))


def interleaved(
    port: int, sides: dict[str, object], *, connections: int, seconds: float, rounds: int = 5
) -> dict[str, LoadResult]:
    """Load each of `sides` ({name: requests_for}) for `seconds` in all, in alternating rounds.

    The machines are shared and their speed drifts within a minute: two back-to-back
    10-second runs compared one side measured in a faster minute than the other (the
    verification ratio moved between 0.45 and 0.53 from run to run). In rounds of
    `seconds / rounds`, the order reversed every round, both sides see the same
    minutes. Each side's result merges its rounds: requests over the time spent on
    it, its latencies together.
    """
    names = list(sides)
    merged = {name: LoadResult(0, 0.0, [], Counter(), 0) for name in names}
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            run = load(port, sides[name], connections=connections, seconds=seconds / rounds)
            total = merged[name]
            total.requests += run.requests
            total.seconds += run.seconds
            total.latencies += run.latencies
            total.statuses.update(run.statuses)
            total.errors += run.errors
    return merged


# --- Transactions -----------------------------------------------------------------


class LongestTransaction:
    """Poll pg_stat_activity from a side thread; remember the longest open transaction.

    Counts every client backend of the bench database except the poller itself, so
    the measured process must be the only one working there while it runs.
    """

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.longest = 0.0
        self.longest_query = ""  # the statement running when the longest was last seen
        self._seen: dict[tuple[int, object], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = side_connection()
        try:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT pid, xact_start, EXTRACT(EPOCH FROM clock_timestamp() - xact_start), left(query, 120) "
                    "FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                ).fetchall()
                for pid, started, age, query in rows:
                    key = (pid, started)
                    self._seen[key] = max(self._seen.get(key, 0.0), float(age))
                    if float(age) >= self.longest:
                        self.longest, self.longest_query = float(age), query
                self._stop.wait(self.interval)
        finally:
            conn.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def transactions(self) -> int:
        return len(self._seen)
