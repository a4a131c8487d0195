"""Partner keys remembered per process, safe against revocation.

Every API request needs its key's row. Reading it from PostgreSQL costs a network
round trip, about as much as the whole verify query; the throttle's Redis round
trip happens anyway. So each process remembers the keys it has seen, and the
throttle's round trip also reads a generation token that changes whenever any key
changes (revoked, edited, deleted). A remembered key is used only while the token
is the one read before its row was loaded; on any change every process drops its
entries on its very next request and reloads the rows from the database.

What stays true with the cache:

* The presented secret is checked on every request: the SHA-256 of the whole key
  is compared, in constant time, with the remembered hash.
* A revoked key is refused on the next request in every process. api_key_revoke
  and every save or delete of an ApiKey (the admin's too) call
  institutions.apikeys.api_keys_changed(), which replaces the token before and after the commit:
  before, so that the change is seen at once even inside a transaction; after,
  so that a process that loaded the row between the two (the old, live one,
  since the change was not yet committed) drops it again.
  (A QuerySet.update() sends no signal: such code calls api_keys_changed() itself.)
* The token is read before the row, so a change that commits after the token was
  read always leaves a stale token behind it.
* The token is random, never a counter, and never absent when a row is
  remembered: a Redis restart or eviction cannot bring back a value a process
  still holds.
* last_used_at keeps its minute's precision: an entry is used only until a minute
  after the key's last_used_at, then the row is read (and marked) again.
* An issue key's institution is never cached: each request gets a fresh ApiKey
  object and loads the institution when a view needs it.

Without Redis (the embedded SQLite/locmem mode) there is no token shared between
processes, so nothing is remembered and every request reads the row.
"""

import hmac
import secrets
import time
from dataclasses import dataclass

from django.core.cache import caches
from django.utils import timezone

from institutions.apikeys import (
    GENERATION_KEY,
    LAST_USED_PRECISION,
    api_key_authenticate,
    api_key_hash,
    api_key_prefix,
)
from institutions.models import ApiKey
from registry.api.throttling import current_window, redis_round_trips, window_hit_commands

_FIELDS = [f.attname for f in ApiKey._meta.concrete_fields]


@dataclass(frozen=True)
class _Entry:
    key_hash: str
    db: str
    values: tuple
    generation: bytes | None
    fresh_until: object  # an aware datetime: a minute after the key's last_used_at

    def row(self) -> ApiKey:
        """A fresh ApiKey for one request (views may attach related objects to it)."""
        return ApiKey.from_db(self.db, _FIELDS, self.values)


class KeyCache:
    """One process's remembered keys, by prefix. Only live keys are ever stored."""

    def __init__(self):
        self.entries: dict[str, _Entry] = {}

    def clear(self) -> None:
        self.entries.clear()

    def authenticate(self, key: str) -> ApiKey | None:
        """Return the live key row matching `key`, or None, as api_key_authenticate does.

        On Redis, the request is also counted in its rate window, in the same round
        trip as the generation check; the count is left on the row as `throttle_hit`
        = (window cache key, count) for ApiKeyRateThrottle.
        """
        trips = redis_round_trips()
        prefix = api_key_prefix(key)
        if trips is None or prefix is None:
            return api_key_authenticate(key)
        counted = None
        entry = self.entries.get(prefix)
        if entry is not None and timezone.now() < entry.fresh_until:
            row = entry.row()
            generation, counted = _read_generation(trips, row)
            if generation == entry.generation:
                if not hmac.compare_digest(entry.key_hash, api_key_hash(key)):
                    return None
                row.throttle_hit = counted
                return row
        self.entries.pop(prefix, None)
        # Before the row: see the module's docstring.
        generation, _none = _read_generation(trips, None)
        row = api_key_authenticate(key)
        if row is None:
            return None
        self.entries[prefix] = _Entry(
            key_hash=row.key_hash,
            db=row._state.db,
            values=tuple(getattr(row, name) for name in _FIELDS),
            generation=generation,
            fresh_until=row.last_used_at + LAST_USED_PRECISION,
        )
        row.throttle_hit = counted
        return row


def _read_generation(trips, row: ApiKey | None) -> tuple[bytes | None, tuple[str, int] | None]:
    """Read the generation token and, for `row`, count the request in its rate window: one round trip.

    Without `row` (before loading a row), a missing token is created first, so an
    entry never holds "no token": a token that disappears (Redis restarted, the key
    evicted) then always differs from what the entries hold.
    """
    cache = caches["default"]
    generation_key = cache.make_and_validate_key(GENERATION_KEY)
    commands = [("SET", generation_key, secrets.token_hex(16), "NX")] if row is None else []
    commands.append(("GET", generation_key))
    window = current_window(row, time.time()) if row is not None else None
    if window is not None:
        commands += window_hit_commands(cache.make_and_validate_key(window.cache_key), timeout=window.timeout)
    results = trips.execute(commands)
    if row is None:
        return results[1], None
    return results[0], ((window.cache_key, int(results[-1])) if window is not None else None)


# The process's cache: the authenticator uses it, tests may swap it to play several processes.
key_cache = KeyCache()
