"""Checksums of Russian organisation identifiers (INN, OGRN/OGRNIP, KPP).

Each is verified on known-good values in tests/institutions/test_validators.py.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_KPP_RE = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")


def _weighted_check(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_is_valid(value: str) -> bool:
    """Return whether `value` is a 10-digit (organisation) or 12-digit (person) INN."""
    if not value.isdigit() or not value.isascii():
        return False
    if len(value) == 10:
        return _weighted_check(value, _INN10_WEIGHTS) == int(value[9])
    if len(value) == 12:
        return _weighted_check(value, _INN12_WEIGHTS_11) == int(value[10]) and _weighted_check(
            value, _INN12_WEIGHTS_12
        ) == int(value[11])
    return False


def inn10_check_digit(first9: str) -> str:
    return str(_weighted_check(first9, _INN10_WEIGHTS))


def ogrn_is_valid(value: str) -> bool:
    """Return whether `value` is an OGRN (13 digits) or OGRNIP (15 digits)."""
    if not value.isdigit() or not value.isascii():
        return False
    if len(value) == 13:
        return int(value[:12]) % 11 % 10 == int(value[12])
    if len(value) == 15:
        return int(value[:14]) % 13 % 10 == int(value[14])
    return False


def ogrn_check_digit(first12: str) -> str:
    return str(int(first12) % 11 % 10)


def kpp_is_valid(value: str) -> bool:
    return bool(_KPP_RE.match(value))


def validate_inn(value: str) -> None:
    if not inn_is_valid(value):
        raise ValidationError(_("INN must be 10 or 12 digits with a valid check digit."), code="invalid_inn")


def validate_ogrn(value: str) -> None:
    if not ogrn_is_valid(value):
        raise ValidationError(_("OGRN must be 13 digits (OGRNIP 15) with a valid check digit."), code="invalid_ogrn")


def validate_kpp(value: str) -> None:
    if value and not kpp_is_valid(value):
        raise ValidationError(_("KPP must be 9 characters: NNNNPPNNN."), code="invalid_kpp")
