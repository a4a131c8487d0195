"""Public verification: every verdict, by code, by details and by signed file, in both languages."""

import datetime as dt
import json
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone

from documents import services
from documents.models import Document
from documents.signing import signed_form
from documents.verification import VerificationStatus, verify_by_code, verify_by_details, verify_signed_form
from institutions.keys import signing_key_revoke, signing_key_rotate
from registry.actors import Actor
from tests.documents.issuing import (  # noqa: F401  (fresh_ip is a fixture)
    SNILS_DIGITS,
    SNILS_FORMATTED,
    certificate_data,
    fresh_ip,
    graduate_data,
    issue,
    reload,
)
from tests.factories import InstitutionFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_ip")]

S = VerificationStatus


def annul(actor, document, reason="Ошибка в фамилии"):
    services.document_annul(actor=actor, document=document, reason=reason)
    return reload(document)


def duplicate(actor, document):
    current = services.document_issue_duplicate(actor=actor, original=document, data=certificate_data())
    return reload(document), reload(current)


def tamper(document):
    payload = {**document.signed_payload, "number": "77999999999999"}
    Document.objects.filter(pk=document.pk).update(signed_payload=payload)
    return reload(document)


def revoke_before_signing(document):
    signing_key_revoke(key=document.signing_key, compromised_from=document.signed_at - dt.timedelta(minutes=1))
    return reload(document)


@pytest.fixture
def make(alice_actor):
    """Return a function making a verification code that yields the given status."""

    def _make(status: str) -> tuple[str, Document | None]:
        if status == S.NOT_FOUND:
            return "no-such-code-" + uuid.uuid4().hex[:8], None
        document = issue(alice_actor)
        if status == S.ANNULLED:
            document = annul(alice_actor, document)
        elif status == S.REPLACED:
            document, _current = duplicate(alice_actor, document)
        elif status == S.SIGNATURE_INVALID:
            document = tamper(document)
        elif status == S.KEY_REVOKED:
            document = revoke_before_signing(document)
        return document.verification_code, document

    return _make


# --- services ---------------------------------------------------------------------


def test_issued_document_is_valid(alice_actor):
    document = issue(alice_actor)
    result = verify_by_code(code=document.verification_code)
    assert result.status == S.VALID
    assert result.holder_initials == "Ё. А. П."
    assert result.experimental
    assert result.institution["inn"] == document.institution.inn


def test_annulled_document_shows_date_and_reason(alice_actor):
    document = annul(alice_actor, issue(alice_actor))
    result = verify_by_code(code=document.verification_code)
    assert result.status == S.ANNULLED
    assert result.annul_reason == "Ошибка в фамилии" and result.annulled_at == document.annulled_at


def test_replaced_document_points_to_the_current_one(alice_actor):
    original, current = duplicate(alice_actor, issue(alice_actor))
    result = verify_by_code(code=original.verification_code)
    assert result.status == S.REPLACED
    assert result.current.pk == current.pk
    assert result.current_url == f"/verify/{current.verification_code}/"
    assert verify_by_code(code=current.verification_code).status == S.VALID


def test_replacement_chain_is_followed_to_the_newest(alice_actor):
    first, second = duplicate(alice_actor, issue(alice_actor))
    second, third = duplicate(alice_actor, second)
    assert verify_by_code(code=first.verification_code).current.pk == third.pk


def test_tampered_payload_is_signature_invalid(alice_actor):
    document = tamper(issue(alice_actor))
    assert verify_by_code(code=document.verification_code).status == S.SIGNATURE_INVALID


def test_tampered_signature_is_signature_invalid(alice_actor):
    document = issue(alice_actor)
    other = issue(alice_actor)
    Document.objects.filter(pk=document.pk).update(signature=other.signature)
    assert verify_by_code(code=document.verification_code).status == S.SIGNATURE_INVALID


def test_signed_after_compromise_is_key_revoked(alice_actor):
    document = revoke_before_signing(issue(alice_actor))
    result = verify_by_code(code=document.verification_code)
    assert result.status == S.KEY_REVOKED and result.revoked_at is not None


def test_signed_before_compromise_stays_valid(alice_actor):
    document = issue(alice_actor)
    signing_key_revoke(key=document.signing_key, compromised_from=timezone.now())
    assert verify_by_code(code=document.verification_code).status == S.VALID
    # And the next document is signed with a fresh, unrevoked key.
    assert verify_by_code(code=issue(alice_actor).verification_code).status == S.VALID


def test_rotated_key_keeps_old_documents_valid(alice_actor, school):
    old = issue(alice_actor)
    signing_key_rotate(institution=school)
    new = issue(alice_actor)
    assert old.signing_key_id != new.signing_key_id
    assert verify_by_code(code=old.verification_code).status == S.VALID
    assert verify_by_code(code=new.verification_code).status == S.VALID


def test_unknown_and_purged_codes_are_not_found(alice_actor):
    document = issue(alice_actor)
    code = document.verification_code
    assert verify_by_code(code="nope").status == S.NOT_FOUND
    Document.objects.filter(pk=document.pk).delete()
    assert verify_by_code(code=code).status == S.NOT_FOUND


def test_codes_are_random_and_not_derived_from_the_document(alice_actor):
    documents = [issue(alice_actor) for _ in range(3)]
    codes = [d.verification_code for d in documents]
    assert len(set(codes)) == 3
    for document in documents:
        code = document.verification_code
        # 128 random bits as base64url: 22 characters, nothing of the number or id in it.
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", code)
        assert document.number not in code and document.number[-6:] not in code and str(document.pk) != code
    # Neighbouring documents' codes share no common prefix worth guessing from.
    shared_prefix = next((i for i, chars in enumerate(zip(*codes, strict=True)) if len(set(chars)) > 1), len(codes[0]))
    assert shared_prefix < 4


def test_draft_is_not_found(alice_actor):
    graduate = services.graduate_find_or_create(actor=alice_actor, data=graduate_data())
    draft = services.document_create_draft(actor=alice_actor, graduate=graduate, data=certificate_data())
    assert verify_by_code(code=draft.verification_code).status == S.NOT_FOUND


def test_by_details_ignores_case_and_yo(alice_actor):
    document = issue(alice_actor)
    birth = document.graduate.birth_date
    assert verify_by_details(number=document.number, last_name="ЕЛКИНА", birth_date=birth).status == S.VALID
    assert verify_by_details(number=document.number, last_name=" ёлкина ", birth_date=birth).status == S.VALID


def test_by_details_needs_every_part_to_match(alice_actor):
    document = issue(alice_actor)
    birth = document.graduate.birth_date
    wrong = [
        dict(number=document.number, last_name="Иванова", birth_date=birth),
        dict(number=document.number, last_name="Ёлкина", birth_date=birth + dt.timedelta(days=1)),
        dict(number="77000000000000", last_name="Ёлкина", birth_date=birth),
        dict(number=document.number, last_name="Ёлкина", birth_date=birth, series="123456"),
    ]
    for query in wrong:
        assert verify_by_details(**query).status == S.NOT_FOUND, query


def test_signed_file_genuine_tampered_and_purged(alice_actor):
    document = issue(alice_actor)
    form = json.loads(json.dumps(signed_form(document)))
    assert verify_signed_form(form=form).status == S.VALID
    forged = {**form, "payload": {**form["payload"], "holder": {**form["payload"]["holder"], "last_name": "Другая"}}}
    assert verify_signed_form(form=forged).status == S.SIGNATURE_INVALID
    assert verify_signed_form(form={**form, "kid": "unknown"}).status == S.SIGNATURE_INVALID
    Document.objects.filter(pk=document.pk).delete()
    purged = verify_signed_form(form=form)
    assert purged.status == S.NOT_FOUND and purged.genuine_signature


def test_signed_file_of_an_annulled_document_says_annulled(alice_actor):
    document = issue(alice_actor)
    form = signed_form(document)
    annul(alice_actor, document)
    assert verify_signed_form(form=form).status == S.ANNULLED


def test_api_answer_is_minimal(alice_actor):
    answer = verify_by_code(code=issue(alice_actor).verification_code).as_dict()
    assert answer["status"] == "valid" and answer["holder"] == "Ё. А. П." and answer["legal_force"] is False
    text = json.dumps(answer, ensure_ascii=False)
    assert "Ёлкина" not in text and "Анна" not in text and SNILS_DIGITS not in text
    assert verify_by_code(code="nope").as_dict() == {"status": "not_found"}


# --- pages ------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("status", [s.value for s in S])
def test_public_page_for_each_status_in_both_languages(client, make, status, language):
    code, document = make(status)
    response = client.get(f"/verify/{code}/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert f'data-status="{status}"' in html
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    if status in (S.VALID, S.ANNULLED, S.REPLACED, S.KEY_REVOKED):
        assert "Ё. А. П." in html and document.institution.full_name in html
        assert 'class="no-legal-force"' in html
        assert "Ёлкина" not in html
    if status == S.ANNULLED:
        assert "Ошибка в фамилии" in html
    if status == S.REPLACED:
        current = document.replacements.get()
        assert f'href="/verify/{current.verification_code}/"' in html
    if status in (S.NOT_FOUND, S.SIGNATURE_INVALID):
        assert "Ё. А. П." not in html


def test_regular_document_has_no_no_legal_force_mark(client):
    institution = InstitutionFactory()
    user = UserFactory(username="regular-signer")
    MembershipFactory(user=user, institution=institution, role="signer")
    actor = Actor.staff(user=user, institution=institution, role="signer")
    document = issue(actor)
    assert document.experiment_id is None and document.signed_payload["legal_force"] is True
    html = client.get(f"/verify/{document.verification_code}/").content.decode()
    assert 'data-status="valid"' in html and 'class="no-legal-force"' not in html


def test_form_page_needs_no_login_and_verifies_by_details(client, alice_actor):
    document = issue(alice_actor)
    assert client.get("/verify/").status_code == 200
    response = client.post(
        "/verify/",
        {"number": document.number, "series": "", "last_name": "ёлкина", "birth_date": "01.03.2007"},
    )
    assert response.status_code == 200 and 'data-status="valid"' in response.content.decode()


def test_form_page_rejects_incomplete_details(client):
    response = client.post("/verify/", {"number": "1"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()


def test_upload_of_signed_file(client, alice_actor):
    document = issue(alice_actor)
    body = json.dumps(signed_form(document), ensure_ascii=False).encode()
    response = client.post("/verify/", {"file": SimpleUploadedFile("doc.json", body, "application/json")})
    assert 'data-status="valid"' in response.content.decode()
    forged = json.loads(body)
    forged["payload"]["number"] = "77000000000000"
    response = client.post(
        "/verify/", {"file": SimpleUploadedFile("doc.json", json.dumps(forged).encode(), "application/json")}
    )
    assert 'data-status="signature_invalid"' in response.content.decode()


def test_upload_of_something_else_is_a_form_error(client):
    for body in (b"not json", b"[1, 2]", b'{"payload": {}}', "текст".encode("cp1251")):
        response = client.post("/verify/", {"file": SimpleUploadedFile("x.json", body, "application/json")})
        assert response.status_code == 200
        assert "errorlist" in response.content.decode()


@override_settings(VERIFY_RATE_LIMIT="3/min")
def test_enumeration_limit_returns_429_with_message(client):
    for _ in range(5):
        assert client.get("/verify/").status_code == 200  # the blank form does not count
    for i in range(3):
        assert client.get(f"/verify/guess-{i}/").status_code == 200
    response = client.get("/verify/guess-3/")
    assert response.status_code == 429
    assert 'data-status="rate_limited"' in response.content.decode()
    assert "the limit is 3 a minute). Please wait a minute" in response.content.decode()
    assert response["Retry-After"] == "60"
    assert client.post("/verify/", {"number": "1", "last_name": "X", "birth_date": "2000-01-01"}).status_code == 429


@override_settings(VERIFY_RATE_LIMIT="2/hour")
def test_limit_message_names_the_configured_period(client):
    for i in range(2):
        assert client.get(f"/verify/guess-{i}/").status_code == 200
    response = client.get("/verify/guess-2/", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 429 and response["Retry-After"] == "3600"
    page = response.content.decode()
    assert "ограничение — 2 в час" in page and "Подождите час" in page


@override_settings(VERIFY_RATE_LIMIT="3/min")
def test_limit_is_per_client(client):
    mine = client.defaults["REMOTE_ADDR"]  # set by the module's fresh_ip fixture
    for i in range(4):
        client.get(f"/verify/guess-{i}/")
    assert client.get("/verify/guess-x/").status_code == 429
    other = "192.0.2." + str(int(mine.rsplit(".", 1)[1]) % 250 + 1)  # TEST-NET-1, never a fresh_ip
    assert client.get("/verify/guess-x/", REMOTE_ADDR=other).status_code == 200


class _Clock:
    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@override_settings(VERIFY_RATE_LIMIT="3/min")
def test_limit_cannot_be_doubled_across_a_window_boundary(client, monkeypatch):
    from documents import public_views

    clock = _Clock(60 * 29_000_000 + 59)  # one second before a minute ends
    monkeypatch.setattr(public_views, "time", clock)
    for i in range(3):
        assert client.get(f"/verify/guess-{i}/").status_code == 200
    clock.now += 2  # a new fixed window: a bare counter would start again from zero
    assert client.get("/verify/guess-3/").status_code == 429
    clock.now += 90  # the burst has slid out of the window
    assert client.get("/verify/guess-4/").status_code == 200


def test_no_snils_in_any_public_response(client, alice_actor, school):
    document = issue(alice_actor)
    annulled = annul(alice_actor, issue(alice_actor))
    bodies = [
        client.get("/verify/").content,
        client.get(f"/verify/{document.verification_code}/").content,
        client.get(f"/verify/{annulled.verification_code}/").content,
        client.post("/verify/", {"number": document.number, "last_name": "Ёлкина", "birth_date": "2007-03-01"}).content,
        client.post(
            "/verify/",
            {"file": SimpleUploadedFile("d.json", json.dumps(signed_form(document)).encode(), "application/json")},
        ).content,
        client.get("/.well-known/jwks.json").content,
        client.get("/.well-known/did.json").content,
        client.get(f"/institutions/{school.inn}/did.json").content,
        client.get("/credentials/status/revocation").content,
    ]
    for body in bodies:
        text = body.decode()
        assert SNILS_DIGITS not in text and SNILS_FORMATTED not in text
        assert SNILS_DIGITS[:9] not in text


def test_no_snils_in_log_lines(client, alice_actor, caplog):
    with caplog.at_level("DEBUG"):
        document = issue(alice_actor)
        client.get(f"/verify/{document.verification_code}/")
        annul(alice_actor, document)
    assert SNILS_DIGITS not in caplog.text and SNILS_FORMATTED not in caplog.text
