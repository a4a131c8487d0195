"""`.ci/run`: what CI must do before `make test`, checked without running it."""

import os
import re
import subprocess
from pathlib import Path

CI = Path(__file__).resolve().parents[2] / ".ci" / "run"


def script() -> str:
    return CI.read_text()


def test_ci_script_is_executable_bash_that_parses():
    assert os.access(CI, os.X_OK)
    assert script().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script()
    subprocess.run(["bash", "-n", str(CI)], check=True)


def test_ci_installs_the_system_packages_from_debian():
    for package in ("postgresql", "redis-server", "chromium", "chromium-driver", "gettext"):
        assert re.search(rf"APT_PACKAGES\+=\([^)]*\b{re.escape(package)}\b", script()), package
    assert "apt-get install" in script()


def test_ci_starts_the_services_when_they_are_down_and_waits_for_them():
    text = script()
    assert "pg_ctlcluster" in text and "wait_for PostgreSQL pg_isready" in text
    assert "redis-server --daemonize yes" in text and "wait_for Redis redis-cli" in text


def test_ci_runs_make_test_against_the_services_with_skips_as_failures():
    text = script()
    at_test = text.index("\nmake test")
    before = text[:at_test]
    assert re.search(r"^export DATABASE_URL=\"?postgres://", before, re.M)
    assert re.search(r"^export CELERY_BROKER_URL=\"?redis://", before, re.M)
    assert re.search(r"^export REGISTRY_REQUIRE_SERVICES=1$", before, re.M)
    assert "make install" in before and "make lint" in before
