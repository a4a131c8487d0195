"""The one domain error type services raise.

Views turn it into a message, serializers into the API's JSON error shape
(`{"detail", "errors"}`), the import into a rejected row with its reason.
"""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A business rule refused the operation; nothing was changed.

    `code` is stable for programs; `message` is for people (translatable);
    `errors` maps field names to lists of messages where a field is to blame.
    """

    code = "invalid"
    http_status = 400
    default_message = _("The operation is not allowed.")

    def __init__(self, message=None, *, code: str | None = None, errors: dict | None = None):
        self.message = message if message is not None else self.default_message
        if code:
            self.code = code
        self.errors = errors or {}
        super().__init__(str(self.message))

    @classmethod
    def for_field(cls, field: str, message, *, code: str | None = None) -> "DomainError":
        return cls(message, code=code, errors={field: [message]})


class ValidationFailed(DomainError):
    code = "invalid"
    http_status = 400


class NotAllowed(DomainError):
    """The actor lacks the role, or the experiment's stage does not allow it now."""

    code = "not_allowed"
    http_status = 403
    default_message = _("You are not allowed to do this.")


class Conflict(DomainError):
    """The record would duplicate one that exists (e.g. the same document number)."""

    code = "conflict"
    http_status = 409
    default_message = _("This record already exists.")


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    default_message = _("Not found.")
