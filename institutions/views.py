"""Account pages of the cabinet: choosing the institution to act for."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from documents.cabinet_context import SESSION_KEY, choose_institution, memberships_of
from institutions.forms import ChooseInstitutionForm


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""


@login_required
def choose(request):
    """Show the user's institutions; POST stores the chosen one in the session."""
    memberships = list(memberships_of(request.user))
    form = ChooseInstitutionForm(request.POST or None, memberships=memberships)
    if request.method == "POST" and form.is_valid():
        choose_institution(request, form.cleaned_data["institution"])
        return redirect(_safe_next(request) or "cabinet:home")
    if request.method == "GET" and request.session.get(SESSION_KEY):
        form.initial["institution"] = request.session[SESSION_KEY]
    return render(
        request,
        "registration/choose_institution.html",
        {"form": form, "memberships": memberships, "next": _safe_next(request)},
    )
