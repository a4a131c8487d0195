"""The Gosuslugi emulator: the adapter contract, faults, state, the account page."""

import json
import os
import signal
import uuid

import httpx
import pytest

from documents.emulator import Faults, RedisStore, SqliteStore
from tests.documents import gosuslugi_support as support
from tests.documents.gosuslugi_support import TOKEN, free_port, next_snils, start_emulator, stop

emulator_state = support.emulator_state
standalone_emulator = support.standalone_emulator

BASE = "/gosuslugi-emulator"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
SIGNED = {"payload": {"id": 1, "kind": "secondary_general_certificate", "number": "1"}, "alg": "Ed25519", "kid": "k"}
SIGNED["signature"] = "c2ln"


def post(client, *, snils, key, document=None, **extra):
    body = {"snils": snils, "document": document or SIGNED}
    headers = {**AUTH, **({"HTTP_IDEMPOTENCY_KEY": key} if key else {}), **extra}
    return client.post(f"{BASE}/documents", data=json.dumps(body), content_type="application/json", **headers)


def account(client, snils):
    response = client.get(f"{BASE}/accounts/{snils}/documents", **AUTH)
    assert response.status_code == 200
    return response.json()["documents"]


def put_faults(client, **faults):
    response = client.put(f"{BASE}/_faults", data=json.dumps(faults), content_type="application/json", **AUTH)
    assert response.status_code == 200, response.content
    return response.json()


# --- Contract, in-process (the mounted emulator) --------------------------------


def test_placement_is_idempotent_by_key(client, emulator_state):
    snils, key = next_snils(), str(uuid.uuid4())
    first = post(client, snils=snils, key=key)
    again = post(client, snils=snils, key=key)
    assert first.status_code == 201 and first.json()["status"] == "placed"
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert [d["id"] for d in account(client, snils)] == [first.json()["id"]]
    assert emulator_state.stats() == {"created": 1, "replayed": 1, "removed": 0, "placed": 1}


def test_another_key_places_another_copy(client, emulator_state):
    snils = next_snils()
    post(client, snils=snils, key="a")
    post(client, snils=snils, key="b")
    assert len(account(client, snils)) == 2


def test_a_key_reused_with_another_body_is_refused(client, emulator_state):
    post(client, snils=next_snils(), key="same")
    response = post(client, snils=next_snils(), key="same")
    assert response.status_code == 422


def test_placement_needs_the_token(client, emulator_state):
    response = post(client, snils=next_snils(), key="k", HTTP_AUTHORIZATION="Bearer wrong")
    assert response.status_code == 401
    assert client.get(f"{BASE}/accounts/{next_snils()}/documents").status_code == 401


@pytest.mark.parametrize(
    ("snils", "key", "document"),
    [("11111111100", "k", None), ("", "k", None), (None, "", None), (None, "k", {"payload": "x"})],
    ids=["bad-checksum", "no-snils", "no-key", "not-signed"],
)
def test_malformed_placements_are_4xx(client, emulator_state, snils, key, document):
    response = post(client, snils=next_snils() if snils is None else snils, key=key, document=document)
    assert response.status_code == 400
    assert "11111111100" not in response.content.decode()


def test_delete_removes_then_answers_404(client, emulator_state):
    snils = next_snils()
    portal_id = post(client, snils=snils, key="k").json()["id"]
    assert client.delete(f"{BASE}/documents/{portal_id}", **AUTH).status_code == 204
    assert account(client, snils) == []
    assert client.delete(f"{BASE}/documents/{portal_id}", **AUTH).status_code == 404


def test_account_lists_only_the_holders_documents(client, emulator_state):
    mine, other = next_snils(), next_snils()
    post(client, snils=mine, key="1")
    post(client, snils=other, key="2")
    documents = account(client, mine)
    assert len(documents) == 1 and documents[0]["document"] == SIGNED


def test_error_fault_answers_503_and_places_nothing(client, emulator_state):
    put_faults(client, error_rate=1)
    snils = next_snils()
    assert post(client, snils=snils, key="k").status_code == 503
    put_faults(client)
    assert account(client, snils) == []


def test_rate_limit_answers_429_with_retry_after(client, emulator_state):
    put_faults(client, rate_limit_per_s=1)
    answers = [post(client, snils=next_snils(), key=str(i)) for i in range(3)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(int(a["Retry-After"]) >= 1 for a in limited)


def test_faults_put_replaces_and_validates(client, emulator_state):
    assert put_faults(client, error_rate=0.3, latency_ms=5)["error_rate"] == 0.3
    assert put_faults(client)["error_rate"] == 0.0
    bad = client.put(f"{BASE}/_faults", data='{"error_rate": 2}', content_type="application/json", **AUTH)
    assert bad.status_code == 400
    unknown = client.put(f"{BASE}/_faults", data='{"nonsense": 1}', content_type="application/json", **AUTH)
    assert unknown.status_code == 400


def test_faults_from_json_rejects_booleans_and_negatives():
    with pytest.raises(ValueError):
        Faults.from_json({"latency_ms": -1})
    with pytest.raises(ValueError):
        Faults.from_json({"rate_limit_per_s": True})
    assert Faults.from_json({"timeout_rate": 1}).timeout_rate == 1.0


# --- The personal account page ---------------------------------------------------


@pytest.mark.django_db
def test_account_page_shows_a_holders_documents_without_snils_in_url_or_page(client, emulator_state):
    snils = "11223344595"
    post(client, snils=snils, key="page")
    response = client.post(f"{BASE}/", {"snils": "112-233-445 95"})
    assert response.status_code == 302 and snils not in response["Location"] and "112-233" not in response["Location"]
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "***-***-*** 95" in html and "11223344595" not in html and "112-233-445" not in html
    assert 'http-equiv="refresh"' in html
    assert "<td> 1</td>" in html or "1</td>" in html


@pytest.mark.django_db
def test_account_page_rejects_an_invalid_snils(client, emulator_state):
    response = client.post(f"{BASE}/", {"snils": "11111111100"})
    assert response.status_code == 200
    assert "check number" in response.content.decode() or "контрольн" in response.content.decode()


@pytest.mark.django_db
def test_account_page_form_needs_csrf(emulator_state):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(f"{BASE}/", {"snils": "11223344595"})
    assert response.status_code == 403


# --- State backends ---------------------------------------------------------------


def _redis_url():
    return os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL", "")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteStore(str(tmp_path / "state.sqlite3"))
        return
    state = RedisStore(_redis_url())
    state.prefix = f"gosuslugi-emulator-test-{uuid.uuid4().hex}:"
    try:
        yield state
    finally:
        state.reset()


def _record(account):
    return {"id": uuid.uuid4().hex, "status": "placed", "received_at": "t", "document": {}, "account": account}


def test_store_places_once_per_key_and_removes(backend):
    first = backend.place(key="k", fingerprint="f", record=_record("acct"))
    again = backend.place(key="k", fingerprint="f", record=_record("acct"))
    assert first[2] is True and again[2] is False and again[0] == first[0]
    assert [r["id"] for r in backend.account("acct")] == [first[0]]
    assert backend.remove(first[0]) is True and backend.remove(first[0]) is False
    assert backend.account("acct") == []
    assert backend.stats() == {"created": 1, "replayed": 1, "removed": 1, "placed": 0}


def test_store_keeps_faults_and_counts_the_rate(backend):
    backend.set_faults(Faults(error_rate=0.5, rate_limit_per_s=2))
    assert backend.faults().error_rate == 0.5
    hits = [backend.rate_hit(2) for _ in range(4)]
    assert hits.count(False) >= 1


# --- The standalone process, over HTTP -------------------------------------------


@pytest.mark.slow
def test_standalone_emulator_serves_the_contract_over_http(standalone_emulator):
    standalone_emulator.reset()
    snils = next_snils()
    http = standalone_emulator.http
    body = {"snils": snils, "document": SIGNED}
    first = http.post("/documents", json=body, headers={"Idempotency-Key": "x"})
    again = http.post("/documents", json=body, headers={"Idempotency-Key": "x"})
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    assert [d["id"] for d in standalone_emulator.account(snils)] == [first.json()["id"]]
    assert httpx.get(f"{standalone_emulator.url}/_state").status_code == 401
    assert http.delete(f"/documents/{first.json()['id']}").status_code == 204
    assert http.get("/").status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("backend_url", ["", pytest.param("redis", marks=pytest.mark.redis)], ids=["sqlite", "redis"])
def test_standalone_emulator_workers_share_state(backend_url):
    port = free_port()
    url = _redis_url() if backend_url else ""
    process = start_emulator(port=port, workers=2, env={"GOSUSLUGI_EMULATOR_REDIS_URL": url})
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"})
        http.delete("/_state")
        snils = next_snils()
        ids = set()
        # New connections land on either worker; every answer must name the same copy.
        for _ in range(6):
            with httpx.Client(base_url=http.base_url, headers=http.headers) as fresh:
                response = fresh.post(
                    "/documents", json={"snils": snils, "document": SIGNED}, headers={"Idempotency-Key": "w"}
                )
                ids.add(response.json()["id"])
        assert len(ids) == 1
        assert http.get("/_state").json()["created"] == 1
        http.delete("/_state")
        http.close()
    finally:
        stop(process, sig=signal.SIGKILL)
