"""Public URLs (no login): verification, keys, DIDs and the status list."""

from django.urls import path

from documents import public_views

urlpatterns = [
    path("verify/", public_views.verify, name="verify"),
    path("verify/<str:code>/", public_views.verify_code, name="verify-code"),
    path(".well-known/jwks.json", public_views.jwks_view, name="jwks"),
    path(".well-known/did.json", public_views.registry_did_view, name="did-registry"),
    path("institutions/<str:inn>/did.json", public_views.institution_did_view, name="did-institution"),
    path("credentials/status/revocation", public_views.status_list_view, name="status-list"),
]
