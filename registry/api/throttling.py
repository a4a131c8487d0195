"""Per-key request limits.

A fixed window counted with one atomic cache increment per request: DRF's
SimpleRateThrottle keeps a list of every request time in the cache and rewrites
it on each request, which at thousands of requests a minute costs more than the
view itself. On Redis the window is created and counted in one round trip (a
SET NX EX + INCR sent together, see RoundTrips); Django's cache API would take
three (add, then incr's EXISTS and INCRBY), each through a freshly built client.
A fixed window may let through up to twice the rate across a window boundary;
for abuse control that is an acceptable trade.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] under the key's scope
(`issue`, `verify`), set from the environment in settings.
"""

import math
import os
import time
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from institutions.models import ApiKey
from registry.env import parse_rate

CACHE_PREFIX = "api-throttle"


def window_hit(cache_key: str, *, timeout: int) -> int:
    """Count one request in the window `cache_key` (created for `timeout` s) and return the count."""
    cache = caches["default"]
    trips = redis_round_trips()
    if trips is not None:
        return int(trips.execute(window_hit_commands(cache.make_and_validate_key(cache_key), timeout=timeout))[-1])
    cache.add(cache_key, 0, timeout=timeout)
    try:
        return cache.incr(cache_key)
    except ValueError:  # the window expired between add and incr
        cache.add(cache_key, 1, timeout=timeout)
        return 1


def window_hit_commands(key: str, *, timeout: int) -> list[tuple]:
    """The Redis commands that count one request in the key `key`; the last one's reply is the count.

    Not a MULTI: SET NX cannot undo a concurrent INCR, and both are atomic alone.
    """
    return [("SET", key, 0, "EX", timeout, "NX"), ("INCR", key)]


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


class RoundTrips:
    """Commands sent to Redis in one round trip, on a connection of their own.

    Every API request makes one such trip (its key check and its rate window,
    registry.api.keycache). Through a redis-py pipeline the trip cost about 55 µs
    more CPU, 8% of a whole verification: the pipeline takes a connection from the
    pool and polls it, and runs the commands through retry, event and metrics
    helpers and a reply callback each. Here the same Connection class packs the
    commands and its parser (hiredis) reads the replies, on one connection kept for
    the cache object (so for the thread), made from the pool's settings; the
    replies come back raw (bytes, int or None).
    """

    def __init__(self, client):
        pool = client.connection_pool
        self._connection_class, self._connection_kwargs = pool.connection_class, dict(pool.connection_kwargs)
        self._pid, self._connection = None, None

    def _connected(self):
        # A forked child never writes to its parent's socket: it opens its own.
        if self._pid != os.getpid():
            self._pid, self._connection = os.getpid(), self._connection_class(**self._connection_kwargs)
        return self._connection

    def execute(self, commands: list[tuple]) -> list:
        """Send `commands` together and return their replies, in order.

        A connection the server has closed (Redis restarted) is reopened once, as
        redis-py's client would retry (if the connection broke after the commands
        ran, they run twice: a rate window counts that request twice); any other
        failure leaves it closed, so no unread reply is ever taken for the next
        trip's.
        """
        connection = self._connected()
        packed = connection.pack_commands(commands)
        for attempt in (1, 2):
            try:
                connection.send_packed_command(packed, check_health=False)
                return [connection.read_response() for _ in commands]
            except RedisConnectionError:
                connection.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                connection.disconnect()
                raise
        raise AssertionError("unreachable")  # pragma: no cover


def redis_round_trips() -> RoundTrips | None:
    """This thread's RoundTrips to the default cache's Redis, or None when the cache is not Redis."""
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return None
    trips = getattr(cache, "_round_trips", None)
    if trips is None:
        trips = cache._round_trips = RoundTrips(redis_client())
    return trips


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
            key.throttle_hit = (window.cache_key, count)  # a second check of this request counts nothing
        if count > window.limit:
            self._wait = max(1, math.ceil((window.number + 1) * window.period - now))
            return False
        return True

    def wait(self):
        return self._wait
