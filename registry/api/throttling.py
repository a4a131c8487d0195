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
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from institutions.models import ApiKey
from registry.env import parse_rate

CACHE_PREFIX = "api-throttle"


def window_hit(cache_key: str, *, timeout: int) -> int:
    """Count one request in the window `cache_key` (created for `timeout` s) and return the count."""
    cache = caches["default"]
    client = redis_client()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        queue_window_hit(pipe, cache.make_and_validate_key(cache_key), timeout=timeout)
        return int(pipe.execute()[-1])
    cache.add(cache_key, 0, timeout=timeout)
    try:
        return cache.incr(cache_key)
    except ValueError:  # the window expired between add and incr
        cache.add(cache_key, 1, timeout=timeout)
        return 1


def queue_window_hit(pipe, key: str, *, timeout: int) -> None:
    """Queue the counting of one request in the Redis key `key`; the pipeline's last result is the count.

    Not a MULTI: SET NX cannot undo a concurrent INCR, and both are atomic alone.
    """
    pipe.set(key, 0, ex=timeout, nx=True)
    pipe.incr(key)


def redis_client():
    """The write client of Django's Redis cache, or None when the cache is not Redis.

    Built once per cache object (they are per thread); a single-server cache uses
    the same client for every key.
    """
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return None
    client = getattr(cache, "_throttle_client", None)
    if client is None:
        client = cache._cache.get_client(write=True)
        cache._throttle_client = client
    return client


@dataclass(frozen=True)
class Window:
    """The current rate window of one key: its cache key, limit and bounds."""

    cache_key: str
    limit: int
    period: int
    number: int

    @property
    def timeout(self) -> int:
        return self.period + 1


def current_window(api_key: ApiKey, now: float) -> Window | None:
    """The window `api_key`'s request falls in, or None when its scope has no rate."""
    # Read at request time, not import time, so settings overrides take effect.
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(api_key.scope)
    if not rate:
        return None
    limit, period = parse_rate(rate)
    number = int(now // period)
    # The prefix is the key's public id; unlike the row id it is never reused.
    return Window(f"{CACHE_PREFIX}:{api_key.prefix}:{period}:{number}", limit, period, number)


class ApiKeyRateThrottle(BaseThrottle):
    """Refuse a key's requests beyond its scope's rate, with Retry-After.

    On Redis the authenticator usually counts the request already, in the round
    trip that checks its key cache (registry.api.keycache), and leaves the count on
    the key as `throttle_hit`; otherwise the request is counted here.
    """

    def __init__(self):
        self._wait = None

    def allow_request(self, request, view) -> bool:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        if key is None:
            return True
        now = time.time()
        window = current_window(key, now)
        if window is None:
            return True
        counted = getattr(key, "throttle_hit", None)
        if counted is not None and counted[0] == window.cache_key:
            count = counted[1]
        else:
            count = window_hit(window.cache_key, timeout=window.timeout)
        if count > window.limit:
            self._wait = max(1, math.ceil((window.number + 1) * window.period - now))
            return False
        return True

    def wait(self):
        return self._wait
