"""Typed readers for settings taken from the environment.

Each reader fails loudly on a value it cannot parse: a typo in production
configuration must stop the process at start, not surface as odd behaviour later.
"""

import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


_RATE = re.compile(r"\s*(\d+)\s*/\s*([a-z]+)\s*")
# Every period a rate may name, in seconds; each limiter narrows it with `periods`.
RATE_PERIODS = {
    "s": 1, "sec": 1, "second": 1,
    "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hour": 3600,
    "d": 86400, "day": 86400,
}  # fmt: skip


def parse_rate(rate: str, *, periods=RATE_PERIODS) -> tuple[int, int]:
    """ "30/min" → (30, 60): N ≥ 1 requests per period; ValueError for anything else."""
    match = _RATE.fullmatch((rate or "").lower())
    if not match or int(match.group(1)) < 1 or match.group(2) not in periods:
        choices = ", ".join(f"N/{p}" for p in sorted(periods))
        raise ValueError(f"a rate such as 30/min ({choices}), got {rate!r}")
    return int(match.group(1)), RATE_PERIODS[match.group(2)]


def env_rate(name: str, default: str, *, periods=RATE_PERIODS) -> str:
    """A rate "N/period" (e.g. "30/min"), N positive and the period one of `periods`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        parse_rate(raw, periods=periods)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be {exc}") from None
    return raw.strip()


def env_url(name: str, default: str = "", *, schemes: frozenset[str]) -> str:
    """A URL whose scheme is one of `schemes`; empty means "not set"."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    scheme, sep, _rest = raw.partition("://")
    if not sep or scheme.lower() not in schemes:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with one of {', '.join(f'{s}://' for s in sorted(schemes))}; "
            f"got one starting with {raw[:12]!r}"
        )
    return raw
