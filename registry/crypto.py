"""Keys derived from the master key: field encryption and keyed hashes.

One secret (`REGISTRY_MASTER_KEY`) is stretched with HKDF into independent
sub-keys, so encrypting SNILS, encrypting private signing keys and hashing SNILS
for look-ups never share key material. Ciphertexts carry a version byte so the
scheme can change without a flag day.
"""

import base64
import functools
import hmac
import logging
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

_VERSION = b"\x01"
_NONCE_BYTES = 12


@functools.cache
def master_key() -> bytes:
    """Return the 32-byte master key; in demo/debug mode create a local one once.

    Production settings refuse to start without REGISTRY_MASTER_KEY. Without it
    (demo or debug mode) the key lives in VAR_DIR/master.key, created on first
    need; every process that uses it says so in its log, since data encrypted
    under it is only as safe as that file.
    """
    raw = settings.REGISTRY_MASTER_KEY
    if not raw:
        path = settings.VAR_DIR / "master.key"
        created = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made earlier, or by a concurrent process
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(32)).decode())
            created = True
        logger.warning(
            "REGISTRY_MASTER_KEY is not set: %s the local demo key at %s. Never use it for real data.",
            "created" if created else "using",
            path,
        )
        raw = path.read_text().strip()
    return master_key_decode(raw)


def master_key_decode(raw: str) -> bytes:
    """Decode REGISTRY_MASTER_KEY (base64 of 32 bytes); raise ImproperlyConfigured otherwise."""
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        raise ImproperlyConfigured("REGISTRY_MASTER_KEY is not valid base64") from None
    if len(key) != 32:
        raise ImproperlyConfigured("REGISTRY_MASTER_KEY must decode to 32 bytes")
    return key


@functools.cache
def subkey(purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(master_key())


@functools.lru_cache(maxsize=16)
def _aead(key: bytes) -> AESGCM:
    """The cipher under `key`, set up once (it holds no per-message state)."""
    return AESGCM(key)


def encrypt(plaintext: bytes, *, purpose: str, associated: bytes = b"") -> bytes:
    """Encrypt with AES-256-GCM under the sub-key for `purpose`."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _VERSION + nonce + _aead(subkey(purpose)).encrypt(nonce, plaintext, associated)


def decrypt(ciphertext: bytes, *, purpose: str, associated: bytes = b"") -> bytes:
    ciphertext = bytes(ciphertext)
    if ciphertext[:1] != _VERSION:
        raise ValueError("unknown ciphertext version")
    nonce = ciphertext[1 : 1 + _NONCE_BYTES]
    return _aead(subkey(purpose)).decrypt(nonce, ciphertext[1 + _NONCE_BYTES :], associated)


def keyed_hash(value: str, *, purpose: str) -> str:
    """Return an HMAC-SHA256 hex digest: equal inputs match, but it cannot be reversed."""
    return hmac.digest(subkey(purpose), value.encode(), "sha256").hex()
