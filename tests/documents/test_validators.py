"""SNILS, OKSO, number/series formats per kind and who may issue which kind."""

import pytest
from django.core.exceptions import ValidationError

from documents.kinds import DocumentKind, kinds_for_institution, may_issue
from documents.validators import (
    document_identifier_errors,
    issuer_error,
    snils_check_digits,
    snils_format,
    snils_is_valid,
    snils_mask,
    snils_normalize,
    validate_okso,
    validate_snils,
)

# --- SNILS ------------------------------------------------------------------------


@pytest.mark.parametrize("snils", ["112-233-445 95", "11223344595", "112 233 445 95", "112-233-445-95"])
def test_reference_snils_is_valid_with_or_without_separators(snils):
    assert snils_is_valid(snils)
    validate_snils(snils)


@pytest.mark.parametrize(
    "snils",
    [
        "112-233-445 96",  # wrong check number
        "112-233-445 59",
        "112-233-445 9",  # 10 digits
        "112-233-445 955",  # 12 digits
        "112-233-44a 95",
        "",
        "１１２２３３４４５９５",  # full-width digits
    ],
)
def test_invalid_snils_fails(snils):
    assert not snils_is_valid(snils)
    with pytest.raises(ValidationError):
        validate_snils(snils)


@pytest.mark.parametrize(
    ("first9", "check"),
    [
        ("112233445", "95"),  # S = 95 < 100: the sum itself
        ("100427626", "99"),  # S = 99
        ("100356355", "00"),  # S = 100
        ("100079190", "00"),  # S = 101
        ("106897449", "00"),  # S = 201: 201 mod 101 = 100 -> 00
        ("389993780", "00"),  # S = 302: 302 mod 101 = 0
        ("999999999", "01"),  # S = 405: 405 mod 101 = 1
    ],
)
def test_snils_check_number_rules(first9, check):
    assert snils_check_digits(first9) == check
    assert snils_is_valid(first9 + check)


def test_snils_up_to_001_001_998_carries_no_check():
    assert snils_is_valid("001-001-998 00")
    assert snils_is_valid("001-001-998 77")
    assert snils_is_valid("000-000-001 42")
    # From 001-001-999 on the check number counts: S = 65.
    assert snils_is_valid("001-001-999 65")
    assert not snils_is_valid("001-001-999 00")


def test_snils_normalize_format_and_mask():
    assert snils_normalize("112-233-445 95") == "11223344595"
    assert snils_format("11223344595") == "112-233-445 95"
    assert snils_mask("11223344595") == "***-***-*** 95"
    assert "112" not in snils_mask("11223344595")


# --- OKSO ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["09.02.07", "38.03.01", "31.05.01", ""])
def test_valid_okso_code_passes(code):
    validate_okso(code)


@pytest.mark.parametrize("code", ["09.02.7", "090207", "09-02-07", "9.02.07", "09.02.07.1", "ab.cd.ef"])
def test_invalid_okso_code_fails(code):
    with pytest.raises(ValidationError):
        validate_okso(code)


# --- Numbers and series per kind --------------------------------------------------------


def _errors(kind, series="", number="", registration_number="R-1"):
    return document_identifier_errors(kind=kind, series=series, number=number, registration_number=registration_number)


@pytest.mark.parametrize("kind", [DocumentKind.BASIC_GENERAL_CERTIFICATE, DocumentKind.SECONDARY_GENERAL_CERTIFICATE])
def test_certificate_has_14_digit_number_and_no_series(kind):
    assert _errors(kind, number="77001234567890") == {}
    assert "number" in _errors(kind, number="7700123456789")  # 13 digits
    assert "number" in _errors(kind, number="770012345678901")  # 15 digits
    assert "number" in _errors(kind, number="7700123456789A")
    assert "series" in _errors(kind, series="123456", number="77001234567890")


@pytest.mark.parametrize(
    "kind",
    [
        DocumentKind.VOCATIONAL_DIPLOMA,
        DocumentKind.BACHELOR_DIPLOMA,
        DocumentKind.SPECIALIST_DIPLOMA,
        DocumentKind.MASTER_DIPLOMA,
    ],
)
def test_diploma_has_6_digit_series_and_7_digit_number(kind):
    assert _errors(kind, series="107724", number="1234567") == {}
    assert "series" in _errors(kind, series="", number="1234567")
    assert "series" in _errors(kind, series="10772", number="1234567")
    assert "series" in _errors(kind, series="10772A", number="1234567")
    assert "number" in _errors(kind, series="107724", number="123456")
    assert "number" in _errors(kind, series="107724", number="12345678")


@pytest.mark.parametrize(
    "kind",
    [
        DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE,
        DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA,
        DocumentKind.ADDITIONAL_EDUCATION_CERTIFICATE,
    ],
)
def test_additional_documents_have_free_form_number_and_optional_series(kind):
    assert _errors(kind, number="ПК-0001/2024") == {}
    assert _errors(kind, series="ПК", number="772400012345") == {}
    assert "number" in _errors(kind, number="")
    assert "number" in _errors(kind, number="12 34")
    assert "number" in _errors(kind, number="1" * 31)
    assert "series" in _errors(kind, series="П К", number="1")


def test_registration_number_is_required_and_differs_from_number():
    kind = DocumentKind.SECONDARY_GENERAL_CERTIFICATE
    assert "registration_number" in _errors(kind, number="77001234567890", registration_number="")
    assert "registration_number" in _errors(kind, number="77001234567890", registration_number="77001234567890")
    assert "registration_number" in _errors(kind, number="77001234567890", registration_number="12 3")


def test_unknown_kind_is_an_error():
    assert "kind" in _errors("passport", number="1")


# --- Who may issue what -------------------------------------------------------------

ISSUERS = {
    DocumentKind.BASIC_GENERAL_CERTIFICATE: {"school"},
    DocumentKind.SECONDARY_GENERAL_CERTIFICATE: {"school"},
    DocumentKind.VOCATIONAL_DIPLOMA: {"college"},
    DocumentKind.BACHELOR_DIPLOMA: {"university"},
    DocumentKind.SPECIALIST_DIPLOMA: {"university"},
    DocumentKind.MASTER_DIPLOMA: {"university"},
    DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE: {"college", "university", "additional"},
    DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA: {"college", "university", "additional"},
    DocumentKind.ADDITIONAL_EDUCATION_CERTIFICATE: {"additional"},
}


@pytest.mark.parametrize("institution_kind", ["school", "college", "university", "additional"])
@pytest.mark.parametrize("kind", list(ISSUERS))
def test_issuer_rules_follow_the_design_table(institution_kind, kind):
    allowed = institution_kind in ISSUERS[kind]
    assert may_issue(institution_kind, kind) is allowed
    assert (issuer_error(institution_kind=institution_kind, kind=kind) is None) is allowed
    assert (kind in kinds_for_institution(institution_kind)) is allowed


def test_every_kind_has_an_issuer_rule():
    assert set(ISSUERS) == set(DocumentKind.values)
