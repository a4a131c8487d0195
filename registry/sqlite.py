"""SQLite (the embedded demo) made to fold case beyond ASCII in LIKE.

SQLite's LIKE ignores case for ASCII letters only, so an operator searching the
demo's admin for "школа" would not find "Школа № 5". Replacing SQLite's like()
function with one that folds case for every alphabet gives the demo the search
PostgreSQL gives production (UPPER(...) LIKE UPPER(...)). Django compiles
contains, icontains, startswith and the like to LIKE on SQLite, so all of them
follow.
"""

import functools
import re


@functools.lru_cache(maxsize=256)
def _compile(pattern: str, escape: str | None) -> re.Pattern:
    parts = []
    chars = iter(pattern)
    for ch in chars:
        if escape and ch == escape:
            parts.append(re.escape(next(chars, "")))
        elif ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def like(pattern, value, escape=None):
    """SQLite's like(Y, X[, Z]) for `X LIKE Y ESCAPE Z`, case-insensitive in every alphabet."""
    if pattern is None or value is None:
        return None
    return _compile(str(pattern), escape).fullmatch(str(value)) is not None


def install_unicode_like(sender, connection, **kwargs) -> None:
    """connection_created receiver: register like() on each new SQLite connection."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("like", 2, like, deterministic=True)
        connection.connection.create_function("like", 3, like, deterministic=True)
