"""What each key scope may do.

`issue` keys (one institution's information system) list, create, annul and read
their institution's documents. `verify` keys (universities, employers) verify any
document. Issue keys do not verify: a verifier is a separate partner with its own
key, throttle and audit trail. Any key reads the institution directory.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from institutions.models import ApiKey, ApiKeyScope


def _api_key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class IsPartner(BasePermission):
    """Any live partner key."""

    def has_permission(self, request, view) -> bool:
        return _api_key(request) is not None


class IsIssueKey(IsPartner):
    message = _("This endpoint needs a key with the issue scope.")

    def has_permission(self, request, view) -> bool:
        key = _api_key(request)
        if key is None:
            return False
        return key.scope == ApiKeyScope.ISSUE and key.institution_id is not None


class IsVerifyKey(IsPartner):
    message = _("This endpoint needs a key with the verify scope.")

    def has_permission(self, request, view) -> bool:
        key = _api_key(request)
        if key is None:
            return False
        return key.scope == ApiKeyScope.VERIFY
