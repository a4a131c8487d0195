"""`Authorization: Bearer <key>` authentication for partner systems."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from institutions.models import ApiKey
from registry.api import keycache


class Partner:
    """The principal behind a partner key (DRF's `request.user`); `request.auth` is the ApiKey."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.pk = self.id = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


# Where settle() keeps an outcome on Django's request.
_SETTLED = "_partner_authentication"


def settle(request, outcome) -> None:
    """Keep the outcome of authenticating Django's `request`: (Partner, ApiKey) or the refusal.

    For a request authenticated before DRF's cycle (registry.api.direct) and then
    handed to it: ApiKeyAuthentication replays the outcome instead of checking the
    key again, which would count the request twice in the key's rate window.
    """
    setattr(request, _SETTLED, outcome)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate `Authorization: Bearer <prefix>.<secret>` against a live ApiKey.

    No header (or another scheme) leaves the request anonymous, so public views stay
    public and protected ones answer 401; a bearer key that is unknown, wrong or
    revoked is refused with 401 at once.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        """(Partner, ApiKey), or None without a bearer key; `request` is DRF's or Django's."""
        settled = getattr(getattr(request, "_request", request), _SETTLED, None)
        if isinstance(settled, exceptions.AuthenticationFailed):
            raise settled
        if settled is not None:
            return settled
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Send the key as: Authorization: Bearer <key>."))
        api_key = keycache.key_cache.authenticate(parts[1]) if parts[1].isascii() else None
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("The API key is not valid or has been revoked."))
        return Partner(api_key), api_key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "registry.api.auth.ApiKeyAuthentication"
    name = "partnerKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": str(
                _(
                    "A partner key issued by a ministry operator, sent as `Authorization: Bearer <key>`. "
                    "Scope `issue` keys act for one institution (documents); scope `verify` keys verify "
                    "documents. Any key may read the institution directory."
                )
            ),
        }
