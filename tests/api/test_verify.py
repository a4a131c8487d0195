import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from documents import services
from documents.models import Document
from documents.signing import signed_form
from documents.verification import MAX_CODE_LENGTH, verify_by_code
from institutions.models import ApiKey
from tests.api.conftest import assert_error_shape, certificate_data, issue
from tests.factories import DocumentFactory, GraduateFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/verify/"


def verdict(client, body) -> dict:
    response = client.post(URL, body)
    assert response.status_code == 200, response.content
    return response.json()


def test_verify_by_code_returns_the_verdict_and_minimal_details(verifier, alice_actor, school):
    document = issue(alice_actor, 1)
    body = verdict(verifier, {"code": document.verification_code})
    assert body["status"] == "valid"
    assert body["legal_force"] is False and body["experiment"] == document.experiment.year
    assert body["number"] == document.number and body["kind"] == document.kind
    assert body["institution"]["inn"] == school.inn
    # Initials only: a verifier checks the person in front of them, the API does not name them.
    assert body["holder"] == "И. И. И."
    assert "Иванов" not in str(body) and "2007" not in str(body)
    assert document.graduate.snils not in str(body)


def test_verify_by_code_reads_the_key_and_the_document_and_writes_nothing(verifier, alice_actor):
    document = issue(alice_actor, 1)
    verdict(verifier, {"code": document.verification_code})  # the key's once-a-minute last_used write
    with CaptureQueriesContext(connection) as queries:
        assert verdict(verifier, {"code": document.verification_code})["status"] == "valid"
    sql = [q["sql"] for q in queries.captured_queries]
    assert all(q.startswith("SELECT") for q in sql), sql
    # The document; and the key, unless this process remembers it (registry.api.keycache).
    assert len([q for q in sql if ApiKey._meta.db_table not in q]) == 1, sql
    assert len(sql) <= 2, sql


def test_verify_by_number_last_name_and_birth_date(verifier, alice_actor):
    document = issue(alice_actor, 1)
    body = {"number": document.number, "last_name": "иванов", "birth_date": "2007-03-01"}
    assert verdict(verifier, body)["number"] == document.number
    assert verdict(verifier, {**body, "series": ""})["status"] == "valid"


def test_verify_by_signed_form(verifier, issuer, alice_actor):
    document = issue(alice_actor, 1)
    form = issuer.get(f"/api/v1/documents/{document.pk}/signed/").json()
    assert verdict(verifier, {"signed_form": form})["status"] == "valid"
    forged = {**form, "payload": {**form["payload"], "number": "99999999999999"}}
    assert verdict(verifier, {"signed_form": forged})["status"] == "signature_invalid"


@pytest.mark.parametrize(
    "change", [{"last_name": "Петров"}, {"birth_date": "2007-03-02"}, {"series": "123456"}, {"number": "1"}]
)
def test_verify_by_details_that_do_not_match_is_not_found(verifier, alice_actor, change):
    document = issue(alice_actor, 1)
    body = {"number": document.number, "last_name": "Иванов", "birth_date": "2007-03-01", **change}
    assert verdict(verifier, body) == {"status": "not_found"}


def test_unknown_code_and_drafts_are_not_found(verifier, school):
    draft = DocumentFactory(graduate=GraduateFactory(institution=school))
    assert verdict(verifier, {"code": "no-such-code"}) == {"status": "not_found"}
    assert verdict(verifier, {"code": draft.verification_code}) == {"status": "not_found"}


def test_annulled_document_is_reported_annulled(verifier, alice_actor):
    document = issue(alice_actor, 1)
    services.document_annul(actor=alice_actor, document=document, reason="mistake")
    body = verdict(verifier, {"code": document.verification_code})
    assert body["status"] == "annulled" and body["annulled_at"]


def test_replaced_document_points_to_its_duplicate(verifier, alice_actor):
    original = issue(alice_actor, 1)
    duplicate = services.document_issue_duplicate(
        actor=alice_actor, original=original, data=certificate_data(2, registration_number="R-dup")
    )
    body = verdict(verifier, {"code": original.verification_code})
    assert body["status"] == "replaced"
    assert body["replaced_by"]["verification_code"] == duplicate.verification_code


def test_tampered_document_fails_the_signature_check(verifier, alice_actor):
    document = issue(alice_actor, 1)
    payload = dict(document.signed_payload, number="99999999999999")
    Document.objects.filter(pk=document.pk).update(signed_payload=payload)
    assert verdict(verifier, {"code": document.verification_code})["status"] == "signature_invalid"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"number", "last_name", "birth_date"}),
        ({"number": "1"}, {"last_name", "birth_date"}),
        ({"number": "1", "last_name": "X", "birth_date": "1.1"}, {"birth_date"}),
        ({"signed_form": {"payload": "x"}}, {"signed_form"}),
    ],
)
def test_incomplete_verify_request_is_400(verifier, body, fields):
    assert set(assert_error_shape(verifier.post(URL, body), 400)["errors"]) == fields


def test_signed_form_of_the_api_is_what_the_verifier_accepts(alice_actor):
    document = issue(alice_actor, 1)
    assert set(signed_form(document)) == {"payload", "alg", "kid", "signature"}


@pytest.mark.parametrize(
    "body",
    [
        {"code": ""},
        {"code": "   "},
        {"code": None},
        {"code": "x" * (MAX_CODE_LENGTH + 1)},
        {"code": "abc\x00"},
        {"code": ["abc"]},
    ],
)
def test_a_code_the_serializer_refuses_is_still_400(verifier, body):
    assert "code" in assert_error_shape(verifier.post(URL, body, format="json"), 400)["errors"]


def test_a_code_with_spaces_around_or_not_a_string_is_read_as_the_serializer_reads_it(verifier, alice_actor):
    document = issue(alice_actor, 1)
    assert verdict(verifier, {"code": f"  {document.verification_code}\t"})["status"] == "valid"
    assert verdict(verifier, {"code": 12}) == {"status": "not_found"}
    assert verdict(verifier, {"code": "прочее"}) == {"status": "not_found"}
    # The longest code the API takes (one more is refused, above).
    assert verdict(verifier, {"code": "x" * MAX_CODE_LENGTH}) == {"status": "not_found"}


@pytest.mark.postgres
def test_verify_by_code_is_planned_once_per_connection(verifier, alice_actor, settings):
    """The hot statement is a prepared statement of the connection; with the setting off, it is not."""
    document = issue(alice_actor, 1)

    def prepared() -> int:
        with connection.cursor() as cursor:
            sql = "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s"
            cursor.execute(sql, ["%verification_code = $1%"])
            return cursor.fetchone()[0]

    settings.REGISTRY_PREPARED_VERIFY = False
    assert verdict(verifier, {"code": document.verification_code})["status"] == "valid"
    assert prepared() == 0
    settings.REGISTRY_PREPARED_VERIFY = True
    for _ in range(3):
        assert verdict(verifier, {"code": document.verification_code})["status"] == "valid"
    assert verdict(verifier, {"code": "no-such-code"})["status"] == "not_found"
    assert prepared() == 1


def test_a_code_decides_whatever_else_the_request_carries(verifier, alice_actor):
    """The one rule (documents.api._asks_by_code): with a code, the other fields are not read."""
    document = issue(alice_actor, 1)
    body = {"code": document.verification_code, "number": "other", "birth_date": "not a date"}
    assert verdict(verifier, body)["status"] == "valid"


@pytest.mark.postgres
def test_the_prepared_verify_loads_the_datetimes_the_orm_loads(alice_actor, settings):
    """Its cursor loads timestamptz with psycopg's own loader: the same values and tzinfo as Django's."""
    document = issue(alice_actor, 1)
    services.document_annul(actor=alice_actor, document=document, reason="ошибка в дате")
    key = document.signing_key
    key.not_after = key.not_before + dt.timedelta(days=3650, microseconds=123457)
    key.save(update_fields=["not_after"])
    loaded = {}
    for prepared in (True, False):
        settings.REGISTRY_PREPARED_VERIFY = prepared
        result = verify_by_code(code=document.verification_code)
        values = (
            result.document.signed_at,
            result.document.annulled_at,
            result.document.signing_key.not_before,
            result.document.signing_key.not_after,
        )
        loaded[prepared] = [(value, value.tzinfo) for value in values]
    orm = Document.objects.select_related("signing_key").get(pk=document.pk)
    expected = [orm.signed_at, orm.annulled_at, orm.signing_key.not_before, orm.signing_key.not_after]
    assert loaded[True] == loaded[False] == [(value, value.tzinfo) for value in expected]
    assert {tz for _value, tz in loaded[True]} == {dt.UTC}
