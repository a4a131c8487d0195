"""The signed form of a document: canonical JSON (RFC 8785) signed with Ed25519.

`payload` holds what a verifier needs and no SNILS. `signature` is base64url
without padding over `canonicalize(payload)`.
"""

import base64

import rfc8785
from cryptography.exceptions import InvalidSignature

from institutions.keys import private_key_for, public_key_for, signing_key_current

ALG = "Ed25519"


def canonicalize(value) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 bytes of a JSON value."""
    return rfc8785.dumps(value)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def build_payload(document) -> dict:
    """Return the payload to sign for `document` (institution and graduate loaded)."""
    inst = document.institution
    grad = document.graduate
    payload = {
        "id": document.pk,
        "verification_code": document.verification_code,
        "kind": document.kind,
        "series": document.series,
        "number": document.number,
        "registration_number": document.registration_number,
        "issued_on": document.issued_on.isoformat(),
        "institution": {"inn": inst.inn, "ogrn": inst.ogrn, "name": inst.full_name},
        "holder": {
            "last_name": grad.last_name,
            "first_name": grad.first_name,
            "middle_name": grad.middle_name,
            "birth_date": grad.birth_date.isoformat(),
        },
        "programme": {"code": document.programme_code, "name": document.programme_name},
        "qualification": document.qualification,
        "hours": document.hours,
        "honours": document.honours,
        "grades": document.grades or [],
        "copy": document.copy_mark,
        "replaces": document.replaces_id,
        "experiment": document.experiment.year if document.experiment_id else None,
        "legal_force": document.experiment_id is None,
    }
    return payload


def sign_payload(payload: dict, key) -> str:
    """Sign the canonical bytes of `payload` with `key` (a SigningKey row)."""
    return b64url(private_key_for(key).sign(canonicalize(payload)))


def signature_is_valid(payload: dict, signature: str, key) -> bool:
    """Check the signature only (not revocation or validity window)."""
    try:
        public_key_for(key).verify(b64url_decode(signature), canonicalize(payload))
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_document(document) -> None:
    """Fill `document`'s payload, signature and key from its institution's current key."""
    from django.utils import timezone

    key = signing_key_current(institution=document.institution)
    payload = build_payload(document)
    document.signed_payload = payload
    document.signature = sign_payload(payload, key)
    document.signing_key = key
    document.signed_at = timezone.now()


def signed_form(document) -> dict:
    """The signed document as CONTRACTS publishes it."""
    return {
        "payload": document.signed_payload,
        "alg": ALG,
        "kid": document.signing_key.kid,
        "signature": document.signature,
    }
