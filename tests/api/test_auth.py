import datetime as dt

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from institutions.apikeys import GENERATION_KEY, api_key_hash, api_key_revoke
from institutions.models import ApiKey, ApiKeyScope
from registry.api import keycache
from registry.api.throttling import redis_client
from tests.api.conftest import assert_error_shape, client_for
from tests.conftest import login_to_admin

pytestmark = pytest.mark.django_db


def test_request_without_key_is_401_with_bearer_challenge():
    response = client_for(None).get("/api/v1/documents/")
    assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer abc.def", "Bearer", "Bearer a b", "Bearer тест.ключ"],
)
def test_malformed_or_unknown_key_is_401(header, issue_key):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/institutions/")
    assert_error_shape(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_right_prefix_with_wrong_secret_is_401(issue_key):
    row, plaintext = issue_key
    forged = f"{row.prefix}.{'x' * 43}"
    assert forged != plaintext
    assert_error_shape(client_for(forged).get("/api/v1/institutions/"), 401, "authentication_failed")


def test_revoked_key_is_401(issue_key):
    row, plaintext = issue_key
    assert client_for(plaintext).get("/api/v1/documents/").status_code == 200
    api_key_revoke(api_key=row)
    assert_error_shape(client_for(plaintext).get("/api/v1/documents/"), 401, "authentication_failed")


def test_key_is_stored_only_as_its_hash(issue_key):
    row, plaintext = issue_key
    row.refresh_from_db()
    assert row.key_hash == api_key_hash(plaintext)
    secret = plaintext.split(".", 1)[1]
    stored = " ".join(str(v) for v in ApiKey.objects.filter(pk=row.pk).values_list().get())
    assert secret not in stored and plaintext not in stored


def test_last_used_is_written_at_most_once_a_minute(issue_key, issuer, monkeypatch):
    row, _ = issue_key
    assert row.last_used_at is None
    issuer.get("/api/v1/institutions/")
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        issuer.get("/api/v1/institutions/")
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    row.refresh_from_db()
    assert row.last_used_at == first
    # Two minutes later (the clock moves, rather than the column: a process that
    # remembers the key, registry.api.keycache, goes by the last use it saw).
    later = first + dt.timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    issuer.get("/api/v1/institutions/")
    row.refresh_from_db()
    assert row.last_used_at == later


def test_verify_key_cannot_list_or_create_documents(verifier):
    assert_error_shape(verifier.get("/api/v1/documents/"), 403, "permission_denied")
    assert_error_shape(verifier.post("/api/v1/documents/", {}), 403, "permission_denied")


def test_issue_key_cannot_verify(issuer):
    assert_error_shape(issuer.post("/api/v1/verify/", {"code": "x"}), 403, "permission_denied")


def test_any_key_reads_the_institution_directory(issuer, verifier):
    assert issuer.get("/api/v1/institutions/").status_code == 200
    assert verifier.get("/api/v1/institutions/").status_code == 200


def test_create_api_key_command_prints_a_working_key_last(school, capsys):
    call_command("create_api_key", "--name", "School IS", "--scope", "issue", "--institution", school.inn)
    key = capsys.readouterr().out.strip().splitlines()[-1]
    row = ApiKey.objects.get(prefix=key.split(".")[0])
    assert row.scope == "issue" and row.institution == school and row.key_hash == api_key_hash(key)
    assert client_for(key).get("/api/v1/documents/").status_code == 200


def test_create_api_key_command_makes_verify_keys(db, capsys):
    call_command("create_api_key", "--name", "Admissions", "--scope", "verify")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert ApiKey.objects.get(prefix=key.split(".")[0]).institution is None


@pytest.mark.parametrize(
    "args",
    [
        ["--scope", "issue"],
        ["--scope", "issue", "--institution", "7707083893"],
        ["--scope", "verify", "--institution", "SCHOOL"],
    ],
)
def test_create_api_key_command_refuses_a_bad_scope_institution_pair(school, args):
    from django.core.management.base import CommandError

    args = [school.inn if a == "SCHOOL" else a for a in args]
    with pytest.raises(CommandError):
        call_command("create_api_key", "--name", "X", *args)
    assert not ApiKey.objects.exists()


@pytest.fixture
def operator_client(client, django_user_model):
    """Signed in to the admin with both factors (the admin requires a verified TOTP device)."""
    user = django_user_model.objects.create_superuser("op", "op@example.org", "pw-op-123456")
    login_to_admin(client, user)
    return client


def test_admin_creates_a_key_and_shows_it_once(operator_client, school):
    response = operator_client.post(
        "/admin/institutions/apikey/add/",
        {"name": "School IS", "scope": "issue", "institution": school.pk},
        follow=True,
    )
    assert response.status_code == 200
    row = ApiKey.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    key = next(word for m in shown for word in m.split() if word.startswith(row.prefix + "."))
    assert row.key_hash == api_key_hash(key)
    change_page = operator_client.get(f"/admin/institutions/apikey/{row.pk}/change/").content.decode()
    assert key.split(".")[1] not in change_page and row.key_hash not in change_page
    assert client_for(key).get("/api/v1/documents/").status_code == 200


def test_admin_refuses_an_issue_key_without_institution(operator_client, db):
    response = operator_client.post("/admin/institutions/apikey/add/", {"name": "X", "scope": "issue"})
    assert response.status_code == 200  # the form again, with the error
    assert not ApiKey.objects.exists()


def test_admin_revoke_action_refuses_the_key_from_then_on(operator_client, issue_key):
    row, plaintext = issue_key
    response = operator_client.post(
        "/admin/institutions/apikey/", {"action": "revoke", "_selected_action": [row.pk]}, follow=True
    )
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert client_for(plaintext).get("/api/v1/documents/").status_code == 401


# --- Keys remembered per process (registry.api.keycache) ---------------------------


def _as_process(monkeypatch, process: keycache.KeyCache) -> None:
    """Serve the next requests as the process owning `process` (each process has its own cache)."""
    monkeypatch.setattr(keycache, "key_cache", process)


def _key_reads(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if ApiKey._meta.db_table in q["sql"]]


needs_key_cache = pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="keys are remembered only with the Redis cache (REDIS_URL)"
)


@needs_key_cache
def test_a_remembered_key_is_still_checked_and_read_from_memory(issue_key, monkeypatch):
    row, plaintext = issue_key
    _as_process(monkeypatch, keycache.KeyCache())
    assert client_for(plaintext).get("/api/v1/institutions/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client_for(plaintext).get("/api/v1/institutions/").status_code == 200
    assert not _key_reads(queries)
    forged = f"{row.prefix}.{'x' * 43}"
    assert_error_shape(client_for(forged).get("/api/v1/institutions/"), 401, "authentication_failed")
    assert client_for(plaintext).get("/api/v1/institutions/").status_code == 200


@needs_key_cache
@pytest.mark.parametrize("change", ["revoke", "admin revoke", "edit", "delete"])
def test_a_changed_key_is_reread_at_once_by_every_process(change, issue_key, operator_client, monkeypatch):
    row, plaintext = issue_key
    processes = [keycache.KeyCache(), keycache.KeyCache()]
    for process in processes:
        _as_process(monkeypatch, process)
        assert client_for(plaintext).get("/api/v1/documents/").status_code == 200
        assert row.prefix in process.entries

    if change == "revoke":
        api_key_revoke(api_key=row)
    elif change == "admin revoke":
        operator_client.post("/admin/institutions/apikey/", {"action": "revoke", "_selected_action": [row.pk]})
    elif change == "edit":
        row.scope = ApiKeyScope.VERIFY  # an issue key turned into a verify key loses the documents
        row.institution = None
        row.save()
    else:
        row.delete()

    for process in processes:
        _as_process(monkeypatch, process)
        response = client_for(plaintext).get("/api/v1/documents/")
        if change == "edit":
            assert_error_shape(response, 403, "permission_denied")
        else:
            assert_error_shape(response, 401, "authentication_failed")


@needs_key_cache
def test_a_lost_generation_token_makes_every_process_reread_its_keys(issue_key, monkeypatch):
    row, plaintext = issue_key
    client = redis_client()
    token = caches["default"].make_and_validate_key(GENERATION_KEY)
    client.delete(token)  # a fresh Redis
    _as_process(monkeypatch, keycache.KeyCache())
    assert client_for(plaintext).get("/api/v1/documents/").status_code == 200
    # Redis restarts (the token is gone) while the key is revoked behind the API's back.
    client.delete(token)
    ApiKey.objects.filter(pk=row.pk).update(revoked_at=timezone.now())
    assert_error_shape(client_for(plaintext).get("/api/v1/documents/"), 401, "authentication_failed")
