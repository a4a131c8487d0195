"""Response headers that Django's SecurityMiddleware does not set."""

from django.utils.http import http_date

# What django.utils.cache.add_never_cache_headers sets on a response without these
# headers, written at once: it parses and rebuilds Cache-Control, 2% of an API request.
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"

# The portal uses no camera, microphone, location or payment API; saying so stops
# an injected or third-party script from asking for them.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


class SecurityHeadersMiddleware:
    """Add a Permissions-Policy to every response, and keep signed-in pages out of caches.

    Pages shown to a signed-in user hold personal data: `Cache-Control: no-store`
    (unless the view chose its own caching) keeps them out of shared proxies and
    of the browser's back-button cache on a shared computer.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        headers = response.headers
        if user is not None and user.is_authenticated and "Cache-Control" not in headers:
            if "Expires" not in headers:
                headers["Expires"] = http_date()
            headers["Cache-Control"] = NEVER_CACHE
        return response
