"""The verification API's direct answers (registry.api.direct) against DRF's, request by request."""

import json
import time

import pytest
from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from documents import services
from institutions.apikeys import api_key_create, api_key_revoke
from institutions.models import ApiKey
from registry.api.direct import MAX_DIRECT_BODY, DirectAnswerMixin
from registry.api.throttling import current_window
from tests.api.conftest import assert_error_shape, client_for, issue

pytestmark = pytest.mark.django_db

URL = "/api/v1/verify/"
# Headers that differ between two answers given a moment apart.
CLOCK_HEADERS = {"Date", "Expires", "Retry-After"}


def _request(client, *, body, content_type="application/json", accept=None, path=URL, method="POST"):
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.generic(method, path, data, content_type=content_type, **extra)


def _answer(response) -> tuple:
    headers = {k: v for k, v in response.headers.items() if k not in CLOCK_HEADERS}
    return response.status_code, response.content, headers


def _window_count(prefix: str):
    row = ApiKey.objects.get(prefix=prefix)
    window = current_window(row, time.time())
    return caches["default"].get(window.cache_key) if window else None


@pytest.fixture
def documents(alice_actor):
    valid = issue(alice_actor, 1)
    annulled = issue(alice_actor, 2)
    services.document_annul(actor=alice_actor, document=annulled, reason="ошибка в фамилии")
    return {"valid": valid.verification_code, "annulled": annulled.verification_code}


@pytest.fixture
def direct_calls(monkeypatch):
    """Which requests DRF's cycle saw: a directly answered one never reaches initialize_request."""
    seen = []
    original = APIView.initialize_request

    def spy(self, request, *args, **kwargs):
        seen.append(request.path)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "initialize_request", spy)
    return seen


def _key(scope: str, school):
    row, plaintext = api_key_create(name=f"{scope} key", scope=scope, institution=school if scope == "issue" else None)
    return row, plaintext


SCENARIOS = {
    # name: (key kind, request keyword arguments, answered directly)
    "valid code": ("verify", {"body": {"code": "<valid>"}}, True),
    "annulled code": ("verify", {"body": {"code": "<annulled>"}}, True),
    "unknown code": ("verify", {"body": {"code": "AAAAAAAAAAAAAAAAAAAAAA"}}, True),
    "code with spaces": ("verify", {"body": {"code": "  <valid>  "}}, True),
    "code and other fields": ("verify", {"body": {"code": "<valid>", "number": "1"}}, True),
    "accept any": ("verify", {"body": {"code": "<valid>"}, "accept": "*/*"}, True),
    "accept json": ("verify", {"body": {"code": "<valid>"}, "accept": "application/json"}, True),
    "accept json indented": ("verify", {"body": {"code": "<valid>"}, "accept": "application/json; indent=2"}, False),
    "accept html": ("verify", {"body": {"code": "<valid>"}, "accept": "text/html"}, False),
    "format query": ("verify", {"body": {"code": "<valid>"}, "path": URL + "?format=json"}, False),
    "charset": ("verify", {"body": {"code": "<valid>"}, "content_type": "application/json; charset=utf-8"}, False),
    "form body": ("verify", {"body": "code=abc", "content_type": "application/x-www-form-urlencoded"}, False),
    "not json": ("verify", {"body": "{code"}, False),
    "nan": ("verify", {"body": '{"code": NaN}'}, False),
    "not utf-8": ("verify", {"body": b'{"code": "\xff"}'}, False),
    "a list": ("verify", {"body": [{"code": "<valid>"}]}, False),
    "code not a string": ("verify", {"body": {"code": 12345}}, False),
    "code badly formed": ("verify", {"body": {"code": "abc$%"}}, False),
    "code too long": ("verify", {"body": {"code": "A" * 65}}, False),
    "by number": ("verify", {"body": {"number": "1", "last_name": "Иванов", "birth_date": "2007-03-01"}}, False),
    "large body": ("verify", {"body": {"code": "<valid>", "pad": "x" * MAX_DIRECT_BODY}}, False),
    "get": ("verify", {"body": "", "method": "GET"}, False),
    "no key": (None, {"body": {"code": "<valid>"}}, False),
    "unknown key": ("unknown", {"body": {"code": "<valid>"}}, False),
    "forged secret": ("forged", {"body": {"code": "<valid>"}}, False),
    "revoked key": ("revoked", {"body": {"code": "<valid>"}}, False),
    "issue key": ("issue", {"body": {"code": "<valid>"}}, False),
}


def _client(kind, school):
    """(client, key prefix or None) for a key of `kind`, new for each call: its rate window starts empty."""
    if kind is None:
        return client_for(None), None
    row, plaintext = _key("issue" if kind == "issue" else "verify", school)
    if kind == "unknown":
        return client_for("zzzzzzzz." + "x" * 43), None
    if kind == "forged":
        return client_for(f"{row.prefix}.{'x' * 43}"), row.prefix
    if kind == "revoked":
        api_key_revoke(api_key=row)
    return client_for(plaintext), row.prefix


def _fill(value, documents):
    if isinstance(value, dict):
        return {k: _fill(v, documents) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, documents) for v in value]
    if isinstance(value, str):
        return value.replace("<valid>", documents["valid"]).replace("<annulled>", documents["annulled"])
    return value


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_request_gets_the_answer_drf_gives_and_is_counted_as_drf_counts_it(
    name, documents, school, direct_calls, monkeypatch
):
    kind, request, direct = SCENARIOS[name]
    request = {**request, "body": _fill(request["body"], documents)}

    client, prefix = _client(kind, school)
    with_direct = _answer(_request(client, **request))
    counted_direct = _window_count(prefix) if prefix else None
    assert bool(direct_calls) is not direct, direct_calls

    monkeypatch.setattr(DirectAnswerMixin, "_answer_directly", lambda self, request, kwargs: None)
    client, prefix = _client(kind, school)
    through_drf = _answer(_request(client, **request))
    assert with_direct == through_drf
    if prefix:
        assert counted_direct == _window_count(prefix)  # once, or not at all (a 406 comes first)
        if direct:
            assert counted_direct == 1


@pytest.mark.parametrize("direct", [True, False])
def test_a_key_over_its_rate_is_refused_with_retry_after_either_way(direct, documents, school, monkeypatch, settings):
    if not direct:
        monkeypatch.setattr(DirectAnswerMixin, "_answer_directly", lambda self, request, kwargs: None)
    settings.REST_FRAMEWORK = {
        **api_settings.user_settings,
        "DEFAULT_THROTTLE_RATES": {"issue": None, "verify": "2/min"},
    }
    client, prefix = _client("verify", school)
    answers = [_request(client, body={"code": documents["valid"]}) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_error_shape(answers[2], 429, "throttled")
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert _window_count(prefix) == 3


def test_a_direct_answer_marks_the_request_as_the_partners(documents, school):
    client, _prefix = _client("verify", school)
    response = _request(client, body={"code": documents["valid"]})
    assert response.status_code == 200
    assert response.json()["status"] == "valid"
    # Signed-in answers are never cached (registry.middleware): it saw the partner.
    assert "no-store" in response["Cache-Control"]
    assert response["Allow"] == "POST, OPTIONS"
    assert response["Content-Type"] == "application/json"
