"""Settings from the environment: typed readers that fail loudly on a bad value."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from registry import env
from registry.env import env_bool, env_float, env_int, env_list, env_rate, env_str, env_url

ROOT = Path(__file__).resolve().parents[2]
PERIODS = frozenset({"sec", "min", "hour"})


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("", False),
    ],
)
def test_booleans_in_every_usual_spelling(monkeypatch, raw, want):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", not want) is want


def test_unset_values_take_the_default(monkeypatch):
    monkeypatch.delenv("X_UNSET", raising=False)
    assert env_bool("X_UNSET", True) is True
    assert env_int("X_UNSET", 7) == 7
    assert env_float("X_UNSET", 1.5) == 1.5
    assert env_str("X_UNSET", "d") == "d"
    assert env_list("X_UNSET", "a, b,,c") == ["a", "b", "c"]
    assert env_rate("X_UNSET", "30/min", periods=PERIODS) == "30/min"
    assert env_url("X_UNSET", schemes=frozenset({"redis"})) == ""


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (lambda: env_bool("X_BAD", False), "maybe"),
        (lambda: env_bool("X_BAD", False), "2"),
        (lambda: env_int("X_BAD", 1), "ten"),
        (lambda: env_int("X_BAD", 1), "1.5"),
        (lambda: env_int("X_BAD", 1, minimum=1), "0"),
        (lambda: env_float("X_BAD", 1.0), "fast"),
        (lambda: env_rate("X_BAD", "1/min", periods=PERIODS), "30 per minute"),
        (lambda: env_rate("X_BAD", "1/min", periods=PERIODS), "30/fortnight"),
        (lambda: env_rate("X_BAD", "1/min", periods=PERIODS), "0/min"),
        (lambda: env_url("X_BAD", schemes=frozenset({"postgres"})), "mysql://db/x"),
        (lambda: env_url("X_BAD", schemes=frozenset({"postgres"})), "postgres//missing-colon"),
    ],
)
def test_a_bad_value_fails_loudly_naming_the_variable(monkeypatch, reader, raw):
    monkeypatch.setenv("X_BAD", raw)
    with pytest.raises(ImproperlyConfigured, match="X_BAD"):
        reader()


def test_good_values_parse(monkeypatch):
    monkeypatch.setenv("X_INT", " 42 ")
    monkeypatch.setenv("X_RATE", "30/Min")
    monkeypatch.setenv("X_URL", "postgres://u@h:5432/db")
    assert env_int("X_INT", 0, minimum=1) == 42
    assert env_rate("X_RATE", "1/sec", periods=PERIODS) == "30/Min"
    assert env_url("X_URL", schemes=frozenset({"postgres"})) == "postgres://u@h:5432/db"


def _check(**env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    base.update(DJANGO_SETTINGS_MODULE="registry.settings", REGISTRY_DEMO="1", **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "postgress://postgres@127.0.0.1/registry"),
        ("CELERY_BROKER_URL", "127.0.0.1:6379"),
        ("VERIFY_RATE_LIMIT", "30 a minute"),
        ("REGISTRY_API_RATE_ISSUE", "lots"),
        ("SESSION_COOKIE_AGE", "30m"),
        ("AXES_FAILURE_LIMIT", "0"),
    ],
)
def test_the_portal_refuses_to_start_on_a_bad_setting(tmp_path, name, raw):
    result = _check(REGISTRY_VAR_DIR=str(tmp_path), **{name: raw})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("rate", "parsed"), [("30/min", (30, 60)), (" 2 / Hour ", (2, 3600)), ("5/s", (5, 1)), ("1/day", (1, 86400))]
)
def test_one_rate_parser_serves_every_limiter(rate, parsed):
    assert env.parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["", "0/min", "30", "30/fortnight", "x/min", "30/min/2"])
def test_malformed_rates_are_refused(rate):
    with pytest.raises(ValueError, match="30/min"):
        env.parse_rate(rate)


def test_a_limiter_narrows_the_periods():
    with pytest.raises(ValueError, match="N/hour"):
        env.parse_rate("1/day", periods={"hour": 3600})
