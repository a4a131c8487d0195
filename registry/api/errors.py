"""The API's one error shape: `{"detail": str, "code": str, "errors": {field: [str]}}`.

Every refusal takes it: domain rules (DomainError, with its own status), request
validation, authentication (401 with `WWW-Authenticate: Bearer`), scope (403), not
found (404), throttling (429 with `Retry-After`), and unexpected failures (500,
logged with the traceback, nothing of it shown).
"""

import logging

from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from registry.errors import DomainError

logger = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"


def error_body(detail, *, code: str, errors: dict | None = None) -> dict:
    return {"detail": str(detail), "code": code, "errors": errors or {}}


def _flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into {"field" or "grades.0.mark": [messages]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for name, value in errors.items():
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
    elif isinstance(errors, list) and any(isinstance(item, dict | list) for item in errors):
        for index, item in enumerate(errors):
            if item:
                flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    elif isinstance(errors, list):
        flat[prefix or NON_FIELD] = [str(item) for item in errors]
    else:
        flat[prefix or NON_FIELD] = [str(errors)]
    return flat


def _first_code(detail) -> str:
    if isinstance(detail, dict):
        detail = next(iter(detail.values()), None)
    if isinstance(detail, list):
        detail = detail[0] if detail else None
    if isinstance(detail, dict | list):
        return _first_code(detail)
    return getattr(detail, "code", None) or "invalid"


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        errors = {field: [str(m) for m in messages] for field, messages in exc.errors.items()}
        return Response(error_body(exc.message, code=exc.code, errors=errors), status=exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        set_rollback()
        logger.exception("Unhandled error in the API", exc_info=exc)
        return Response(
            error_body(_("Server error: the request could not be completed."), code="server_error"),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(
            _("The request is not valid: see errors."), code=_first_code(exc.detail), errors=_flatten(exc.detail)
        )
    else:
        if isinstance(exc, Http404):
            exc = exceptions.NotFound()
        detail = getattr(exc, "detail", None) or response.data.get("detail", "")
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(detail, code=code)
    return response


@csrf_exempt  # nothing to protect: it changes nothing, and must answer POSTs in the API's shape too
def not_found_view(request, *args, **kwargs):
    """JSON 404 for any path under /api/v1/ that matches no endpoint."""
    return JsonResponse(error_body(exceptions.NotFound.default_detail, code="not_found"), status=404)


# --- Schema ---------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text=_("What went wrong, for people."))
    code = serializers.CharField(help_text=_("A stable code for programs, e.g. duplicate_number."))
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text=_("Field name → messages, where a field is to blame; empty otherwise."),
    )


_EXAMPLES = {
    400: OpenApiExample(
        "Invalid field",
        value=error_body(
            "The document's data is not valid.",
            code="invalid",
            errors={"snils": ["SNILS must be 11 digits (XXX-XXX-XXX YY) with a valid check number."]},
        ),
        response_only=True,
        status_codes=["400"],
    ),
    401: OpenApiExample(
        "No or bad key",
        value=error_body("The API key is not valid or has been revoked.", code="authentication_failed"),
        response_only=True,
        status_codes=["401"],
    ),
    403: OpenApiExample(
        "Wrong scope",
        value=error_body("This endpoint needs a key with the issue scope.", code="permission_denied"),
        response_only=True,
        status_codes=["403"],
    ),
    404: OpenApiExample(
        "Not found", value=error_body("Not found.", code="not_found"), response_only=True, status_codes=["404"]
    ),
    409: OpenApiExample(
        "Duplicate number",
        value=error_body(
            "A document of this kind with this series and number already exists.",
            code="duplicate_number",
            errors={"number": ["A document of this kind with this series and number already exists."]},
        ),
        response_only=True,
        status_codes=["409"],
    ),
    422: OpenApiExample(
        "Idempotency-Key reused",
        value=error_body(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
            errors={"Idempotency-Key": ["This Idempotency-Key was already used with a different request body."]},
        ),
        response_only=True,
        status_codes=["422"],
    ),
    429: OpenApiExample(
        "Throttled",
        value=error_body("Request was throttled. Expected available in 12 seconds.", code="throttled"),
        response_only=True,
        status_codes=["429"],
    ),
}

_DESCRIPTIONS = {
    400: _("The request is not valid; `errors` names the fields."),
    401: _("No key, or the key is unknown or revoked (`WWW-Authenticate: Bearer`)."),
    403: _("The key's scope does not allow this, or a business rule refuses it."),
    404: _("No such record for this key (another institution's records are not found either)."),
    409: _("The record would duplicate an existing one (e.g. the same kind, series and number)."),
    422: _("The Idempotency-Key was used before with a different body."),
    429: _("Too many requests for this key; retry after `Retry-After` seconds."),
}


def error_responses(*codes: int) -> dict:
    """Schema responses for the given error statuses, each with the error shape and an example."""
    return {
        code: OpenApiResponse(
            response=ErrorSerializer, description=str(_DESCRIPTIONS[code]), examples=[_EXAMPLES[code]]
        )
        for code in codes
    }


AUTH_ERRORS = (401, 403, 429)
