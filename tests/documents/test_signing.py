"""Signing at issue, the signed form and JWKS, checked with independent code.

The independent checks use only `cryptography`'s Ed25519 and the `rfc8785`
package, never the project's own verify function.
"""

import base64
import datetime as dt
import hashlib
import json
import re

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.utils import timezone

from documents.signing import b64url, build_payload, sign_payload, signature_is_valid, signed_form
from documents.status_list import STATUS_LIST_BITS, status_list_indexes_new
from institutions.keys import (
    private_key_for,
    public_key_for,
    signing_key_current,
    signing_key_revoke,
    signing_key_rotate,
)
from institutions.models import SigningKey
from tests.documents.issuing import SNILS_DIGITS, SNILS_FORMATTED, issue

pytestmark = pytest.mark.django_db

REQUIRED_PAYLOAD_FIELDS = {
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
}


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def independent_verify(form: dict, jwks: dict) -> bool:
    """Verify a signed form the way an outside party would: JWKS + RFC 8785 + Ed25519."""
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == form["kid"]]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and form["alg"] == "Ed25519"
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    try:
        public.verify(b64url_decode(form["signature"]), rfc8785.dumps(form["payload"]))
    except InvalidSignature:
        return False
    return True


def test_issued_document_verifies_with_independent_code(client, alice_actor):
    document = issue(alice_actor)
    form = signed_form(document)
    assert set(form) == {"payload", "alg", "kid", "signature"}
    assert set(form["payload"]) >= REQUIRED_PAYLOAD_FIELDS
    assert "=" not in form["signature"]
    jwks = client.get("/.well-known/jwks.json").json()
    assert independent_verify(form, jwks)


def test_payload_has_contract_shape(alice_actor, school):
    payload = issue(alice_actor).signed_payload
    assert payload["institution"] == {"inn": school.inn, "ogrn": school.ogrn, "name": school.full_name}
    assert set(payload["holder"]) == {"last_name", "first_name", "middle_name", "birth_date"}
    assert payload["experiment"] == timezone.localdate().year and payload["legal_force"] is False


def test_no_snils_in_payload_or_signed_form(alice_actor):
    form = signed_form(issue(alice_actor))
    text = rfc8785.dumps(form).decode()
    assert SNILS_DIGITS not in text and SNILS_FORMATTED not in text and "snils" not in text.lower()


def test_tampered_payload_fails(alice_actor):
    document = issue(alice_actor)
    form = signed_form(document)
    tampered = {**form["payload"], "number": "77999999999999"}
    assert signature_is_valid(form["payload"], form["signature"], document.signing_key)
    assert not signature_is_valid(tampered, form["signature"], document.signing_key)


def test_wrong_key_fails(alice_actor, other_school):
    document = issue(alice_actor)
    other_key = signing_key_current(institution=other_school)
    assert not signature_is_valid(document.signed_payload, document.signature, other_key)


def test_garbage_signature_is_invalid_not_an_error(alice_actor):
    document = issue(alice_actor)
    real = b64url_decode(document.signature)
    for junk in ("", "!!!", "a" * 86, "Ж", b64url(real[:63]), b64url(real + b"\0"), None):
        assert not signature_is_valid(document.signed_payload, junk, document.signing_key)
    assert signature_is_valid(document.signed_payload, document.signature, document.signing_key)


def test_a_signature_made_by_cryptography_verifies(alice_actor):
    """Signing and checking use libsodium; any other Ed25519 must agree with them."""
    document = issue(alice_actor)
    key = document.signing_key
    other = b64url(private_key_for(key).sign(rfc8785.dumps(document.signed_payload)))
    assert other == document.signature and signature_is_valid(document.signed_payload, other, key)
    public_key_for(key).verify(b64url_decode(document.signature), rfc8785.dumps(document.signed_payload))


def test_sign_payload_matches_raw_ed25519_over_reference_bytes(alice_actor, school):
    key = signing_key_current(institution=school)
    payload = {"id": 1, "holder": {"last_name": "Ёлкина"}, "grades": [{"subject": "Физика", "mark": "5"}]}
    raw = private_key_for(key).sign(rfc8785.dumps(payload))
    assert b64url_decode(sign_payload(payload, key)) == raw


def test_private_key_is_cached_per_row_and_per_process(school):
    key = signing_key_current(institution=school)
    assert private_key_for(key) is private_key_for(key)
    again = SigningKey.objects.get(pk=key.pk)
    assert private_key_for(again) is private_key_for(key)


def test_rotation_keeps_old_documents_valid_and_jwks_lists_both(client, alice_actor, school):
    old = issue(alice_actor)
    new_key = signing_key_rotate(institution=school)
    new = issue(alice_actor)
    assert new.signing_key_id == new_key.pk != old.signing_key_id
    jwks = client.get("/.well-known/jwks.json").json()
    by_kid = {k["kid"]: k for k in jwks["keys"]}
    assert by_kid[old.signing_key.kid]["not_after"] is not None
    assert by_kid[new_key.kid]["not_after"] is None
    assert by_kid[new_key.kid]["institution_inn"] == school.inn
    assert independent_verify(signed_form(old), jwks) and independent_verify(signed_form(new), jwks)


def test_jwks_never_exposes_private_material(client, alice_actor):
    issue(alice_actor)
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    for jwk in response.json()["keys"]:
        assert not {"d", "p", "q", "private_key", "private_key_encrypted"} & set(jwk)
        assert len(b64url_decode(jwk["x"])) == 32


def test_revoked_key_is_published_with_its_revocation(client, alice_actor, school):
    document = issue(alice_actor)
    moment = timezone.now() - dt.timedelta(minutes=5)
    signing_key_revoke(key=document.signing_key, compromised_from=moment, reason="leak")
    (jwk,) = [k for k in client.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == document.signing_key.kid]
    assert jwk["revoked_at"] and jwk["not_after"]
    # The next signature uses a fresh key.
    assert signing_key_current(institution=school).pk != document.signing_key_id


def test_revocation_in_the_future_is_refused(school):
    from registry.errors import ValidationFailed

    key = signing_key_current(institution=school)
    with pytest.raises(ValidationFailed):
        signing_key_revoke(key=key, compromised_from=timezone.now() + dt.timedelta(days=1))


def test_build_payload_is_what_was_signed(alice_actor):
    document = issue(alice_actor)
    assert build_payload(document) == document.signed_payload


def test_status_list_indexes_are_random_and_distinct(alice_actor):
    documents = [issue(alice_actor) for _ in range(3)]
    indexes = [d.status_list_index for d in documents]
    assert len(set(indexes)) == 3 and all(0 <= i < STATUS_LIST_BITS for i in indexes)
    # Issued one after another, yet not neighbours: drawn at random, not counted.
    assert sorted(indexes) != list(range(min(indexes), min(indexes) + 3))
    fresh = status_list_indexes_new(50)
    assert len(set(fresh)) == 50 and not set(fresh) & set(indexes)
    many = status_list_indexes_new(5000)  # drawn from one run of random bytes, three an index
    assert len(set(many)) == 5000 and all(0 <= i < STATUS_LIST_BITS for i in many)
    assert max(many) >= STATUS_LIST_BITS * 0.99 and min(many) < STATUS_LIST_BITS * 0.01


def test_verification_codes_drawn_in_bulk_look_like_single_ones():
    import re

    from documents.models import new_verification_code, new_verification_codes

    codes = new_verification_codes(1000)
    assert len(set(codes)) == 1000
    shape = re.compile(r"[A-Za-z0-9_-]{22}")
    assert all(shape.fullmatch(code) for code in [*codes, new_verification_code()])


def test_private_key_is_stored_encrypted_and_bound_to_its_row(school, other_school):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import serialization

    from institutions.keys import _private_key

    key = signing_key_current(institution=school)
    raw = private_key_for(key).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    stored = bytes(SigningKey.objects.get(pk=key.pk).private_key_encrypted)
    assert raw not in stored and len(stored) > len(raw)
    other = signing_key_current(institution=other_school)
    # A ciphertext moved to another row does not decrypt: the kid is associated data.
    with pytest.raises(InvalidTag):
        _private_key(other.kid, stored)


# --- the contract, end to end -----------------------------------------------------

JWK_FIELDS = {"kty", "crv", "x", "kid", "institution_inn", "not_before", "not_after"}


def test_signed_endpoint_and_jwks_follow_the_contract_and_verify_independently(client, alice_actor, school):
    """GET /api/v1/documents/{id}/signed/ and /.well-known/jwks.json, field by field
    against CONTRACTS "Signed document", then checked with rfc8785 + cryptography only."""
    from rest_framework.test import APIClient

    from institutions.apikeys import api_key_create

    document = issue(alice_actor)
    _, plaintext = api_key_create(name="School IS", scope="issue", institution=school)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    response = api.get(f"/api/v1/documents/{document.pk}/signed/")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    form = json.loads(response.content)
    assert list(form) == ["payload", "alg", "kid", "signature"]
    assert form["alg"] == "Ed25519" and form["kid"] == document.signing_key.kid
    assert re.fullmatch(r"[A-Za-z0-9_-]{86}", form["signature"])  # 64 bytes, base64url, no padding
    payload = form["payload"]
    assert set(payload) >= REQUIRED_PAYLOAD_FIELDS
    assert payload["id"] == document.pk
    assert (payload["kind"], payload["series"], payload["number"]) == (document.kind, document.series, document.number)
    assert payload["registration_number"] == document.registration_number
    assert payload["issued_on"] == document.issued_on.isoformat()
    assert payload["institution"] == {"inn": school.inn, "ogrn": school.ogrn, "name": school.full_name}
    graduate = document.graduate
    assert payload["holder"] == {
        "last_name": graduate.last_name,
        "first_name": graduate.first_name,
        "middle_name": graduate.middle_name,
        "birth_date": graduate.birth_date.isoformat(),
    }
    assert payload["experiment"] == document.experiment.year and payload["legal_force"] is False
    text = response.content.decode()
    assert SNILS_DIGITS not in text and SNILS_FORMATTED not in text and "snils" not in text.lower()

    jwks_response = client.get("/.well-known/jwks.json")
    assert jwks_response.status_code == 200
    jwks = json.loads(jwks_response.content)
    assert list(jwks) == ["keys"]
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == form["kid"]]
    assert set(jwk) >= JWK_FIELDS
    assert (jwk["kty"], jwk["crv"], jwk["institution_inn"], jwk["not_after"]) == ("OKP", "Ed25519", school.inn, None)
    assert dt.datetime.fromisoformat(jwk["not_before"]) <= document.signed_at
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    public.verify(b64url_decode(form["signature"]), rfc8785.dumps(payload))
    tampered = {**payload, "holder": {**payload["holder"], "last_name": "Иванова"}}
    with pytest.raises(InvalidSignature):
        public.verify(b64url_decode(form["signature"]), rfc8785.dumps(tampered))


def test_key_is_created_on_first_need(alice_actor, school):
    assert not SigningKey.objects.filter(institution=school).exists()
    first = issue(alice_actor)
    (key,) = SigningKey.objects.filter(institution=school)
    second = issue(alice_actor)
    assert first.signing_key_id == second.signing_key_id == key.pk
    assert key.not_after is None and key.revoked_at is None


def test_snils_is_stored_encrypted_with_a_keyed_hash(alice_actor):
    from django.db import connection

    from documents.models import Graduate
    from documents.pii import snils_lookup_hash

    document = issue(alice_actor)
    graduate = Graduate.objects.get(pk=document.graduate_id)
    assert graduate.snils == SNILS_DIGITS  # decrypts back
    # No column of the row, read raw from the database, holds the SNILS in clear.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Graduate._meta.db_table} WHERE id = %s", [graduate.pk])
        row = cursor.fetchone()
    for value in row:
        raw = bytes(value) if isinstance(value, memoryview | bytes) else str(value).encode()
        assert SNILS_DIGITS.encode() not in raw and SNILS_DIGITS[:9].encode() not in raw
    # The look-up hash is keyed (HMAC under the master key), not a bare digest an
    # attacker could rebuild for all 10^9 SNILS.
    assert graduate.snils_hash == snils_lookup_hash(SNILS_FORMATTED) == snils_lookup_hash(SNILS_DIGITS)
    for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5):
        assert graduate.snils_hash != digest(SNILS_DIGITS.encode()).hexdigest()
    # The ciphertext is randomised: the same SNILS encrypts differently each time.
    from documents.pii import snils_encrypt

    assert snils_encrypt(SNILS_DIGITS) != snils_encrypt(SNILS_DIGITS)
