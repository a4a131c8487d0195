"""The API's own plumbing against DRF's: the body parser, Redis round trips."""

import io
import os
import uuid

import pytest
from django.core.cache import caches
from redis.exceptions import ResponseError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from registry.api import BodyJSONParser
from registry.api.throttling import redis_client, redis_round_trips, window_hit

BODIES = [
    b'{"code": "abc"}',
    '{"name": "Иванов \u2028 ё"}'.encode(),
    b'[1, 2.5, true, null, {"a": [{}]}]',
    b'"just a string"',
    b"  {}  ",
    b'{"big": 123456789012345678901234567890}',
    b'{"x": NaN}',
    b'{"x": Infinity}',
    b"{not json",
    b"",
    b'{"a": 1} trailing',
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    b'{"bad": "\xff"}',  # not UTF-8
    '{"cp1251": "Иванов"}'.encode("cp1251"),
]


def _parse(parser, body: bytes, encoding: str = "utf-8"):
    try:
        return "ok", parser.parse(io.BytesIO(body), "application/json", {"encoding": encoding})
    except ParseError as exc:
        return "error", exc.status_code, str(exc.detail).split(" - ")[0]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("encoding", ["utf-8", "cp1251"])
def test_the_body_parser_answers_as_drfs_json_parser(body, encoding):
    assert _parse(BodyJSONParser(), body, encoding) == _parse(JSONParser(), body, encoding)


def test_the_api_views_parse_json_with_the_body_parser():
    from django.urls import get_resolver

    views = [p.callback for p in get_resolver("registry.api_urls").url_patterns if hasattr(p.callback, "cls")]
    # The partner views, not drf-spectacular's (its schema views take GETs only).
    parsers = {v.cls.__name__: v.cls.parser_classes for v in views if not v.cls.__module__.startswith("drf_")}
    assert {"VerifyView", "DocumentViewSet", "InstitutionViewSet"} <= set(parsers)
    assert all(classes[:1] == [BodyJSONParser] for classes in parsers.values()), parsers


# --- Redis round trips ------------------------------------------------------------


@pytest.fixture
def redis_cache(settings):
    url = os.environ.get("REDIS_URL") or os.environ["CELERY_BROKER_URL"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    return caches["default"]


def _key() -> str:
    return caches["default"].make_and_validate_key(f"test-trip:{uuid.uuid4().hex}")


@pytest.mark.redis
def test_a_round_trip_returns_each_commands_raw_reply_in_order(redis_cache):
    key = _key()
    trips = redis_round_trips()
    assert trips is redis_round_trips()  # one per cache object
    assert trips.execute([("SET", key, 5, "EX", 30, "NX"), ("GET", key), ("INCR", key), ("SET", key, 0, "NX")]) == [
        b"OK",
        b"5",
        6,
        None,
    ]
    redis_client().delete(key)


@pytest.mark.redis
def test_an_error_reply_is_raised_and_leaves_no_reply_behind_for_the_next_trip(redis_cache):
    key = _key()
    trips = redis_round_trips()
    with pytest.raises(ResponseError):
        trips.execute([("SET", key, "not a number"), ("INCR", key), ("GET", key)])
    # The GET's reply was never read: the connection was dropped rather than left behind.
    assert trips.execute([("GET", key)]) == [b"not a number"]
    redis_client().delete(key)


@pytest.mark.redis
def test_a_connection_the_server_closed_is_reopened_once(redis_cache):
    trips = redis_round_trips()
    key = _key()
    assert trips.execute([("INCR", key)]) == [1]
    own_id = trips.execute([("CLIENT", "ID")])[0]
    redis_client().execute_command("CLIENT", "KILL", "ID", own_id)  # as a Redis restart would
    assert trips.execute([("INCR", key)]) == [2]
    assert trips.execute([("CLIENT", "ID")])[0] != own_id
    redis_client().delete(key)


@pytest.mark.redis
def test_a_forked_child_opens_its_own_connection(redis_cache):
    trips = redis_round_trips()
    parent_id = trips.execute([("CLIENT", "ID")])[0]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, never return into pytest
        try:
            os.write(write_end, str(trips.execute([("CLIENT", "ID")])[0]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_id = int(os.read(read_end, 64))
    os.close(read_end)
    os.waitpid(pid, 0)
    assert child_id != parent_id
    assert trips.execute([("CLIENT", "ID")])[0] == parent_id  # the parent's socket untouched


@pytest.mark.redis
def test_window_hits_go_through_the_round_trips(redis_cache):
    name = f"test-window:{uuid.uuid4().hex}"
    trips = redis_round_trips()
    before = trips.execute([("CLIENT", "INFO")])[0]
    assert [window_hit(name, timeout=7) for _ in range(2)] == [1, 2]
    assert trips.execute([("CLIENT", "INFO")])[0].split(b" ")[0] == before.split(b" ")[0]  # same connection
    redis_cache.delete(name)


def test_without_redis_there_are_no_round_trips(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert redis_round_trips() is None
