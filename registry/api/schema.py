"""Schema post-processing: response headers that drf-spectacular cannot attach per status."""

_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "description": "The authentication scheme to use: `Bearer`.",
            "schema": {"type": "string", "example": 'Bearer realm="api"'},
        }
    },
    "429": {
        "Retry-After": {
            "description": "Seconds to wait before the key may send again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    "201": {
        "Location": {"description": "The new document's URL.", "schema": {"type": "string"}},
        "Idempotent-Replayed": {
            "description": "`true` when this answer replays an earlier request with the same Idempotency-Key.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    },
}


def add_response_headers(result, generator, request, public):
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status in _HEADERS:
                    response.setdefault("headers", {}).update(_HEADERS[status])
    return result
