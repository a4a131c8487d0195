"""The portal's URLs plus `/bench/ping/`: a JSON view doing nothing, served by the same server.

It goes through the same middleware as every page, so the verification row compares
the verify API with the cheapest possible response of the same stack.
"""

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def ping(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("bench/ping/", ping),
    path("", include("registry.urls")),
]
