"""SNILS at rest: encrypted for display, keyed-hashed for exact look-ups."""

from documents.validators import snils_normalize
from registry.crypto import decrypt, encrypt, keyed_hash

_ENC = "snils-encryption-v1"
_HASH = "snils-lookup-v1"


def snils_encrypt(snils: str) -> bytes:
    return encrypt(snils_normalize(snils).encode(), purpose=_ENC)


def snils_decrypt(ciphertext: bytes) -> str:
    return decrypt(bytes(ciphertext), purpose=_ENC).decode()


def snils_lookup_hash(snils: str) -> str:
    return keyed_hash(snils_normalize(snils), purpose=_HASH)
