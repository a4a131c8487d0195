import pytest

from registry.csv_safe import neutralise_formula, neutralise_row


@pytest.mark.parametrize(
    "value",
    ["=1+1", '=HYPERLINK("http://evil.example","x")', "+7 495", "-2+3", "@SUM(A1)", "\t=1", "\r=1"],
)
def test_formula_prefixes_become_text(value):
    assert neutralise_formula(value) == "'" + value


@pytest.mark.parametrize("value", ["Иванова", "12345678901234", "", "a=b", " =1", 42, -3, None, 1.5])
def test_other_values_pass_unchanged(value):
    assert neutralise_formula(value) == value


def test_row_is_neutralised_cell_by_cell():
    assert neutralise_row(["=1", "ok", 5]) == ["'=1", "ok", 5]
