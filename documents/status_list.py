"""Bitstring Status List indexes: drawn at random at issue time, encoded for the list.

One registry-wide list of 2**24 bits. Indexes are drawn at random from the whole
space (herd privacy: neighbours in the list say nothing about each other, and the
index says nothing about when or where a document was issued), and the space
stays sparse enough for a random draw to rarely collide even with millions of
documents. The list is 2 MiB raw and a few KiB gzipped, since almost every bit
is 0.
"""

import base64
import gzip
import secrets

from documents.models import Document

# An index is three random bytes, so the list holds 2**24 bits and every index is
# equally likely.
_INDEX_BYTES = 3
STATUS_LIST_BITS = 1 << (8 * _INDEX_BYTES)


def _random_indexes(n: int) -> set[int]:
    """Up to `n` uniform random list indexes, from one draw of random bytes."""
    raw = secrets.token_bytes(_INDEX_BYTES * n)
    return {int.from_bytes(raw[i : i + _INDEX_BYTES], "big") for i in range(0, len(raw), _INDEX_BYTES)}


def status_list_indexes_new(count: int, exclude: frozenset[int] | set[int] = frozenset()) -> list[int]:
    """Draw `count` distinct random list indexes not yet taken (one query per round).

    For bulk issuance, draw a batch's indexes at once and set them on the
    documents before signing; `exclude` names indexes drawn for rows not yet
    committed (the import's batches in flight). The unique constraint on
    Document.status_list_index stays the last word against a concurrent draw of
    the same index.
    """
    chosen: set[int] = set()
    while len(chosen) < count:
        candidates = _random_indexes(count - len(chosen)) - chosen - exclude
        taken = set(
            Document.objects.filter(status_list_index__any=list(candidates)).values_list("status_list_index", flat=True)
        )
        chosen |= candidates - taken
    return list(chosen)


def encode_bitstring(indexes) -> str:
    """Return the multibase ("u", base64url) GZIP of a bitstring with `indexes` set.

    Bit 0 is the most significant bit of the first byte (Bitstring Status List §4).
    """
    bits = bytearray(STATUS_LIST_BITS // 8)
    for index in indexes:
        bits[index >> 3] |= 0x80 >> (index & 7)
    compressed = gzip.compress(bytes(bits), compresslevel=9, mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode()


def decode_bitstring(encoded: str) -> bytes:
    """Return the raw bitstring of an `encodedList` (inverse of `encode_bitstring`)."""
    if not encoded.startswith("u"):
        raise ValueError("encodedList must be multibase base64url ('u')")
    data = encoded[1:]
    return gzip.decompress(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
