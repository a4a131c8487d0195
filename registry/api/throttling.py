"""Per-key request limits.

A fixed window counted with one atomic cache increment per request: DRF's
SimpleRateThrottle keeps a list of every request time in the cache and rewrites
it on each request, which at thousands of requests a minute costs more than the
view itself. A fixed window may let through up to twice the rate across a window
boundary; for abuse control that is an acceptable trade.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] under the key's scope
(`issue`, `verify`), set from the environment in settings.
"""

import math
import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from institutions.models import ApiKey

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/min' → (600, 60)."""
    count, _slash, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[:1].lower()]


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
        cache_key = f"{self.cache_prefix}:{key.prefix}:{period}:{window}"
        cache.add(cache_key, 0, timeout=period + 1)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the window expired between add and incr
            cache.add(cache_key, 1, timeout=period + 1)
            count = 1
        if count > limit:
            self._wait = max(1, math.ceil((window + 1) * period - now))
            return False
        return True

    def wait(self):
        return self._wait
