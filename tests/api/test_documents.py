import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from documents import services
from documents.models import Delivery, DeliveryState, Document, DocumentStatus
from documents.signing import canonicalize, signature_is_valid
from institutions.models import ApiIdempotencyKey, ApiKey
from tests.api.conftest import assert_error_shape, create_body, issue
from tests.factories import DocumentFactory, GraduateFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/documents/"
IMPORT_COLUMNS = [
    "kind",
    "series",
    "number",
    "registration_number",
    "issued_on",
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "snils",
    "programme_code",
    "programme_name",
    "qualification",
    "honours",
    "hours",
]
SIGNED_PAYLOAD_KEYS = [
    "id",
    "kind",
    "series",
    "number",
    "registration_number",
    "issued_on",
    "institution",
    "holder",
    "programme",
    "qualification",
    "experiment",
    "legal_force",
]


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- list -----------------------------------------------------------------------


def test_list_shows_only_the_keys_institution_newest_first(issuer, alice_actor, charlie_actor):
    mine = [issue(alice_actor, n) for n in (1, 2)]
    issue(charlie_actor, 3)
    assert [d["id"] for d in results(issuer.get(URL))] == [mine[1].pk, mine[0].pk]


def test_list_row_uses_import_column_names_and_masks_snils(issuer, alice_actor):
    document = issue(alice_actor, 1)
    (row,) = results(issuer.get(URL))
    assert set(IMPORT_COLUMNS) | {"id", "status", "experiment", "delivery", "grades"} <= set(row)
    assert row["snils"] == "***-***-*** " + document.graduate.snils[-2:]
    assert document.graduate.snils not in str(row)
    assert row["experiment"] == document.experiment.year
    assert row["delivery"]["action"] == "publish" and row["delivery"]["state"] in DeliveryState.values
    assert row["grades"] == [{"subject": "Математика", "mark": "5"}]


def test_cursor_pagination_walks_every_page_once(issuer, alice_actor):
    ids = [issue(alice_actor, n).pk for n in range(5)]
    seen, url = [], URL + "?page_size=2"
    while url:
        page = issuer.get(url).json()
        assert "count" not in page
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == sorted(ids, reverse=True)


def test_list_queries_do_not_grow_with_the_page(issuer, alice_actor):
    issue(alice_actor, 1)
    issuer.get(URL)  # the key's once-a-minute last_used write happens here, not below
    with CaptureQueriesContext(connection) as one:
        issuer.get(URL)
    for n in range(2, 8):
        issue(alice_actor, n)
    with CaptureQueriesContext(connection) as seven:
        assert len(results(issuer.get(URL))) == 7
    assert len(seven.captured_queries) == len(one.captured_queries)
    # The page (and the key's look-up, unless this process remembers the key: see
    # registry.api.keycache); the key's institution is not loaded for a list.
    sql = [q["sql"] for q in one.captured_queries]
    assert len([q for q in sql if ApiKey._meta.db_table not in q]) == 1 and len(sql) <= 2, sql


def test_filters_kind_status_number_dates_experiment_and_delivery(issuer, alice_actor, school):
    issued = issue(alice_actor, 1)
    annulled = issue(alice_actor, 2)
    services.document_annul(actor=alice_actor, document=annulled, reason="mistake")
    draft = DocumentFactory(graduate=GraduateFactory(institution=school), kind="basic_general_certificate")
    Delivery.objects.filter(document=issued).update(state=DeliveryState.DONE)
    year = issued.experiment.year

    def ids(query):
        return {row["id"] for row in results(issuer.get(URL + "?" + query))}

    assert ids("kind=basic_general_certificate") == {draft.pk}
    assert ids("status=annulled") == {annulled.pk}
    assert ids("status=draft") == {draft.pk}
    assert ids(f"number={issued.number}") == {issued.pk}
    assert ids(f"issued_on_after={issued.issued_on}&issued_on_before={issued.issued_on}") == {
        issued.pk,
        annulled.pk,
        draft.pk,
    }
    assert ids("issued_on_before=2000-01-01") == set()
    assert ids(f"experiment={year}") == {issued.pk, annulled.pk}
    assert ids("experimental=false") == {draft.pk}
    assert ids("delivery=done") == {issued.pk}
    # The annulled one's latest delivery is its withdrawal, still pending.
    assert ids("delivery=pending") == {annulled.pk}


def test_invalid_filter_value_is_400_naming_the_parameter(issuer):
    body = assert_error_shape(issuer.get(URL + "?status=lost&issued_on_after=yesterday"), 400)
    assert {"status", "issued_on_after"} <= set(body["errors"])


# --- create ---------------------------------------------------------------------


def test_create_issues_through_the_service(issuer, school):
    response = issuer.post(URL, create_body(1))
    assert response.status_code == 201, response.content
    row = response.json()
    document = Document.objects.get(pk=row["id"])
    assert document.institution == school and document.status == DocumentStatus.ISSUED
    assert document.signature and row["status"] == "issued"
    assert row["snils"].startswith("***") and create_body(1)["snils"] not in response.content.decode()
    assert Delivery.objects.filter(document=document, action="publish").count() == 1
    assert response["Location"].endswith(f"/api/v1/documents/{document.pk}/")


def test_create_reports_field_errors_a_developer_can_act_on(issuer):
    body = assert_error_shape(issuer.post(URL, create_body(1, snils="123", number="12")), 400)
    assert {"snils"} <= set(body["errors"])
    assert not Document.objects.exists()


def test_create_with_missing_and_mistyped_fields_is_400(issuer):
    body = assert_error_shape(
        issuer.post(URL, {"kind": "passport", "issued_on": "soon", "grades": [{"mark": ""}]}), 400
    )
    assert {"kind", "issued_on", "number", "snils", "grades.0.subject"} <= set(body["errors"])


def test_duplicate_number_is_409_with_the_error_shape(issuer, alice_actor):
    existing = issue(alice_actor, 1)
    body = assert_error_shape(issuer.post(URL, create_body(2, number=existing.number)), 409, "duplicate_number")
    assert "number" in body["errors"]
    assert Document.objects.count() == 1


def test_retried_create_with_the_same_idempotency_key_issues_once(issuer):
    first = issuer.post(URL, create_body(1), HTTP_IDEMPOTENCY_KEY="req-0001")
    retry = issuer.post(URL, create_body(1), HTTP_IDEMPOTENCY_KEY="req-0001")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Document.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_422(issuer):
    assert issuer.post(URL, create_body(1), HTTP_IDEMPOTENCY_KEY="req-1").status_code == 201
    body = assert_error_shape(
        issuer.post(URL, create_body(2), HTTP_IDEMPOTENCY_KEY="req-1"), 422, "idempotency_key_reused"
    )
    assert "Idempotency-Key" in body["errors"]
    assert Document.objects.count() == 1


def test_idempotency_keys_are_per_api_key(issuer, other_issuer):
    assert issuer.post(URL, create_body(1), HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    response = other_issuer.post(URL, create_body(2), HTTP_IDEMPOTENCY_KEY="same")
    assert response.status_code == 201
    assert Document.objects.count() == 2


def test_failed_create_leaves_its_idempotency_key_free_for_a_corrected_retry(issuer):
    assert issuer.post(URL, create_body(1, snils="1"), HTTP_IDEMPOTENCY_KEY="fix-me").status_code == 400
    assert not ApiIdempotencyKey.objects.exists()
    assert issuer.post(URL, create_body(1), HTTP_IDEMPOTENCY_KEY="fix-me").status_code == 201


def test_malformed_idempotency_key_is_400(issuer):
    assert_error_shape(issuer.post(URL, create_body(1), HTTP_IDEMPOTENCY_KEY="x" * 256), 400)
    assert not Document.objects.exists()


def test_idempotency_key_goes_with_its_document(issuer):
    issuer.post(URL, create_body(1), HTTP_IDEMPOTENCY_KEY="gone")
    document = Document.objects.get()
    Delivery.objects.all().delete()
    Document.objects.filter(pk=document.pk).delete()
    assert not ApiIdempotencyKey.objects.exists()


# --- detail, annul, signed, credential ------------------------------------------


def test_detail_with_delivery_state(issuer, alice_actor):
    document = issue(alice_actor, 1)
    row = issuer.get(f"{URL}{document.pk}/").json()
    assert row["id"] == document.pk and row["delivery"]["action"] == "publish"


@pytest.mark.parametrize("suffix", ["", "signed/", "credential/"])
def test_other_institutions_document_is_404(issuer, charlie_actor, suffix):
    theirs = issue(charlie_actor, 1)
    assert_error_shape(issuer.get(f"{URL}{theirs.pk}/{suffix}"), 404, "not_found")


def test_other_institutions_document_cannot_be_annulled(issuer, charlie_actor):
    theirs = issue(charlie_actor, 1)
    assert_error_shape(issuer.post(f"{URL}{theirs.pk}/annul/", {"reason": "x"}), 404)
    theirs.refresh_from_db()
    assert theirs.status == DocumentStatus.ISSUED


def test_unknown_id_and_unknown_path_are_json_404(issuer):
    assert_error_shape(issuer.get(f"{URL}999999/"), 404)
    assert_error_shape(issuer.get(f"{URL}abc/"), 404)
    assert_error_shape(issuer.get("/api/v1/nowhere/"), 404)


def test_annul_with_reason_withdraws(issuer, alice_actor):
    document = issue(alice_actor, 1)
    response = issuer.post(f"{URL}{document.pk}/annul/", {"reason": "Issued by mistake"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "annulled"
    assert response.json()["delivery"]["action"] == "withdraw"
    document.refresh_from_db()
    assert document.status == DocumentStatus.ANNULLED and document.annul_reason == "Issued by mistake"


def test_annul_refusals(issuer, alice_actor):
    document = issue(alice_actor, 1)
    assert "reason" in assert_error_shape(issuer.post(f"{URL}{document.pk}/annul/", {"reason": " "}), 400)["errors"]
    assert "reason" in assert_error_shape(issuer.post(f"{URL}{document.pk}/annul/", {}), 400)["errors"]
    assert issuer.post(f"{URL}{document.pk}/annul/", {"reason": "x"}).status_code == 200
    assert_error_shape(issuer.post(f"{URL}{document.pk}/annul/", {"reason": "again"}), 403, "not_issued")
    assert_error_shape(issuer.get(f"{URL}{document.pk}/annul/"), 405)


def test_signed_form_follows_the_contract_and_verifies(issuer, alice_actor):
    document = issue(alice_actor, 1)
    body = issuer.get(f"{URL}{document.pk}/signed/").json()
    assert set(body) == {"payload", "alg", "kid", "signature"}
    assert body["alg"] == "Ed25519" and body["kid"] == document.signing_key.kid
    assert "=" not in body["signature"]
    payload = body["payload"]
    assert set(SIGNED_PAYLOAD_KEYS) <= set(payload)
    assert payload["legal_force"] is False and payload["experiment"] == document.experiment.year
    assert signature_is_valid(payload, body["signature"], document.signing_key)
    assert document.graduate.snils not in canonicalize(payload).decode()


def test_draft_has_no_signed_form(issuer, school):
    draft = DocumentFactory(graduate=GraduateFactory(institution=school))
    assert_error_shape(issuer.get(f"{URL}{draft.pk}/signed/"), 404, "not_signed")


def test_credential_is_a_verifiable_credential_2_0(issuer, alice_actor):
    document = issue(alice_actor, 1)
    response = issuer.get(f"{URL}{document.pk}/credential/")
    assert response.status_code == 200, response.content
    credential = response.json()
    assert credential["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert "VerifiableCredential" in credential["type"] and credential["proof"]
    assert document.graduate.snils not in response.content.decode()


def test_draft_has_no_credential(issuer, school):
    draft = DocumentFactory(graduate=GraduateFactory(institution=school))
    assert_error_shape(issuer.get(f"{URL}{draft.pk}/credential/"), 404, "not_signed")


def test_no_credential_for_a_tampered_document(issuer, alice_actor):
    document = issue(alice_actor, 1)
    Document.objects.filter(pk=document.pk).update(signed_payload={**document.signed_payload, "number": "1"})
    body = assert_error_shape(issuer.get(f"{URL}{document.pk}/credential/"), 409, "signature_untrusted")
    assert "signature" in body["detail"]
