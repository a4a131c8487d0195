"""documents.jcs against RFC 8785: the author's test data, a corpus, and generated values.

The reference is the `rfc8785` package, called directly; the fast path must give
its bytes exactly.
"""

import json
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from documents import jcs
from documents.jcs import canonicalize

# Copies of the published test data (see vectors/README.md for sources and licences).
JCS_DATA = Path(__file__).resolve().parent / "vectors" / "jcs"

CASES = sorted(p.name for p in (JCS_DATA / "input").glob("*.json"))

CORPUS = [
    {"фамилия": "Иванова", "имя": "Мария", "отчество": "Сергеевна", "оценки": [5, 4, [3, [2, []]]]},
    {"institution": {"name": "МБОУ «Школа № 1» им. А. С. Пушкина", "inn": "7707083893"}, "hours": 72},
    {"escapes": 'quote " backslash \\ slash / \b\f\n\r\t \u0000 \u001f \u007f \u2028 \u2029 é ё'},
    {"numbers": [0, -0, 1, -1, 9007199254740991, -9007199254740991, 10, 100, 123456789]},
    {
        "floats": [
            0.0,
            -0.0,
            1.0,
            1.5,
            -2.25,
            1e21,
            1e-7,
            1e-6,
            0.000001,
            1e16,
            123456789012.0,
            5e-324,
            1.7976931348623157e308,
        ]
    },
    {"nested": [[[[[["deep"]]]]], {"a": {"b": {"c": [None, True, False]}}}]},
    {"b": 1, "a": 2, "A": 3, "é": 4, "€": 5, "\ue000": 6, "\U0001f600": 7, "\U00010000": 8, "": 9},
    {"emoji in values": "Ёжик 😀", "date": "2007-05-17", "code": "ab-1e-5.x", "programme": "09.03.01"},
    {"a:1.5": "b,2e+3", "x": "[3.5]"},
    # Exponent-only floats (no decimal point) behind strings full of "e-" and "e+".
    {"s": "date-2e-3 code-e-", "v": [1e-7, 5e-324, -4e-10], "w": {"n": 3e-8}},
    {"s": "a+b e+ 1e+", "v": [1e22, -2e30], "w": [[7e100]]},
    [],
    {},
    "строка",
    7,
    2.5,
    None,
    True,
    [{"subject": "Математика", "mark": "5"}, {"subject": "Физика", "mark": "4"}] * 20,
]


@pytest.mark.parametrize("name", CASES)
def test_rfc8785_test_data_reproduced(name):
    value = json.loads((JCS_DATA / "input" / name).read_text(encoding="utf-8"))
    expected = (JCS_DATA / "output" / name).read_bytes()
    assert canonicalize(value) == expected
    assert rfc8785.dumps(value) == expected  # the reference agrees with its own spec


def test_rfc8785_test_data_present():
    assert len(CASES) >= 6


@pytest.mark.parametrize("value", CORPUS, ids=range(len(CORPUS)))
def test_corpus_identical_to_reference(value):
    assert canonicalize(value) == rfc8785.dumps(value)


def test_document_payload_takes_the_fast_path(monkeypatch):
    payload = {
        "id": 17,
        "kind": "secondary_general_certificate",
        "series": "",
        "number": "77000000000001",
        "issued_on": "2024-06-20",
        "institution": {"inn": "7707083893", "ogrn": "1027700132195", "name": "Школа № 1 им. А.С. Пушкина"},
        "holder": {"last_name": "Иванов", "first_name": "Иван", "middle_name": "", "birth_date": "2007-05-17"},
        "programme": {"code": "09.03.01", "name": "Информатика"},
        "hours": None,
        "honours": False,
        "grades": [{"subject": "Математика", "mark": "5"}],
        "experiment": 2024,
        "legal_force": False,
    }
    expected = rfc8785.dumps(payload)

    def refuse(value):
        raise AssertionError("fell back to the reference implementation")

    monkeypatch.setattr(jcs.rfc8785, "dumps", refuse)
    assert canonicalize(payload) == expected


@pytest.mark.parametrize(
    "value",
    [1.0, {"x": [2.5]}, {"k": -1e-7}, {"k": 1e16}, {"\ue000": 1, "\U00010000": 2}],
    ids=["float", "nested-float", "exponent", "big-float", "non-bmp-keys"],
)
def test_values_the_fast_path_cannot_take_fall_back(value, monkeypatch):
    calls = []
    reference = rfc8785.dumps
    monkeypatch.setattr(jcs.rfc8785, "dumps", lambda v: calls.append(v) or reference(v))
    assert canonicalize(value) == reference(value)
    assert calls


@pytest.mark.parametrize("value", [2**53, -(2**53), {"a": 10**30}, "\ud800", {1: "non-string key"}])
def test_invalid_values_raise_like_the_reference(value):
    with pytest.raises(Exception) as ours:
        canonicalize(value)
    with pytest.raises(Exception) as reference:
        rfc8785.dumps(value)
    assert type(ours.value) is type(reference.value)


def test_non_json_types_are_refused():
    import datetime as dt

    with pytest.raises((TypeError, rfc8785.CanonicalizationError)):
        canonicalize({"when": dt.date(2024, 1, 1)})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_generated_json_identical_to_reference(value):
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(alphabet=st.characters(codec="utf-8")), st.text(), max_size=8))
def test_generated_keys_sorted_like_reference(value):
    assert canonicalize(value) == rfc8785.dumps(value)
