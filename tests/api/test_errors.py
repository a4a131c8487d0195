import os
import uuid

import pytest
from django.core.cache import caches
from django.test import override_settings
from rest_framework.settings import api_settings

from registry.api.throttling import window_hit
from tests.api.conftest import assert_error_shape, create_body

pytestmark = pytest.mark.django_db


def rates(**scopes):
    return override_settings(
        REST_FRAMEWORK={
            **api_settings.user_settings,
            "DEFAULT_THROTTLE_RATES": {"issue": None, "verify": None, **scopes},
        }
    )


def test_requests_over_the_keys_rate_get_429_with_retry_after(verifier):
    with rates(verify="2/min"):
        assert verifier.get("/api/v1/institutions/").status_code == 200
        assert verifier.get("/api/v1/institutions/").status_code == 200
        response = verifier.get("/api/v1/institutions/")
    assert_error_shape(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_throttling_counts_each_key_separately(verifier, issuer):
    with rates(verify="1/min", issue="1/min"):
        assert verifier.get("/api/v1/institutions/").status_code == 200
        assert verifier.get("/api/v1/institutions/").status_code == 429
        assert issuer.get("/api/v1/institutions/").status_code == 200


@pytest.mark.redis
def test_on_redis_a_window_is_counted_atomically_and_expires(settings):
    url = os.environ.get("REDIS_URL") or os.environ["CELERY_BROKER_URL"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    name = f"test-window:{uuid.uuid4().hex}"
    assert [window_hit(name, timeout=7) for _ in range(3)] == [1, 2, 3]
    cache = caches["default"]
    assert cache.get(name) == 3  # the count stays readable through Django's cache API
    key = cache.make_and_validate_key(name)
    assert 0 < cache._cache.get_client(key).ttl(key) <= 7
    cache.delete(name)


def test_json_body_that_does_not_parse_is_400(issuer):
    response = issuer.generic("POST", "/api/v1/documents/", "{not json", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_form_encoded_body_is_415(issuer):
    response = issuer.post("/api/v1/documents/", {"kind": "x"}, format="multipart")
    assert_error_shape(response, 415)


def test_unexpected_failure_is_a_json_500_without_details(issuer, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("documents.api.services.document_create_and_issue", broken)
    response = issuer.post("/api/v1/documents/", create_body(1))
    body = assert_error_shape(response, 500, "server_error")
    assert "secret internals" not in response.content.decode() and body["errors"] == {}
