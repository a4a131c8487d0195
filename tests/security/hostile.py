"""The hostile-input corpus and the checks on what comes back out."""

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE_BREAKER = '"><img src=x onerror=alert(1)>'
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-1+1", "@SUM(1)"]
RIGHT_TO_LEFT_OVERRIDE = "Ива\u202eвон"
VERY_LONG = "Я" * 10_000
NUL = "Ива\x00нов"

# Accepted as data (nothing in them is invalid for a name) and so must come out escaped.
ACCEPTED = [SCRIPT, ATTRIBUTE_BREAKER, *FORMULAS]
# Refused with a validation message, never a server error.
REFUSED = {"nul": NUL, "rlo": RIGHT_TO_LEFT_OVERRIDE, "long": VERY_LONG}

RAW_MARKUP = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "onerror=alert(1)>"]


def assert_escaped(html: str, value: str) -> None:
    """`value` is shown in `html` as text: escaped, never as markup."""
    from django.utils.html import escape

    for raw in RAW_MARKUP:
        assert raw not in html, f"raw markup {raw!r} in the page"
    assert escape(value) in html, f"{value!r} not shown (escaped) in the page"
