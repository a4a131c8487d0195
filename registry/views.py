from django.conf import settings
from django.db import connection
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.http import require_safe


@require_safe
def home(request):
    """Tell each kind of visitor where to go: staff, operators, verifiers, partners."""
    return render(request, "registry/home.html")


@require_safe
def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def server_error(request):
    """The 500 page: the portal's look and the demo banner, nothing from the database.

    Django's own handler renders the template without any context, which would drop
    the demo banner; the request's context processors are not run either, since the
    failure may be in the database or the session they read.
    """
    body = loader.render_to_string("500.html", {"DEMO_MODE": settings.DEMO_MODE})
    return HttpResponseServerError(body)
