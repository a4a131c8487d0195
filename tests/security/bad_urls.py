"""A project URLconf plus one view that writes on GET: proves the GET walk catches it."""

from django.http import HttpResponse
from django.urls import path

from documents.models import Document
from registry.urls import urlpatterns as project_urlpatterns


def rename_on_get(request, pk):
    Document.objects.filter(pk=pk).update(qualification="changed by a GET")
    return HttpResponse("ok")


urlpatterns = [*project_urlpatterns, path("bad/<int:pk>/rename/", rename_on_get, name="bad_rename")]
