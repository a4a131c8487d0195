"""RFC 8785 (JSON Canonicalization Scheme) fast enough to sit beside Ed25519.

The reference `rfc8785` package is pure Python and takes twice as long as the
signature it feeds; bulk issuance signs every document, so the common case goes
through orjson, whose compact sorted output already is the JCS form unless:

- it holds a float: orjson writes `1.0` and `1e+16` where ECMAScript (and so JCS)
  writes `1` and `10000000000000000`;
- it holds a character above U+FFFF: JCS sorts keys by UTF-16 code units, orjson
  by code points, and the two orders differ only around those characters;
- orjson refuses the value (non-string keys, lone surrogates, integers outside
  the 53-bit safe range) or meets a type outside JSON (dates, dataclasses,
  subclasses of the built-in types).

Each case is detected on orjson's output or by orjson itself, and falls back to
the reference package, so the result is the reference result. Detection reads the
output rather than walking the value because a walk in Python costs as much as
the signature's margin: every float orjson writes contains `.` or `e+`/`e-` right
after a digit, which `bytes.find` (memchr) locates at C speed, and a character
above U+FFFF is a UTF-8 lead byte F0–F4.

What orjson does exactly as JCS, proven by the tests on the RFC author's data and
on generated values: string escapes (`\\"`, `\\\\`, `\\b \\f \\n \\r \\t`, other
controls as lower-case `\\u00xx`, everything else raw UTF-8), integers,
`true`/`false`/`null`, no whitespace.

Not JSON and so outside the contract: NaN and the infinities (orjson writes
`null`, the reference raises), UUIDs and enums (orjson writes their value).
"""

import orjson
import rfc8785

__all__ = ["CanonicalizationError", "canonicalize"]

CanonicalizationError = rfc8785.CanonicalizationError

_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_DIGITS = frozenset(b"0123456789")
# What precedes a number in orjson's compact output: an object value, an array
# element, or (after a minus sign) either of those.
_VALUE_START = frozenset(b":,[-")
_POINT, _PLUS = b".", 0x2B
_EXP_PLUS, _EXP_MINUS = b"e+", b"e-"


def _exponent_after_digit(out: bytes, exponent: bytes) -> bool:
    i = out.find(exponent)
    while i != -1:
        if i and out[i - 1] in _DIGITS:
            return True
        i = out.find(exponent, i + 2)
    return False


def _may_hold_float(out: bytes) -> bool:
    """Tell whether orjson's `out` may contain a float; a false alarm only costs time.

    Every float orjson writes has a decimal point after a digit run that starts a
    value, or an exponent "<digit>e+" / "<digit>e-". Inside strings the same bytes
    raise a false alarm at worst. Searches go through C (memchr for one byte):
    a payload holds many "-" (dates, codes), so the exponents are looked for as
    two-byte sequences, and "e+" only when there is a "+" at all.
    """
    if _PLUS in out and _exponent_after_digit(out, _EXP_PLUS):
        return True
    if _exponent_after_digit(out, _EXP_MINUS):
        return True
    i = out.find(_POINT)
    while i != -1:
        j = i
        while j and out[j - 1] in _DIGITS:
            j -= 1
        if j < i and (j == 0 or out[j - 1] in _VALUE_START):
            return True
        i = out.find(_POINT, i + 1)
    return False


def _has_non_bmp(out: bytes) -> bool:
    """Tell whether UTF-8 `out` has a character above U+FFFF (lead bytes F0-F4).

    Five memchr scans are cheaper than one regex or a decode.
    """
    return 0xF0 in out or 0xF1 in out or 0xF2 in out or 0xF3 in out or 0xF4 in out


def canonicalize(value) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value.

    Byte-identical to `rfc8785.dumps`, and raising where it raises, for every
    JSON value (see the module docstring for the non-JSON exceptions).
    """
    try:
        out = orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError included
        return rfc8785.dumps(value)
    if _may_hold_float(out) or _has_non_bmp(out):
        return rfc8785.dumps(value)
    return out
