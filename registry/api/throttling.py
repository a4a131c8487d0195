"""Per-key request limits.

A fixed window counted with one atomic cache increment per request: DRF's
SimpleRateThrottle keeps a list of every request time in the cache and rewrites
it on each request, which at thousands of requests a minute costs more than the
view itself. On Redis the window is created and counted in one round trip (a
pipelined SET NX EX + INCR); Django's cache API would take three (add, then
incr's EXISTS and INCRBY), each through a freshly built client. A fixed window
may let through up to twice the rate across a window boundary; for abuse control
that is an acceptable trade.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] under the key's scope
(`issue`, `verify`), set from the environment in settings.
"""

import math
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from institutions.models import ApiKey

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/min' → (600, 60)."""
    count, _slash, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[:1].lower()]


def window_hit(cache_key: str, *, timeout: int) -> int:
    """Count one request in the window `cache_key` (created for `timeout` s) and return the count."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        key = cache.make_and_validate_key(cache_key)
        client = _redis_client(cache, key)
        # Not a MULTI: SET NX cannot undo a concurrent INCR, and both are atomic alone.
        pipe = client.pipeline(transaction=False)
        pipe.set(key, 0, ex=timeout, nx=True)
        pipe.incr(key)
        return int(pipe.execute()[1])
    cache.add(cache_key, 0, timeout=timeout)
    try:
        return cache.incr(cache_key)
    except ValueError:  # the window expired between add and incr
        cache.add(cache_key, 1, timeout=timeout)
        return 1


def _redis_client(cache: RedisCache, key: str):
    """The write client of Django's Redis cache, built once per cache object (they are per thread)."""
    client = getattr(cache, "_throttle_client", None)
    if client is None:
        client = cache._cache.get_client(key, write=True)
        cache._throttle_client = client
    return client


class ApiKeyRateThrottle(BaseThrottle):
    cache_prefix = "api-throttle"

    def __init__(self):
        self._wait = None

    def allow_request(self, request, view) -> bool:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        if key is None:
            return True
        # Read at request time, not import time, so settings overrides take effect.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(key.scope)
        if not rate:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        # The prefix is the key's public id; unlike the row id it is never reused.
        count = window_hit(f"{self.cache_prefix}:{key.prefix}:{period}:{window}", timeout=period + 1)
        if count > limit:
            self._wait = max(1, math.ceil((window + 1) * period - now))
            return False
        return True

    def wait(self):
        return self._wait
