"""`make run` serves the home page: start scripts/run_portal.py and request `/`."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 240  # migrate and seed on a fresh SQLite file, on a busy CI machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.slow
def test_run_portal_embedded_serves_the_home_page_and_prints_logins(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
    env.update(PORT=str(port), REGISTRY_VAR_DIR=str(tmp_path / "var"), REGISTRY_DEMO="1", WEB_CONCURRENCY="1")
    env.pop("DEMO_PASSWORD", None)
    log = (tmp_path / "portal.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run_portal.py")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            status = _get(f"http://127.0.0.1:{port}/")
            if status == 200:
                break
            time.sleep(1)
        log.seek(0)
        output = log.read()
        assert status == 200, output
        assert _get(f"http://127.0.0.1:{port}/static/css/portal.css") == 200
        assert _get(f"http://127.0.0.1:{port}/admin/login/") == 200
        assert "school.signer" in output and "registry-demo" in output
        assert (tmp_path / "var" / "registry.sqlite3").exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
    assert process.returncode is not None


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_run_portal_production_shape_starts_web_worker_and_beat_and_stops_them_together(tmp_path, settings):
    """With DATABASE_URL and CELERY_BROKER_URL set: honcho runs gunicorn, a worker and beat."""
    import psycopg

    db = settings.DATABASES["default"]
    name = f"portal_run_{os.getpid()}"
    host, db_port, user, password = db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["USER"], db.get("PASSWORD") or ""
    dsn = f"host={host} port={db_port} user={user} dbname=postgres"
    if password:
        dsn += f" password={password}"
    with psycopg.connect(dsn, autocommit=True) as admin_connection:
        admin_connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin_connection.execute(f'CREATE DATABASE "{name}"')
    port = _free_port()
    env = dict(os.environ)
    env.update(
        PORT=str(port),
        REGISTRY_VAR_DIR=str(tmp_path / "var"),
        REGISTRY_DEMO="1",
        # The seed is tested on its own; here only the processes matter.
        REGISTRY_SEED_DEMO="0",
        WEB_CONCURRENCY="1",
        CELERY_CONCURRENCY="1",
        DATABASE_URL=f"postgres://{user}:{password}@{host}:{db_port}/{name}",
    )
    log = (tmp_path / "portal.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run_portal.py")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        output = ""
        while time.monotonic() < deadline and process.poll() is None:
            log.seek(0)
            output = log.read()
            if _get(f"http://127.0.0.1:{port}/") == 200 and "ready." in output and "beat" in output:
                break
            time.sleep(1)
        assert _get(f"http://127.0.0.1:{port}/") == 200, output
        assert "worker.1" in output and "beat.1" in output and "web.1" in output
        # Ctrl-C reaches the foreground group; honcho stops all three.
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        log.seek(0)
        output = log.read()
        for name_ in ("web.1", "worker.1", "beat.1"):
            assert f"{name_} stopped" in output, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        with psycopg.connect(dsn, autocommit=True) as admin_connection:
            admin_connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
