from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from registry import views

urlpatterns = [
    # First: partners' requests are most of the traffic, and each pattern before
    # theirs is one more match tried on every request.
    path("api/v1/", include("registry.api_urls")),
    path("", views.home, name="home"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("accounts/", include(("institutions.urls", "accounts"), namespace="accounts")),
    path("cabinet/", include(("documents.urls", "cabinet"), namespace="cabinet")),
    path("", include("documents.public_urls")),
    path("health/", views.health, name="health"),
]

if settings.GOSUSLUGI_EMULATOR:
    urlpatterns.append(path("gosuslugi-emulator/", include("documents.emulator_urls")))

# 400, 403 (and the CSRF failure page) and 404 use Django's handlers with the
# portal's templates; the 500 page needs its own view (see registry/views.py).
handler500 = "registry.views.server_error"
