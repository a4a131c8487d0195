import pytest

from documents import services
from documents.models import Document
from tests.api.conftest import assert_error_shape, certificate_data, issue
from tests.factories import DocumentFactory, GraduateFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/verify/"


def test_verify_by_code_returns_status_and_minimal_details(verifier, alice_actor, school):
    document = issue(alice_actor, 1)
    response = verifier.post(URL, {"code": document.verification_code})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "issued" and body["valid"] is True and body["signature_valid"] is True
    assert body["legal_force"] is False and body["experiment"] == document.experiment.year
    assert body["document"]["number"] == document.number
    assert body["institution"]["inn"] == school.inn
    assert body["holder"]["last_name"] == "Иванов"
    assert "snils" not in str(body).lower() and "birth_date" not in body["holder"]


def test_verify_by_number_last_name_and_birth_date(verifier, alice_actor):
    document = issue(alice_actor, 1)
    body = {"number": document.number, "last_name": "иванов", "birth_date": "2007-03-01"}
    response = verifier.post(URL, body)
    assert response.status_code == 200 and response.json()["document"]["number"] == document.number
    assert verifier.post(URL, {**body, "series": ""}).status_code == 200


@pytest.mark.parametrize(
    "change", [{"last_name": "Петров"}, {"birth_date": "2007-03-02"}, {"series": "123456"}, {"number": "1"}]
)
def test_verify_by_details_that_do_not_match_is_404(verifier, alice_actor, change):
    document = issue(alice_actor, 1)
    body = {"number": document.number, "last_name": "Иванов", "birth_date": "2007-03-01", **change}
    assert_error_shape(verifier.post(URL, body), 404, "not_found")


def test_unknown_code_and_drafts_are_not_found(verifier, school):
    draft = DocumentFactory(graduate=GraduateFactory(institution=school))
    assert_error_shape(verifier.post(URL, {"code": "no-such-code"}), 404)
    assert_error_shape(verifier.post(URL, {"code": draft.verification_code}), 404)


def test_annulled_document_is_reported_annulled_and_not_valid(verifier, alice_actor):
    document = issue(alice_actor, 1)
    services.document_annul(actor=alice_actor, document=document, reason="mistake")
    body = verifier.post(URL, {"code": document.verification_code}).json()
    assert body["status"] == "annulled" and body["valid"] is False and body["annulled_at"]


def test_replaced_document_points_to_its_duplicate(verifier, alice_actor):
    original = issue(alice_actor, 1)
    duplicate = services.document_issue_duplicate(
        actor=alice_actor, original=original, data=certificate_data(2, registration_number="R-dup")
    )
    body = verifier.post(URL, {"code": original.verification_code}).json()
    assert body["status"] == "replaced" and body["valid"] is False
    assert body["replaced_by"]["number"] == duplicate.number


def test_tampered_document_fails_the_signature_check(verifier, alice_actor):
    document = issue(alice_actor, 1)
    payload = dict(document.signed_payload, number="99999999999999")
    Document.objects.filter(pk=document.pk).update(signed_payload=payload)
    body = verifier.post(URL, {"code": document.verification_code}).json()
    assert body["signature_valid"] is False and body["valid"] is False


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"number", "last_name", "birth_date"}),
        ({"number": "1"}, {"last_name", "birth_date"}),
        ({"number": "1", "last_name": "X", "birth_date": "1.1"}, {"birth_date"}),
    ],
)
def test_incomplete_verify_request_is_400(verifier, body, fields):
    assert set(assert_error_shape(verifier.post(URL, body), 400)["errors"]) == fields
