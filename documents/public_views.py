"""Public pages and documents: verification (no login), JWKS, DIDs, the status list.

Every verification query counts against a per-client-IP sliding window
(`VERIFY_RATE_LIMIT`, e.g. "30/min"), so nobody can walk the space of numbers or
codes; the blank form does not count. Answers are never cached by browsers or
proxies: a document's status can change at any moment.
"""

import time

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from documents import credentials, verification
from institutions.keys import jwks
from institutions.models import Institution
from registry.env import parse_rate
from registry.errors import ValidationFailed


def client_ip(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a proxy
    # we trust rewrites it, and the deployment puts gunicorn behind one that sets
    # REMOTE_ADDR itself.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def verify_rate_limited(request) -> bool:
    """Count one verification query for the client; True when over the limit.

    A sliding window over the shared cache (Redis in production): the count of
    the current fixed window plus the previous window's count weighted by how
    much of it the sliding window still covers. Unlike a bare fixed window, a
    client cannot make twice the limit by straddling a window's end. One atomic
    increment and one read per query; each window's key expires by itself.
    """
    limit, period = parse_rate(settings.VERIFY_RATE_LIMIT)
    now = time.time()
    window = int(now // period)
    prefix = f"verify-rate:{client_ip(request)}:{limit}/{period}:"
    key = f"{prefix}{window}"
    cache.add(key, 0, timeout=2 * period + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=2 * period + 1)
        count = 1
    previous = cache.get(f"{prefix}{window - 1}", 0)
    elapsed = (now - window * period) / period
    return count + previous * (1 - elapsed) > limit


# How the limit and the wait read for each period parse_rate knows.
_PERIOD_TEXTS = {
    1: (_("%(n)s a second"), _("a second")),
    60: (_("%(n)s a minute"), _("a minute")),
    3600: (_("%(n)s an hour"), _("an hour")),
}


def _limited(request):
    limit, period = parse_rate(settings.VERIFY_RATE_LIMIT)
    rate, wait = _PERIOD_TEXTS[period]
    context = {"rate": rate % {"n": limit}, "wait": wait}
    response = render(request, "verify/limited.html", context, status=429)
    response["Retry-After"] = str(period)
    return response


class VerifyDetailsForm(forms.Form):
    number = forms.CharField(label=_("Document number"), max_length=30)
    series = forms.CharField(label=_("Series (if any)"), max_length=30, required=False)
    last_name = forms.CharField(label=_("Holder's surname"), max_length=100)
    birth_date = forms.DateField(
        label=_("Holder's birth date"),
        input_formats=["%Y-%m-%d", "%d.%m.%Y"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class VerifyFileForm(forms.Form):
    file = forms.FileField(
        label=_("Signed document file (JSON)"),
        help_text=_("The signed form of the document, as the registry's API returns it."),
    )


def _result(request, result: verification.Verification):
    return render(request, "verify/result.html", {"result": result, "statuses": verification.VerificationStatus})


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def verify(request):
    """Show the verification forms; on POST verify by details or by uploaded signed file."""
    details_form, file_form = VerifyDetailsForm(), VerifyFileForm()
    if request.method == "POST":
        if verify_rate_limited(request):
            return _limited(request)
        if "file" in request.FILES:
            file_form = VerifyFileForm(request.POST, request.FILES)
            if file_form.is_valid():
                upload = file_form.cleaned_data["file"]
                try:
                    if upload.size > verification.MAX_SIGNED_FILE_BYTES:
                        raise ValidationFailed.for_field("file", _("The file is too large for a signed document."))
                    form = verification.parse_signed_form(upload.read())
                except ValidationFailed as exc:
                    file_form.add_error("file", exc.errors.get("file", [exc.message]))
                else:
                    return _result(request, verification.verify_signed_form(form=form))
        else:
            details_form = VerifyDetailsForm(request.POST)
            if details_form.is_valid():
                data = details_form.cleaned_data
                return _result(
                    request,
                    verification.verify_by_details(
                        number=data["number"],
                        series=data["series"],
                        last_name=data["last_name"],
                        birth_date=data["birth_date"],
                    ),
                )
    return render(request, "verify/form.html", {"details_form": details_form, "file_form": file_form})


@never_cache
@require_safe
def verify_code(request, code: str):
    """The QR target: the verdict for one verification code."""
    if verify_rate_limited(request):
        return _limited(request)
    return _result(request, verification.verify_by_code(code=code))


def _json(data, *, max_age: int = 60, content_type: str = "application/json"):
    response = JsonResponse(data, content_type=content_type, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = f"public, max-age={max_age}"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_safe
def jwks_view(request):
    """Every key that ever signed a document, with its validity (CONTRACTS, JWKS)."""
    return _json(jwks(), content_type="application/jwk-set+json")


@require_safe
def registry_did_view(request):
    """The registry's did:web document: the key that signs the status list."""
    return _json(credentials.registry_did_document(), content_type="application/did+ld+json")


@require_safe
def institution_did_view(request, inn: str):
    """An institution's did:web document: every key it ever had, as Multikey."""
    institution = get_object_or_404(Institution, inn=inn)
    return _json(credentials.did_document(institution), content_type="application/did+ld+json")


@require_safe
def status_list_view(request):
    """The registry's signed Bitstring Status List credential (revocation)."""
    try:
        credential = credentials.status_list_credential()
    except credentials.ContextNotAllowed:  # pragma: no cover - the contexts ship with the code
        raise Http404 from None
    return _json(credential, content_type="application/vc+ld+json")
