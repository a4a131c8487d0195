"""Institutions' Ed25519 signing keys: created on first need, stored encrypted."""

import base64
import functools
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import IntegrityError, transaction
from django.utils import timezone

from institutions.models import Institution, SigningKey
from registry.crypto import decrypt, encrypt

_PURPOSE = "signing-key-encryption-v1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_key_row(institution: Institution) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # The key id is the RFC 7638-style thumbprint of the public key, prefixed by INN
    # for people reading a JWKS.
    kid = f"{institution.inn}-{_b64url(hashlib.sha256(raw_public).digest())[:16]}"
    return SigningKey(
        institution=institution,
        kid=kid,
        public_key=raw_public,
        # The kid is bound as associated data: a ciphertext swapped between rows
        # fails to decrypt.
        private_key_encrypted=encrypt(raw_private, purpose=_PURPOSE, associated=kid.encode()),
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
def signing_key_rotate(*, institution: Institution) -> SigningKey:
    """Retire the current key (it stays published) and create a new current one."""
    now = timezone.now()
    SigningKey.objects.select_for_update().filter(
        institution=institution, not_after__isnull=True, revoked_at__isnull=True
    ).update(not_after=now)
    key = _new_key_row(institution)
    key.not_before = now
    key.save()
    return key


@transaction.atomic
def signing_key_revoke(*, key: SigningKey, compromised_from=None, reason: str = "") -> SigningKey:
    """Mark `key` compromised from `compromised_from` (default now).

    Signatures made from that moment on no longer verify; earlier ones still do.
    """
    key.revoked_at = compromised_from or timezone.now()
    key.revocation_reason = reason
    if key.not_after is None or key.not_after > key.revoked_at:
        key.not_after = key.revoked_at
    key.save(update_fields=["revoked_at", "revocation_reason", "not_after"])
    return key


@functools.lru_cache(maxsize=4096)
def _private_key(kid: str, ciphertext: bytes) -> Ed25519PrivateKey:
    raw = decrypt(ciphertext, purpose=_PURPOSE, associated=kid.encode())
    return Ed25519PrivateKey.from_private_bytes(raw)


def private_key_for(key: SigningKey) -> Ed25519PrivateKey:
    return _private_key(key.kid, bytes(key.private_key_encrypted))


def public_key_for(key: SigningKey) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes(key.public_key))


def public_key_b64url(key: SigningKey) -> str:
    return _b64url(bytes(key.public_key))
