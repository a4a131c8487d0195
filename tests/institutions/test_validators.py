"""INN, OGRN/OGRNIP and KPP checksums on known-good and known-bad values."""

import pytest
from django.core.exceptions import ValidationError

from institutions.validators import (
    inn_is_valid,
    kpp_is_valid,
    ogrn_is_valid,
    validate_inn,
    validate_kpp,
    validate_ogrn,
)


@pytest.mark.parametrize(
    "inn",
    [
        "7707083893",  # Sberbank, the reference value in DESIGN.md
        "7701000019",  # the demo school (CONTRACTS.md)
        "7701000065",
        "500100732259",  # a person's 12-digit INN: both check digits
    ],
)
def test_valid_inn_passes(inn):
    assert inn_is_valid(inn)
    validate_inn(inn)


@pytest.mark.parametrize(
    "inn",
    [
        "7707083894",  # wrong check digit
        "7707083890",
        "500100732258",  # second check digit wrong
        "500100732249",  # first check digit wrong
        "770708389",  # 9 digits
        "77070838931",  # 11 digits
        "77070838a3",
        "",
        "７７０７０８３８９３",  # full-width digits are digits to str.isdigit, not to the registry
        " 7707083893",
    ],
)
def test_invalid_inn_fails(inn):
    assert not inn_is_valid(inn)
    with pytest.raises(ValidationError):
        validate_inn(inn)


@pytest.mark.parametrize("ogrn", ["1027700132195", "304500116000157"])
def test_valid_ogrn_and_ogrnip_pass(ogrn):
    assert ogrn_is_valid(ogrn)
    validate_ogrn(ogrn)


@pytest.mark.parametrize(
    "ogrn",
    [
        "1027700132194",  # OGRN, wrong check digit
        "304500116000158",  # OGRNIP, wrong check digit
        "102770013219",  # 12 digits
        "10277001321950",  # 14 digits
        "102770013219X",
        "",
    ],
)
def test_invalid_ogrn_fails(ogrn):
    assert not ogrn_is_valid(ogrn)
    with pytest.raises(ValidationError):
        validate_ogrn(ogrn)


def test_ogrnip_checksum_is_mod_13_not_mod_11():
    # 30450011600000: mod 13 gives check digit 5, mod 11 would give 3.
    assert ogrn_is_valid("304500116000005")
    assert not ogrn_is_valid("304500116000003")


@pytest.mark.parametrize("kpp", ["770101001", "7701AB001", "500301001"])
def test_valid_kpp_passes(kpp):
    assert kpp_is_valid(kpp)
    validate_kpp(kpp)


@pytest.mark.parametrize("kpp", ["77010100", "7701010010", "77010100a", "7701ab001", "A70101001"])
def test_invalid_kpp_fails(kpp):
    assert not kpp_is_valid(kpp)
    with pytest.raises(ValidationError):
        validate_kpp(kpp)


def test_empty_kpp_is_allowed():
    validate_kpp("")
