"""The API's content negotiation answers exactly as DRF's does, only sooner for the common headers."""

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer, TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from registry.api.negotiation import ApiContentNegotiation
from tests.api.conftest import assert_error_shape, issue

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "text/html",
    "application/xml",
    "application/json; indent=4",
    "application/json, text/html",
    "text/html;q=0.9, application/json",
    "*/*;q=0.8",
    "application/*",
    "",
    " application/json",
]
RENDERER_LISTS = [
    [JSONRenderer],
    [JSONRenderer, BrowsableAPIRenderer],
    [BrowsableAPIRenderer, JSONRenderer],
    [TemplateHTMLRenderer],
]


def answer(negotiation, path: str, accept: str | None, renderer_classes, format_suffix=None):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().post(path, **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, [cls() for cls in renderer_classes], format_suffix)
    except NotAcceptable:
        return "406"
    except Http404:  # a ?format= that none of the renderers has
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("renderer_classes", RENDERER_LISTS, ids=lambda r: "+".join(c.__name__ for c in r))
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("path", ["/api/v1/verify/", "/api/v1/verify/?format=json", "/api/v1/verify/?format=api"])
def test_same_answer_as_drf(path, accept, renderer_classes):
    expected = answer(DefaultContentNegotiation(), path, accept, renderer_classes)
    assert answer(ApiContentNegotiation(), path, accept, renderer_classes) == expected


@pytest.mark.parametrize("suffix", ["json", "api"])
def test_a_format_suffix_is_negotiated_by_drf(suffix):
    renderers = [JSONRenderer, BrowsableAPIRenderer]
    expected = answer(DefaultContentNegotiation(), "/x/", "*/*", renderers, suffix)
    assert answer(ApiContentNegotiation(), "/x/", "*/*", renderers, suffix) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json; charset=utf-8"])
def test_the_verify_api_answers_json_to_what_accepts_it(verifier, alice_actor, accept):
    document = issue(alice_actor, 1)
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = verifier.post("/api/v1/verify/", {"code": document.verification_code}, format="json", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["status"] == "valid"


@pytest.mark.django_db
def test_the_api_refuses_a_client_that_accepts_no_json(verifier):
    response = verifier.post("/api/v1/verify/", {"code": "x"}, format="json", HTTP_ACCEPT="text/html")
    assert_error_shape(response, 406)
