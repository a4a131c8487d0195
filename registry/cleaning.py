"""Checks on free text that every way in (form, import, API, admin) must pass.

PostgreSQL refuses a NUL character in text and a value longer than its column;
without these checks such input reaches the database and fails there as a server
error instead of a message. Bidirectional overrides and other control characters
have no use in a name or a programme title and can make a page show text in an
order other than stored (a name that "reads" differently on the verification page),
so they are refused too.
"""

import re

from django.utils.translation import gettext_lazy as _

# C0 controls (tab, newline and carriage return included: none belongs in a
# one-line field), DEL, C1 controls, and the bidirectional embeddings, overrides
# and isolates (U+202A–U+202E, U+2066–U+2069).
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A free-text field typed in a textarea (a reason) keeps its line breaks and tabs.
FORBIDDEN_IN_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def text_error(value, *, max_length: int | None = None, multiline: bool = False):
    """Return the message for what is wrong with one text value, or None.

    `multiline` allows line breaks and tabs (text typed in a textarea).
    """
    if not isinstance(value, str):
        return None
    # Surrounding whitespace is stripped before saving: only what is kept counts.
    value = value.strip()
    # One scan for the common case (nothing wrong); NUL is among the forbidden characters.
    if (FORBIDDEN_IN_MULTILINE if multiline else FORBIDDEN_CHARACTERS).search(value):
        if "\x00" in value:
            return _("This field cannot contain NUL characters.")
        return _("This field contains control or text-direction characters; retype it.")
    if max_length is not None and len(value) > max_length:
        return _("This field is too long: at most %(n)d characters.") % {"n": max_length}
    return None


def text_errors(model, **values) -> dict[str, list]:
    """Return {field: [message]} for the values `model`'s columns would refuse."""
    errors = {}
    for name, value in values.items():
        max_length = model._meta.get_field(name).max_length
        message = text_error(value, max_length=max_length)
        if message:
            errors[name] = [message]
    return errors


def merge_errors(errors: dict, more: dict) -> dict:
    """Add `more`'s messages to `errors` (both {field: [message]}); return `errors`."""
    for name, messages in more.items():
        errors.setdefault(name, []).extend(messages)
    return errors
