"""The cabinet's current institution: which membership a request acts under.

A user may belong to several institutions; the chosen one's id lives in the
session and the membership is re-read on every request, so a membership removed
by an operator takes effect at once. Views decorated with `cabinet_view` get
`request.membership`, `request.institution` and `request.actor`.
"""

import functools
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from institutions.models import Membership
from registry.actors import SIGNER, Actor

SESSION_KEY = "cabinet_institution_id"


def memberships_of(user):
    return Membership.objects.filter(user=user).select_related("institution").order_by("institution__short_name")


def current_membership(request) -> Membership | None:
    """Return the membership the request acts under, or None when the user must choose.

    With exactly one membership it is chosen implicitly; with several, only the one
    stored in the session counts, and only while it still exists.
    """
    chosen = request.session.get(SESSION_KEY)
    if chosen is not None:
        membership = memberships_of(request.user).filter(institution_id=chosen).first()
        if membership is not None:
            return membership
        del request.session[SESSION_KEY]  # removed by an operator since it was chosen
    memberships = list(memberships_of(request.user)[:2])
    return memberships[0] if len(memberships) == 1 else None


def choose_institution(request, institution_id: int) -> Membership | None:
    """Store `institution_id` as the session's institution if the user is a member there."""
    membership = memberships_of(request.user).filter(institution_id=institution_id).first()
    if membership is not None:
        request.session[SESSION_KEY] = membership.institution_id
    return membership


def cabinet_view(view):
    """Require a logged-in staff member acting for one institution."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        membership = current_membership(request)
        if membership is None:
            if not memberships_of(request.user).exists():
                return render(request, "cabinet/no_membership.html", status=403)
            return redirect(f"{reverse('accounts:choose')}?next={quote(request.get_full_path())}")
        request.membership = membership
        request.institution = membership.institution
        request.actor = Actor.staff(user=request.user, institution=membership.institution, role=membership.role)
        request.is_signer = membership.role == SIGNER
        return view(request, *args, **kwargs)

    return wrapper
