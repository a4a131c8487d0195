"""Fixtures and helpers for the Gosuslugi emulator, client and outbox tests.

Import the fixtures a module uses from here; the emulator's state is reset around
every test that touches it.
"""

import contextlib
import datetime as dt
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from documents import services
from documents.emulator import store
from tests.factories import make_snils

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "emulator-token"
_snils_numbers = itertools.count(70_000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def wait_until(predicate, *, timeout: float, interval: float = 0.2, tick=None):
    """Poll `predicate` until it returns a truthy value; call `tick` between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        if tick is not None:
            tick()
        time.sleep(interval)


def stop(process: subprocess.Popen, *, sig: int = signal.SIGINT) -> None:
    """Stop a process group started by a test, quickly and for sure (SIGINT: gunicorn's quick exit)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def next_snils() -> str:
    return make_snils(next(_snils_numbers))


def issue_document(actor, *, snils: str | None = None, number: int | None = None):
    """Issue a grade-11 certificate through the services (which write the outbox row)."""
    n = number if number is not None else next(_snils_numbers)
    graduate = services.graduate_create(
        actor=actor,
        data=services.GraduateData(
            last_name="Иванов", first_name="Иван", birth_date=dt.date(2007, 3, 1), snils=snils or next_snils()
        ),
    )
    draft = services.document_create_draft(
        actor=actor,
        graduate=graduate,
        data=services.DocumentData(
            kind="secondary_general_certificate",
            number=f"{55000000000000 + n:014d}",
            registration_number=f"R-{n}",
            issued_on=dt.date.today() - dt.timedelta(days=1),
            grades=[{"subject": "Математика", "mark": "5"}],
        ),
    )
    return services.document_issue(actor=actor, document=draft)


@pytest.fixture
def emulator_state(settings, tmp_path):
    """The emulator's own state (the in-process one), empty and fault-free for the test.

    Kept in the test's own SQLite file, not in REDIS_URL: parallel test processes share
    that Redis database, and one test's reset would wipe another's placements.
    """
    settings.GOSUSLUGI_EMULATOR_REDIS_URL = ""
    settings.GOSUSLUGI_EMULATOR_DB = tmp_path / "gosuslugi-emulator.sqlite3"
    state = store()
    state.reset()
    yield state
    state.reset()


def start_emulator(*, port: int, env: dict | None = None, workers: int = 1) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "run_gosuslugi_emulator", "--token", TOKEN]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env={
            **os.environ,
            "GOSUSLUGI_EMULATOR_REDIS_URL": "",
            "GOSUSLUGI_EMULATOR_DB": str(Path(tempfile.mkdtemp(prefix="emulator-")) / "state.sqlite3"),
            **(env or {}),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, process=process)
    except RuntimeError:
        stop(process)
        raise
    return process


class Emulator:
    """A standalone emulator process reached over real HTTP."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

    def faults(self, **faults) -> None:
        self.http.put("/_faults", json=faults).raise_for_status()

    def reset(self) -> None:
        self.http.delete("/_state").raise_for_status()

    def stats(self) -> dict:
        return self.http.get("/_state").json()

    def account(self, snils: str) -> list[dict]:
        return self.http.get(f"/accounts/{snils}/documents").json()["documents"]


@pytest.fixture(scope="module")
def standalone_emulator():
    """`manage.py run_gosuslugi_emulator` on a free port, for the module."""
    port = free_port()
    process = start_emulator(port=port)
    emulator = Emulator(f"http://127.0.0.1:{port}")
    try:
        yield emulator
    finally:
        emulator.http.close()
        # Its state is throwaway: no need to wait for kept-alive connections to drain.
        stop(process, sig=signal.SIGKILL)


@pytest.fixture
def remote_emulator(standalone_emulator, settings):
    """The standalone emulator, reset, with the portal's client pointed at it."""
    standalone_emulator.reset()
    settings.GOSUSLUGI_URL = standalone_emulator.url
    settings.GOSUSLUGI_TOKEN = TOKEN
    yield standalone_emulator


@contextlib.contextmanager
def celery_broker(url: str, *, eager: bool = False):
    """Point this process's Celery producer at another broker for the block.

    With the Django namespace, Celery reads the broker from `broker_write_url`
    once configured; its pools are dropped so the next send connects anew.
    """
    from registry.celery import app

    saved = app.conf.broker_write_url, app.conf.broker_read_url, app.conf.task_always_eager

    def use(write, read):
        # Drop (not close) the pools: kombu keeps them registered per broker URL and
        # hands the same one out again when the URL comes back.
        app.conf.update(broker_write_url=write, broker_read_url=read)
        app._pool = None
        app.amqp._producer_pool = None

    use(url, url)
    app.conf.task_always_eager = eager
    try:
        yield
    finally:
        use(saved[0], saved[1])
        app.conf.task_always_eager = saved[2]
