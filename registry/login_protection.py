"""Login throttling with django-axes: the backend, the lockout page, the lockout event.

After `AXES_FAILURE_LIMIT` failed logins for one username from one address, that
pair is refused for `AXES_COOLOFF_TIME`; each refusal is recorded in the registry's
event chain.
"""

from axes.backends import AxesStandaloneBackend
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django.shortcuts import render

from documents.history import event_record
from registry.actors import Actor


class AxesBackend(AxesStandaloneBackend):
    """Axes' lockout check, skipped when there is no request.

    Every HTTP login path (the cabinet's login view, the admin's) passes the request;
    a call without one comes from code inside the process (the test client's
    `login()`, a shell), which no remote attacker reaches — axes itself would raise
    there instead of answering.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_response(request, original_response=None, credentials=None):
    """Render the friendly lockout page with the HTTP status axes is configured for."""
    cooloff = settings.AXES_COOLOFF_TIME
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": int(cooloff.total_seconds() // 60) if cooloff else None,
    }
    return render(request, "registration/lockout.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)


@receiver(user_locked_out, dispatch_uid="registry_record_lockout")
def record_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    """Record a refused login in the registry's chain.

    The event names the account by id only (events carry no personal data, so the
    address and the typed username stay out of it); an unknown username has no id.
    """
    user_id = None
    if username:
        user_id = (
            get_user_model()
            .objects.filter(**{get_user_model().USERNAME_FIELD: username})
            .values_list("pk", flat=True)
            .first()
        )
    event_record(
        actor=Actor.system("axes"),
        action="login_locked_out",
        object_type="user",
        object_id=user_id,
        data={"failure_limit": settings.AXES_FAILURE_LIMIT},
    )
