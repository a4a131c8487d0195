"""Production settings, response headers, the Content-Security-Policy, sessions, the demo banner."""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import parse_http_date

from tests.security.pages import csp_directives, csp_problems

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        DEBUG="0",
        REGISTRY_DEMO="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        REGISTRY_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
        ALLOWED_HOSTS="registry.example.org",
        REGISTRY_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="registry.settings",
    )
    env.update(extra)
    return env


def manage(tmp_path, *args, **extra_env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(tmp_path, **extra_env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_production_settings_pass_deploy_check_without_a_warning(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("missing", ["SECRET_KEY", "REGISTRY_MASTER_KEY"])
def test_production_refuses_to_start_without_a_secret(tmp_path, missing):
    result = manage(tmp_path, "check", **{missing: ""})
    assert result.returncode != 0
    assert missing in result.stderr


@pytest.mark.django_db
def test_pages_carry_the_security_headers(client):
    response = client.get(reverse("home"))
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response.headers["Permissions-Policy"]
    directives = csp_directives(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["form-action"] == ["'self'"]


@pytest.mark.django_db
def test_no_page_allows_unsafe_inline_or_eval(client, admin_client):
    for c, url in [(client, reverse("home")), (client, "/api/v1/docs/"), (admin_client, "/admin/login/")]:
        header = c.get(url).headers["Content-Security-Policy"]
        assert "unsafe-inline" not in header
        assert "unsafe-eval" not in header
        assert "*" not in header.replace("'", " ").split()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/verify/", "/admin/login/", "/api/v1/docs/"])
def test_public_pages_have_no_inline_code_outside_the_nonce(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert csp_problems(response) == []


@pytest.mark.django_db
def test_only_the_api_docs_page_gets_a_nonce_and_its_inline_code_uses_it(client):
    assert "nonce-" not in client.get("/").headers["Content-Security-Policy"]
    response = client.get("/api/v1/docs/")
    nonce = [s for s in csp_directives(response)["script-src"] if s.startswith("'nonce-")]
    assert len(nonce) == 1
    assert f'<script nonce="{nonce[0][7:-1]}">' in response.content.decode()


@pytest.mark.django_db
def test_signed_in_pages_are_not_cached(client, alice):
    client.force_login(alice)
    response = client.get(reverse("home"))
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.django_db
def test_signed_in_pages_get_exactly_djangos_never_cache_headers(client, alice):
    client.force_login(alice)
    response = client.get(reverse("home"))
    expected = HttpResponse()
    add_never_cache_headers(expected)
    assert response.headers["Cache-Control"] == expected.headers["Cache-Control"]
    assert abs(parse_http_date(response.headers["Expires"]) - parse_http_date(expected.headers["Expires"])) <= 2


@pytest.mark.django_db
def test_a_page_that_chose_its_own_caching_keeps_it_for_a_signed_in_user(client, alice):
    client.force_login(alice)
    response = client.get("/.well-known/jwks.json")
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert "Expires" not in response.headers


@pytest.mark.django_db
def test_session_expiry_moves_with_each_request_and_ends_after_inactivity(client, alice):
    assert settings.SESSION_SAVE_EVERY_REQUEST
    assert 0 < settings.SESSION_COOKIE_AGE <= 60 * 60
    client.force_login(alice)
    response = client.get(reverse("cabinet:home"))
    assert response.status_code == 200
    assert int(response.cookies[settings.SESSION_COOKIE_NAME]["max-age"]) == settings.SESSION_COOKIE_AGE
    session = Session.objects.get(session_key=client.session.session_key)
    remaining = (session.expire_date - timezone.now()).total_seconds()
    assert settings.SESSION_COOKIE_AGE - 60 < remaining <= settings.SESSION_COOKIE_AGE

    # Inactive for longer than the age: the session is gone.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timezone.timedelta(seconds=1))
    response = client.get(reverse("cabinet:home"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response.headers["Location"]


def test_session_and_csrf_cookies_are_http_only_or_same_site():
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert settings.CSRF_COOKIE_SAMESITE == "Lax"


def test_password_validators_are_on():
    names = {v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS}
    assert {"MinimumLengthValidator", "CommonPasswordValidator", "NumericPasswordValidator"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/verify/", "/admin/login/"])
def test_demo_mode_says_so_on_every_page(client, settings, url):
    banner = "demo-banner"
    settings.DEMO_MODE = True
    assert banner in client.get(url).content.decode()
    settings.DEMO_MODE = False
    assert banner not in client.get(url).content.decode()


ERROR_PAGES = [
    ("/no-such-page/", 404),
    ("/test-errors/403/", 403),
    ("/test-errors/400/", 400),
    ("/test-errors/500/", 500),
]


@pytest.mark.django_db
@pytest.mark.parametrize("demo", [True, False])
@pytest.mark.parametrize(("url", "status"), ERROR_PAGES)
def test_error_pages_are_the_portals_own_under_the_csp(settings, url, status, demo):
    from django.test import Client

    settings.ROOT_URLCONF = "tests.security.error_urls"
    settings.DEBUG = False
    settings.DEMO_MODE = demo
    response = Client(raise_request_exception=False).get(url)
    assert response.status_code == status
    page = response.content.decode()
    assert 'href="/static/css/portal.css"' in page
    assert ("demo-banner" in page) is demo
    assert csp_problems(response) == []


@pytest.mark.django_db
@pytest.mark.parametrize("demo", [True, False])
def test_csrf_failure_page_has_no_inline_style_and_says_what_to_do(settings, alice, demo):
    from django.test import Client

    settings.DEMO_MODE = demo
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 403
    page = response.content.decode()
    assert csp_problems(response) == []
    assert "<style" not in page
    assert ("demo-banner" in page) is demo
    assert "security token" in page or "токен" in page
