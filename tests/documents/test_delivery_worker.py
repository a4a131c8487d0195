"""Delivery through a real Celery worker process, a real Redis broker and the emulator over HTTP.

Each test runs its own worker (`celery -A registry worker --pool=threads`) against
the test database, and a private Redis on a free port as the broker, so the broker
can be stopped and started. This process plays the issuing portal and, between
polls, the beat sweep.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from documents import delivery, services
from documents.models import Delivery, DeliveryState
from tests.documents import gosuslugi_support as support
from tests.documents.gosuslugi_support import ROOT, TOKEN, free_port, issue_document, stop, wait_for_port
from tests.factories import DocumentFactory, GraduateFactory

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
standalone_emulator = support.standalone_emulator


class PrivateRedis:
    """A throwaway redis-server that a test may stop and start again (state is lost)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)

    def stop(self) -> None:
        stop(self.process, sig=signal.SIGKILL)


@pytest.fixture(scope="module")
def broker():
    """The private Redis, with this process's Celery producer pointed at it."""
    redis = PrivateRedis()
    redis.start()
    try:
        with support.celery_broker(redis.url):
            yield redis
    finally:
        redis.stop()


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery -A registry worker` on the test database, the private broker and the emulator."""

    def __init__(self, *, broker_url: str, emulator_url: str, log: Path, **env):
        self.log = log
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "GOSUSLUGI_URL": emulator_url,
            "GOSUSLUGI_TOKEN": TOKEN,
            "GOSUSLUGI_TIMEOUT": "0.5",
            "GOSUSLUGI_BACKOFF_BASE": "0.1",
            "GOSUSLUGI_BACKOFF_MAX": "0.5",
            "GOSUSLUGI_LEASE": "1",
            "GOSUSLUGI_MAX_ATTEMPTS": "40",
            "REGISTRY_DEMO": "1",
            "LOG_LEVEL": "WARNING",
            **{k: str(v) for k, v in env.items()},
        }
        self.process = None

    def start(self) -> "Worker":
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        command = [sys.executable, "-m", "celery", "-A", "registry", "worker", "--pool=threads", "-c", "4"]
        command += ["-l", "INFO", "-n", name, "--without-heartbeat", "--without-gossip", "--without-mingle"]
        out = self.log.open("a")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + 30
        while "ready." not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.tail()}")
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        stop(self.process, sig=signal.SIGKILL)

    def tail(self) -> str:
        return "\n".join(self.log.read_text().splitlines()[-40:])


@pytest.fixture
def emulator(standalone_emulator, settings):
    standalone_emulator.reset()
    settings.GOSUSLUGI_URL = standalone_emulator.url
    settings.GOSUSLUGI_TOKEN = TOKEN
    settings.GOSUSLUGI_BATCH_SIZE = 5
    yield standalone_emulator
    # The test's workers are gone (start_worker is torn down first), but a request
    # the emulator delays (latency and timeout faults) may still land: let it, so it
    # is counted here and not in the next test's figures.
    standalone_emulator.faults()
    seen, quiet_since, deadline = None, time.monotonic(), time.monotonic() + 10.0
    while time.monotonic() - quiet_since < 2.0 and time.monotonic() < deadline:
        stats = standalone_emulator.stats()
        if stats != seen:
            seen, quiet_since = stats, time.monotonic()
        time.sleep(0.2)
    standalone_emulator.reset()


@pytest.fixture
def start_worker(transactional_db, broker, emulator, tmp_path):
    workers = []

    def start(**env) -> Worker:
        worker = Worker(
            broker_url=broker.url, emulator_url=emulator.url, log=tmp_path / f"worker{len(workers)}.log", **env
        )
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()


def settle(rows_done, *, workers, timeout: float = 60.0) -> None:
    """Poll until `rows_done()`; sweep once a second meanwhile, as beat would."""
    last_sweep = 0.0

    def tick():
        nonlocal last_sweep
        if time.monotonic() - last_sweep >= 1.0:
            delivery.deliveries_sweep()
            last_sweep = time.monotonic()

    try:
        support.wait_until(rows_done, timeout=timeout, interval=0.2, tick=tick)
    except AssertionError:
        states = list(Delivery.objects.values_list("id", "action", "state", "attempts", "last_error"))
        logs = "\n\n".join(w.tail() for w in workers)
        raise AssertionError(f"deliveries did not settle: {states}\n{logs}") from None


def all_in(state: str, action: str = "publish"):
    return lambda: not Delivery.objects.filter(action=action).exclude(state=state).exists()


def assert_placed_exactly_once(emulator, documents) -> None:
    for document in documents:
        placed = emulator.account(document.graduate.snils)
        assert [d["document"]["payload"]["id"] for d in placed] == [document.pk]
    assert emulator.stats()["created"] == len(documents)


def test_every_document_is_placed_exactly_once_with_faults_on(alice_actor, emulator, start_worker):
    emulator.faults(error_rate=0.3, timeout_rate=0.1, timeout_ms=1500, rate_limit_per_s=15)
    worker = start_worker()
    documents = [issue_document(alice_actor) for _ in range(20)]

    settle(all_in(DeliveryState.DONE), workers=[worker])

    emulator.faults()
    assert_placed_exactly_once(emulator, documents)
    attempts = sum(Delivery.objects.values_list("attempts", flat=True))
    assert attempts > len(documents), "the faults never struck: the test proved nothing"


def test_documents_issued_while_the_broker_is_down_are_delivered_by_the_sweep(
    alice_actor, emulator, broker, start_worker
):
    worker = start_worker()
    broker.stop()
    try:
        documents = [issue_document(alice_actor) for _ in range(5)]
        assert Delivery.objects.filter(state=DeliveryState.PENDING).count() == 5
    finally:
        broker.start()

    settle(all_in(DeliveryState.DONE), workers=[worker], timeout=90)
    assert_placed_exactly_once(emulator, documents)


def test_a_worker_killed_mid_delivery_still_places_each_document_once(alice_actor, emulator, start_worker, settings):
    settings.GOSUSLUGI_BATCH_SIZE = 1
    # The portal places at once and answers late: the worker dies with the call made
    # and its outcome unwritten.
    emulator.faults(latency_ms=4000)
    doomed = start_worker(GOSUSLUGI_TIMEOUT="6")
    documents = [issue_document(alice_actor) for _ in range(4)]
    support.wait_until(lambda: emulator.stats()["created"] >= 2, timeout=20)
    doomed.kill()
    assert Delivery.objects.filter(state=DeliveryState.IN_PROGRESS).exists()

    emulator.faults()
    survivor = start_worker()
    settle(all_in(DeliveryState.DONE), workers=[doomed, survivor], timeout=60)

    assert_placed_exactly_once(emulator, documents)
    assert emulator.stats()["replayed"] >= 1


def test_annul_after_delivery_withdraws_from_the_account(alice_actor, emulator, start_worker):
    worker = start_worker()
    documents = [issue_document(alice_actor) for _ in range(3)]
    settle(all_in(DeliveryState.DONE), workers=[worker])

    for document in documents:
        services.document_annul(actor=alice_actor, document=document, reason="ошибка в фамилии")
    settle(all_in(DeliveryState.DONE, action="withdraw"), workers=[worker])

    for document in documents:
        assert emulator.account(document.graduate.snils) == []
    assert emulator.stats()["removed"] == 3


def test_a_refused_document_fails_and_is_not_retried(alice_actor, school, emulator, start_worker):
    worker = start_worker()
    draft = DocumentFactory(graduate=GraduateFactory(institution=school, snils="11111111100"))
    services.document_issue(actor=alice_actor, document=draft)

    settle(all_in(DeliveryState.FAILED), workers=[worker])
    for _ in range(3):
        delivery.deliveries_sweep()
    time.sleep(0.5)
    row = Delivery.objects.get(action="publish")
    assert row.state == DeliveryState.FAILED and row.attempts == 1 and "HTTP 400" in row.last_error


def test_two_workers_sent_every_row_three_times_deliver_each_once(alice_actor, emulator, start_worker):
    workers = [start_worker(), start_worker()]
    documents = [issue_document(alice_actor) for _ in range(10)]
    ids = list(Delivery.objects.values_list("pk", flat=True))
    for _ in range(3):
        delivery.deliveries_dispatch(delivery_ids=ids)

    settle(all_in(DeliveryState.DONE), workers=workers)
    assert_placed_exactly_once(emulator, documents)
    assert emulator.stats()["replayed"] == 0


def _sessions_started() -> int:
    """Connections ever made to the test database (PostgreSQL 14+), as of now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_the_worker_keeps_its_database_connections_across_tasks(alice_actor, emulator, start_worker):
    """Celery's Django fix-up would open a new PostgreSQL connection for every task."""
    worker = start_worker()
    # Let the worker's threads connect (the worker's first tasks) before counting.
    for _ in range(4):
        issue_document(alice_actor)
    settle(all_in(DeliveryState.DONE), workers=[worker])
    time.sleep(1.5)  # a backend reports its session to the statistics within a second
    before = _sessions_started()

    for _ in range(24):
        issue_document(alice_actor)  # one task each, sent on commit
    settle(all_in(DeliveryState.DONE), workers=[worker])
    time.sleep(1.5)

    assert emulator.stats()["created"] == 28
    # The worker's 4 threads may each open one on a first task; a connection per
    # task would be 24 and more.
    assert _sessions_started() - before <= 6, "the worker opened a connection per task"


def test_a_kept_connection_the_server_dropped_is_replaced_before_the_next_task(alice_actor, emulator, start_worker):
    worker = start_worker()
    documents = [issue_document(alice_actor) for _ in range(4)]
    settle(all_in(DeliveryState.DONE), workers=[worker])
    with connection.cursor() as cursor:
        # Every other connection to the test database: the worker's.
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1

    documents += [issue_document(alice_actor) for _ in range(4)]
    settle(all_in(DeliveryState.DONE), workers=[worker])

    assert_placed_exactly_once(emulator, documents)
    log = worker.log.read_text()
    assert "OperationalError" not in log and "InterfaceError" not in log, worker.tail()
