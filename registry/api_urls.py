"""The partner API, version 1, plus its OpenAPI schema and interactive docs.

The docs page loads Swagger UI from drf-spectacular-sidecar's static files (no CDN);
templates/drf_spectacular/swagger_ui.html gives its inline start-up code the CSP nonce.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from documents.api import DocumentViewSet, VerifyView
from institutions.api import InstitutionViewSet
from registry.api.errors import not_found_view

router = SimpleRouter()
router.register("documents", DocumentViewSet, basename="api-document")
router.register("institutions", InstitutionViewSet, basename="api-institution")

urlpatterns = [
    path("verify/", VerifyView.as_view(), name="api-verify"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
    # Anything else under /api/v1/ answers in the API's error shape, not an HTML page.
    re_path(r"^.*$", not_found_view),
]
