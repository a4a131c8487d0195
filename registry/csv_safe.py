"""Neutralise spreadsheet formulas in exported cells (CSV injection).

A cell that starts with = + - @ (or a tab or carriage return, which some
spreadsheets skip before reading one of those) is run as a formula when the file
is opened in Excel or LibreOffice; a graduate's name typed as
`=HYPERLINK("http://evil", "click")` would become a live link in a clerk's
export. Such values get a leading apostrophe, which spreadsheets show as text.
"""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value):
    """Return `value` safe for a spreadsheet cell; non-strings are returned unchanged.

    Negative numbers pass as numbers; only text is prefixed.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_row(values):
    """Apply `neutralise_formula` to every cell of a row."""
    return [neutralise_formula(value) for value in values]
