"""Formats and checksums of a graduate's and a document's identifiers.

Pure functions returning error messages, so the form, the import, the API and the
services share them. Each is tested on known-good and known-bad values.
"""

import operator
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from documents.kinds import RULES, may_issue

_SNILS_SEPARATORS = re.compile(r"[\s\-]")
_OKSO_RE = re.compile(r"^\d{2}\.\d{2}\.\d{2}$")
_FREE_FORM_RE = re.compile(r"^[0-9A-Za-zА-Яа-яЁё\-/]{1,30}$")

# Numbers up to 001-001-998 were issued before the check digit existed.
_SNILS_UNCHECKED_UP_TO = 1001998


def snils_normalize(value: str) -> str:
    """Strip separators: '112-233-445 95' → '11223344595'."""
    return _SNILS_SEPARATORS.sub("", value or "")


_SNILS_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, 1)


def snils_check_digits(first9: str) -> str:
    total = sum(map(operator.mul, map(int, first9), _SNILS_WEIGHTS))
    if total < 100:
        return f"{total:02d}"
    if total in (100, 101):
        return "00"
    rest = total % 101
    return "00" if rest == 100 else f"{rest:02d}"


def snils_is_valid(value: str) -> bool:
    digits = snils_normalize(value)
    if len(digits) != 11 or not digits.isdigit() or not digits.isascii():
        return False
    if int(digits[:9]) <= _SNILS_UNCHECKED_UP_TO:
        return True
    return snils_check_digits(digits[:9]) == digits[9:]


def snils_format(digits: str) -> str:
    return f"{digits[0:3]}-{digits[3:6]}-{digits[6:9]} {digits[9:11]}"


def snils_mask(digits: str) -> str:
    """Show only the check digits: '***-***-*** 95'."""
    return f"***-***-*** {digits[9:11]}" if len(digits) == 11 else "***"


def validate_snils(value: str) -> None:
    if not snils_is_valid(value):
        raise ValidationError(
            _("SNILS must be 11 digits (XXX-XXX-XXX YY) with a valid check number."), code="invalid_snils"
        )


def validate_okso(value: str) -> None:
    if value and not _OKSO_RE.match(value):
        raise ValidationError(_("Programme code must look like NN.NN.NN (OKSO)."), code="invalid_okso")


def document_identifier_errors(*, kind: str, series: str, number: str, registration_number: str) -> dict:
    """Return {field: [message]} for a document's series, number and registration number."""
    errors: dict[str, list] = {}
    rule = RULES.get(kind)
    if rule is None:
        return {"kind": [_("Unknown document kind.")]}
    series = series or ""
    if rule.series_digits is None:
        if series:
            errors["series"] = [_("This kind of document has no series.")]
    elif rule.series_digits > 0:
        if not (series.isdigit() and series.isascii() and len(series) == rule.series_digits):
            errors["series"] = [_("Series must be exactly %(n)d digits.") % {"n": rule.series_digits}]
    elif series and not _FREE_FORM_RE.match(series):
        errors["series"] = [_("Series may hold only letters, digits, '-' and '/', up to 30.")]
    if rule.number_digits is not None:
        if not (number.isdigit() and number.isascii() and len(number) == rule.number_digits):
            errors["number"] = [_("Number must be exactly %(n)d digits.") % {"n": rule.number_digits}]
    elif not _FREE_FORM_RE.match(number or ""):
        errors["number"] = [_("Number may hold only letters, digits, '-' and '/', up to 30.")]
    if not registration_number:
        errors["registration_number"] = [_("Registration number is required.")]
    elif not _FREE_FORM_RE.match(registration_number):
        errors["registration_number"] = [_("Registration number may hold only letters, digits, '-' and '/', up to 30.")]
    elif registration_number == number:
        errors["registration_number"] = [_("Registration number must differ from the document number.")]
    return errors


def issuer_error(*, institution_kind: str, kind: str):
    """Return a message if an institution of this kind may not issue `kind`, else None."""
    if not may_issue(institution_kind, kind):
        return _("An institution of this kind may not issue this kind of document.")
    return None
