"""The Gosuslugi client against the real emulator: in-process WSGI and over HTTP."""

import datetime as dt
import email.utils
import uuid

import pytest

from documents import gosuslugi
from documents.models import Document
from tests.documents import gosuslugi_support as support
from tests.documents.gosuslugi_support import TOKEN, free_port, next_snils

emulator_state = support.emulator_state
standalone_emulator = support.standalone_emulator
remote_emulator = support.remote_emulator

SIGNED = {"payload": {"id": 7, "kind": "secondary_general_certificate"}, "alg": "Ed25519", "kid": "k", "signature": "s"}


@pytest.fixture
def in_process(settings, emulator_state):
    settings.GOSUSLUGI_URL = ""
    settings.GOSUSLUGI_EMULATOR = True
    return emulator_state


def test_publish_in_process_is_idempotent_and_withdraw_treats_404_as_done(in_process):
    snils, key = next_snils(), str(uuid.uuid4())
    portal_id = gosuslugi.publish(snils=snils, document=SIGNED, idempotency_key=key)
    assert gosuslugi.publish(snils=snils, document=SIGNED, idempotency_key=key) == portal_id
    assert [d["id"] for d in gosuslugi.account_documents(snils=snils)] == [portal_id]
    assert gosuslugi.withdraw(portal_id=portal_id) is True
    assert gosuslugi.withdraw(portal_id=portal_id) is False
    assert gosuslugi.account_documents(snils=snils) == []


@pytest.mark.django_db
def test_in_process_call_inside_a_transaction_keeps_the_connection(in_process, school):
    gosuslugi.publish(snils=next_snils(), document=SIGNED, idempotency_key="tx")
    assert Document.objects.count() == 0


def test_server_errors_are_retryable(in_process):
    gosuslugi.faults_set(error_rate=1)
    with pytest.raises(gosuslugi.RetryableError) as exc:
        gosuslugi.publish(snils=next_snils(), document=SIGNED, idempotency_key="e")
    assert exc.value.status == 503


def rate_limited(prefix: str) -> list[gosuslugi.RetryableError]:
    """Publish three times under a rate limit of one a second; return the refusals."""
    errors = []
    for i in range(3):
        try:
            gosuslugi.publish(snils=next_snils(), document=SIGNED, idempotency_key=f"{prefix}{i}")
        except gosuslugi.RetryableError as exc:
            errors.append(exc)
    return errors


def test_rate_limit_is_retryable_with_retry_after(in_process):
    gosuslugi.faults_set(rate_limit_per_s=1)
    errors = rate_limited("r")
    assert errors and errors[0].status == 429 and errors[0].retry_after == 1.0


def test_a_refused_document_is_final_and_keeps_the_snils_out_of_the_message(in_process):
    with pytest.raises(gosuslugi.FinalError) as exc:
        gosuslugi.publish(snils="11111111100", document=SIGNED, idempotency_key="f")
    assert exc.value.status == 400 and "11111111100" not in str(exc.value)


def test_a_slow_in_process_answer_counts_as_a_timeout(in_process, settings):
    settings.GOSUSLUGI_TIMEOUT = 0.05
    gosuslugi.faults_set(latency_ms=150)
    with pytest.raises(gosuslugi.RetryableError, match="timeout"):
        gosuslugi.publish(snils=next_snils(), document=SIGNED, idempotency_key="slow")


def test_the_client_is_reused_and_rebuilt_when_settings_change(in_process, settings):
    first = gosuslugi.client()
    assert gosuslugi.client() is first
    settings.GOSUSLUGI_TIMEOUT = 3.0
    assert gosuslugi.client() is not first


def test_connection_refused_is_retryable(settings):
    settings.GOSUSLUGI_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(gosuslugi.RetryableError, match="connection"):
        gosuslugi.publish(snils=next_snils(), document=SIGNED, idempotency_key="c")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), (None, None), ("soon", None)],
)
def test_retry_after_seconds(header, expected):
    assert gosuslugi.parse_retry_after(header) == expected


def test_retry_after_http_date():
    when = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    assert 25 <= gosuslugi.parse_retry_after(when) <= 31


# --- Over real HTTP ----------------------------------------------------------------


@pytest.mark.slow
def test_publish_over_http_places_each_key_once(remote_emulator):
    snils = next_snils()
    ids = {gosuslugi.publish(snils=snils, document=SIGNED, idempotency_key=f"h{i}") for i in range(5)}
    assert len(ids) == 5 and len(remote_emulator.account(snils)) == 5
    assert remote_emulator.stats()["created"] == 5


@pytest.mark.slow
def test_timeout_over_http_is_retryable(remote_emulator, settings):
    settings.GOSUSLUGI_TIMEOUT = 0.2
    remote_emulator.faults(timeout_rate=1, timeout_ms=1000)
    with pytest.raises(gosuslugi.RetryableError, match="timeout"):
        gosuslugi.publish(snils=next_snils(), document=SIGNED, idempotency_key="t")
    remote_emulator.faults()


@pytest.mark.slow
def test_wrong_token_is_final(remote_emulator, settings):
    settings.GOSUSLUGI_TOKEN = TOKEN + "-wrong"
    with pytest.raises(gosuslugi.FinalError) as exc:
        gosuslugi.publish(snils=next_snils(), document=SIGNED, idempotency_key="w")
    assert exc.value.status == 401


@pytest.mark.slow
def test_rate_limit_over_http_carries_retry_after(remote_emulator):
    remote_emulator.faults(rate_limit_per_s=1)
    errors = rate_limited("hr")
    remote_emulator.faults()
    # The answer's headers came through: Retry-After, whatever its case on the wire.
    assert errors and errors[0].status == 429 and errors[0].retry_after == 1.0


@pytest.mark.slow
def test_threads_share_the_client_over_http_each_with_its_own_connection(remote_emulator):
    from concurrent.futures import ThreadPoolExecutor

    snils = next_snils()

    def place(i: int) -> str:
        portal_id = gosuslugi.publish(snils=snils, document=SIGNED, idempotency_key=f"th{i}")
        assert gosuslugi.withdraw(portal_id=portal_id) is True
        return gosuslugi.publish(snils=snils, document=SIGNED, idempotency_key=f"th{i}-again")

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(place, range(20)))

    assert len(set(ids)) == 20
    assert sorted(d["id"] for d in remote_emulator.account(snils)) == sorted(ids)
    assert remote_emulator.stats()["removed"] == 20
