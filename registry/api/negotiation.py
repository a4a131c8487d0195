"""Content negotiation for the partner API: DRF's, with the two common answers found first.

Nearly every partner request accepts anything (no Accept header, or `*/*`) or asks
for `application/json` exactly, and has no `?format=`. For those the answer is
known without parsing: the view's first renderer (for `application/json`, when
that renderer is JSON). DRF's negotiation reads the Accept header through
`request.headers` and the format through `request.query_params`, each built from
the whole request on first use: measured in one process, 80 µs of the verify API's
~1.2 ms of CPU (7%). Every other request is negotiated by DRF, unchanged (406
included); tests/api/test_negotiation.py holds the two to the same answers.
"""

from rest_framework.negotiation import DefaultContentNegotiation

_ANYTHING = "*/*"
_JSON = "application/json"


def first_renderer_answers(meta, renderers, format_suffix=None) -> bool:
    """Whether DRF would pick the first of `renderers` for a request with these META headers.

    True for a request that accepts anything or exactly JSON (then the first renderer
    must render JSON) and names no format; False means "ask DRF", not "refused".
    Renderers may be classes or instances.
    """
    if not renderers or format_suffix is not None or meta.get("QUERY_STRING"):
        return False
    accept = meta.get("HTTP_ACCEPT", _ANYTHING)
    return accept == _ANYTHING or (accept == _JSON and renderers[0].media_type == _JSON)


class ApiContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if first_renderer_answers(request.META, renderers, format_suffix):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
