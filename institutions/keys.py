"""Institutions' Ed25519 signing keys: created on first need, stored encrypted.

The private half is encrypted with AES-GCM under a sub-key of REGISTRY_MASTER_KEY
(registry.crypto), with the key id bound as associated data. Rotation retires the
current key (it stays published, so older documents still verify); revocation
marks a key compromised from a moment, after which its signatures no longer count.
"""

import base64
import datetime as dt
import functools
import hashlib

import base58
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from institutions.models import Institution, SigningKey
from registry.crypto import decrypt, encrypt
from registry.errors import ValidationFailed

_PURPOSE = "signing-key-encryption-v1"
# Multicodec prefix of an Ed25519 public key (0xed, varint-encoded) for Multikey.
_ED25519_PUB_MULTICODEC = b"\xed\x01"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_key_row(institution: Institution) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # The key id is a thumbprint of the public key, prefixed by INN for people
    # reading a JWKS.
    kid = f"{institution.inn}-{_b64url(hashlib.sha256(raw_public).digest())[:16]}"
    return SigningKey(
        institution=institution,
        kid=kid,
        public_key=raw_public,
        # The kid is bound as associated data: a ciphertext swapped between rows
        # fails to decrypt.
        private_key_encrypted=encrypt_private(raw_private, kid=kid),
    )


def encrypt_private(raw_private: bytes, *, kid: str) -> bytes:
    return encrypt(raw_private, purpose=_PURPOSE, associated=kid.encode())


def _record(actor, action: str, key: SigningKey, data: dict) -> None:
    if actor is None:
        return
    from documents.history import event_record  # documents imports this module

    event_record(
        actor=actor,
        action=action,
        object_type="signingkey",
        object_id=key.pk,
        institution_id=key.institution_id,
        data={"kid": key.kid, **data},
    )


def signing_key_current(*, institution: Institution) -> SigningKey:
    """Return the institution's current key, creating it on first need.

    Safe under concurrency: the partial unique constraint allows one current key, so
    a racing creator loses and reads the winner's key.
    """
    key = SigningKey.objects.filter(institution=institution, not_after__isnull=True, revoked_at__isnull=True).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            key = _new_key_row(institution)
            key.save()
            return key
    except IntegrityError:
        return SigningKey.objects.get(institution=institution, not_after__isnull=True, revoked_at__isnull=True)


@transaction.atomic
def signing_key_rotate(*, institution: Institution, actor=None) -> SigningKey:
    """Retire the current key (it stays published) and create a new current one.

    Documents signed before the rotation keep verifying with the retired key.
    """
    now = timezone.now()
    retired = list(
        SigningKey.objects.select_for_update().filter(
            institution=institution, not_after__isnull=True, revoked_at__isnull=True
        )
    )
    SigningKey.objects.filter(pk__in=[k.pk for k in retired]).update(not_after=now)
    key = _new_key_row(institution)
    key.not_before = now
    key.save()
    _record(actor, "signingkey.rotated", key, {"retired": [k.kid for k in retired]})
    return key


@transaction.atomic
def signing_key_revoke(
    *, key: SigningKey, compromised_from: dt.datetime | None = None, reason: str = "", actor=None
) -> SigningKey:
    """Mark `key` compromised from `compromised_from` (default now).

    Signatures made from that moment on no longer verify; earlier ones still do.
    Revoking a current key leaves the institution without one until its next
    signature creates a fresh key. A moment in the future is refused (it would
    leave the key usable meanwhile); revoking twice keeps the earlier moment.
    """
    now = timezone.now()
    moment = compromised_from or now
    if moment > now:
        raise ValidationFailed.for_field("compromised_from", _("The compromise cannot start in the future."))
    key = SigningKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is not None and key.revoked_at <= moment:
        return key
    key.revoked_at = moment
    key.revocation_reason = (reason or "").strip()[:500]
    if key.not_after is None or key.not_after > moment:
        key.not_after = moment
    key.save(update_fields=["revoked_at", "revocation_reason", "not_after"])
    _record(actor, "signingkey.revoked", key, {"compromised_from": moment.isoformat()})
    return key


def signed_with_compromised_key(*, key: SigningKey, signed_at: dt.datetime | None) -> bool:
    """Tell whether a signature made at `signed_at` falls in `key`'s compromised period.

    An unknown signing time counts as compromised once the key is revoked.
    """
    if key.revoked_at is None:
        return False
    return signed_at is None or signed_at >= key.revoked_at


def keys_published():
    """Return every key that may have signed something, oldest first, with institutions."""
    return SigningKey.objects.select_related("institution").order_by("institution_id", "not_before", "id")


@functools.lru_cache(maxsize=4096)
def _private_key(kid: str, ciphertext: bytes) -> Ed25519PrivateKey:
    raw = decrypt(ciphertext, purpose=_PURPOSE, associated=kid.encode())
    return Ed25519PrivateKey.from_private_bytes(raw)


def private_key_for(key: SigningKey) -> Ed25519PrivateKey:
    """Return the decrypted private key object, cached on the row and per process.

    The per-row cache spares bulk signing even the cache-key hashing; the process
    cache is keyed by the ciphertext too, so a changed row never reuses a stale key.
    """
    cached = key.__dict__.get("_private_key")
    if cached is None:
        cached = key.__dict__["_private_key"] = _private_key(key.kid, bytes(key.private_key_encrypted))
    return cached


@functools.lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_for(key: SigningKey) -> Ed25519PublicKey:
    return _public_key(bytes(key.public_key))


def public_key_b64url(key: SigningKey) -> str:
    return _b64url(bytes(key.public_key))


def public_key_multibase(key: SigningKey) -> str:
    """Return the Multikey form: base58btc ("z") of the multicodec-prefixed key."""
    return "z" + base58.b58encode(_ED25519_PUB_MULTICODEC + bytes(key.public_key)).decode()


def jwk_for(key: SigningKey) -> dict:
    """Return `key` as a JWK with the registry's validity fields (CONTRACTS, JWKS)."""
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": public_key_b64url(key),
        "kid": key.kid,
        "alg": "EdDSA",
        "use": "sig",
        "institution_inn": key.institution.inn,
        "not_before": key.not_before.isoformat(),
        "not_after": key.not_after.isoformat() if key.not_after else None,
    }
    if key.revoked_at:
        jwk["revoked_at"] = key.revoked_at.isoformat()
    return jwk


def jwks() -> dict:
    """Return the JWKS of every published key; rotated and revoked keys stay listed."""
    return {"keys": [jwk_for(key) for key in keys_published()]}
