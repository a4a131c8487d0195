"""A view's commonest request answered without DRF's request cycle; every other one by DRF.

The verification API answers far more requests than any other endpoint, nearly
all of one shape: a POST of `{"code": …}` as JSON, with a partner key, accepting
JSON. For that shape DRF's cycle (its Request wrapper, negotiation, the
authentication, permission and throttle plumbing, the template response) costs
about 75 µs of CPU a request, 12% of a whole verification measured in one
process. `DirectAnswerMixin` answers such a request itself, with the view's own
authenticator, permissions and throttles, and hands anything else to DRF's
`dispatch` unchanged. tests/api/test_direct.py holds the two paths to the same
answers (status, body, headers) and the same throttle counts.

A request authenticated here and then handed to DRF (a refused key, a wrong
scope, over its rate) is not authenticated again: the outcome is kept on the
request (registry.api.auth.settle) and ApiKeyAuthentication replays it, so the
key's rate window counts the request once.
"""

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer

from registry.api import BodyJSONParser
from registry.api.auth import ApiKeyAuthentication, settle
from registry.api.negotiation import ApiContentNegotiation, first_renderer_answers
from registry.api.throttling import ApiKeyRateThrottle

_JSON = "application/json"
# A direct request is a few dozen bytes; a larger one goes to DRF, whose parser
# reads the stream (Django's request.body would refuse it over DATA_UPLOAD_MAX_MEMORY_SIZE).
MAX_DIRECT_BODY = 4096


class _Authenticated:
    """What the permissions and the throttle read of a DRF Request: the user and the key."""

    def __init__(self, user, auth):
        self.user, self.auth = user, auth


class DirectAnswerMixin:
    """For an APIView: answer the JSON POSTs that `direct_input` accepts without DRF's cycle.

    `direct_input(data)` looks at the parsed body only (it runs before the key is
    checked): it returns what `direct_answer` needs, or None to leave the request
    to DRF. `direct_answer(value)` runs once the key, the permissions and the
    rate allow the request, and returns the answer's data (200, rendered as JSON).
    A view that does not speak JSON first (its first renderer JSONRenderer, its
    first parser BodyJSONParser) or does not authenticate and throttle by partner
    key only answers nothing directly.
    """

    def direct_input(self, data):
        raise NotImplementedError

    def direct_answer(self, value) -> dict:
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        response = self._answer_directly(request, kwargs)
        if response is not None:
            return response
        return super().dispatch(request, *args, **kwargs)

    def _direct_shape(self, request, kwargs) -> bool:
        meta = request.META
        length = meta.get("CONTENT_LENGTH") or ""
        return (
            request.method == "POST"
            and meta.get("CONTENT_TYPE") == _JSON
            and length.isdigit()
            and int(length) <= MAX_DIRECT_BODY
            and not kwargs  # no format suffix
            # What the view's negotiation answers at once, with a JSON renderer.
            and self.content_negotiation_class is ApiContentNegotiation
            and first_renderer_answers(meta, self.renderer_classes)
            and self.renderer_classes[0] is JSONRenderer
            and list(self.parser_classes[:1]) == [BodyJSONParser]
            and list(self.authentication_classes) == [ApiKeyAuthentication]
            and all(t is ApiKeyRateThrottle for t in self.throttle_classes)
        )

    def _answer_directly(self, request, kwargs) -> HttpResponse | None:
        if not self._direct_shape(request, kwargs):
            return None
        try:
            data = BodyJSONParser.loads(request.body)
        except exceptions.ParseError:
            return None
        value = self.direct_input(data)
        if value is None:
            return None
        authenticator = ApiKeyAuthentication()
        try:
            outcome = authenticator.authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            settle(request, exc)
            return None
        if outcome is None:  # no key sent: nothing was counted, DRF answers 401
            return None
        settle(request, outcome)
        asker = _Authenticated(*outcome)
        if not all(p.has_permission(asker, self) for p in self.get_permissions()):
            return None
        if not all(t.allow_request(asker, self) for t in self.get_throttles()):
            return None
        # What DRF's Request sets on the Django request (the middleware reads request.user).
        request.user, request.auth = outcome
        response = HttpResponse(JSONRenderer().render(self.direct_answer(value)), content_type=_JSON)
        # What DRF's finalize_response adds.
        headers = self.default_response_headers
        vary = headers.pop("Vary", None)
        if vary is not None:
            patch_vary_headers(response, [v.strip() for v in vary.split(",")])
        for name, header in headers.items():
            response[name] = header
        return response
