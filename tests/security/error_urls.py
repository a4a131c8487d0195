"""The project's URLconf plus views that fail, to render the error pages."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.urls import path

from registry.urls import handler500
from registry.urls import urlpatterns as project_urlpatterns

__all__ = ["handler500", "urlpatterns"]


def refuse(request):
    raise PermissionDenied


def suspicious(request):
    raise SuspiciousOperation("a malformed request")


def crash(request):
    raise RuntimeError("boom")


urlpatterns = [
    *project_urlpatterns,
    path("test-errors/403/", refuse),
    path("test-errors/400/", suspicious),
    path("test-errors/500/", crash),
]
