"""No GET changes anything: every state change is a POST (CSRF) or a partner's API call.

The test walks the merged project's URL resolver: every named route, with the ids
of real records put into its parameters, is requested with GET by an anonymous
visitor, a signer of the records' institution, a verified ministry operator and a
partner key; the database must be byte-for-byte the same afterwards, and nothing
may crash. Every HTML page met on the way is also checked against the
Content-Security-Policy (no inline code) and for the demo banner.
"""

import pytest
from django.apps import apps
from django.conf import settings

from tests.security.pages import csp_problems
from tests.security.walk import changed_tables, database_fingerprint, routes, urls_for

pytestmark = pytest.mark.django_db

# Routes never requested: none so far. Add one only with the reason.
SKIPPED_ROUTES: dict[str, str] = {}


def is_html_page(response) -> bool:
    return response.headers.get("Content-Type", "").startswith("text/html") and b"<html" in response.content[:2000]


def admin_model_ids(route_name: str) -> list[int]:
    """For an admin route named admin:<app>_<model>_<view>, the ids of that model's rows."""
    rest = route_name.split(":", 1)[1]
    for model in apps.get_models():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if rest.startswith(prefix):
            return list(model._default_manager.order_by("pk").values_list("pk", flat=True)[:3])
    return []


def api_client(plaintext: str):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def get_walk_problems(world, client, alice_client, verified_admin_client, only=None) -> tuple[list[str], int]:
    from institutions.apikeys import api_key_create

    partners = {
        "issue key": api_client(api_key_create(name="IS", scope="issue", institution=world.school)[1]),
        "verify key": api_client(api_key_create(name="Admissions", scope="verify")[1]),
    }
    record_ids = [world.draft.pk, world.issued.pk, world.annulled.pk, world.graduate.pk, world.school.pk]
    words = [world.issued.verification_code, "x"]
    problems, requested = [], 0
    for route in routes():
        if route.name in SKIPPED_ROUTES or (only and route.name not in only):
            continue
        is_admin = route.name.startswith("admin:")
        ids = admin_model_ids(route.name) if is_admin else record_ids
        before = database_fingerprint()
        for url in urls_for(route, ids=ids, words=words):
            if is_admin:
                clients = {"operator": verified_admin_client}
            elif url.startswith("/api/"):
                clients = {"anonymous": client, **partners}
            else:
                clients = {"anonymous": client, "signer": alice_client}
            for who, c in clients.items():
                requested += 1
                response = c.get(url)
                if response.status_code >= 500:
                    problems.append(f"{route.name} {url} as {who}: {response.status_code}")
                elif response.status_code == 200 and is_html_page(response):
                    problems += [f"{url} as {who}: {p}" for p in csp_problems(response)]
                    if settings.DEMO_MODE and "demo-banner" not in response.content.decode():
                        problems.append(f"{url} as {who}: no demo banner")
        changed = changed_tables(before, database_fingerprint())
        if changed:
            problems.append(f"GET {route.name} changed {changed}")
    return problems, requested


def test_no_get_request_changes_the_database(world, client, alice_client, verified_admin_client):
    problems, requested = get_walk_problems(world, client, alice_client, verified_admin_client)
    assert requested > 50  # the walk really covered the project
    assert problems == []


def test_the_walk_catches_a_get_that_writes(world, client, alice_client, verified_admin_client, settings):
    settings.ROOT_URLCONF = "tests.security.bad_urls"
    problems, _ = get_walk_problems(world, client, alice_client, verified_admin_client, only={"bad_rename"})
    assert problems == ["GET bad_rename changed ['documents_document']"]


def test_the_walk_covers_every_feature_mounted():
    names = {route.name for route in routes()}
    assert {
        "home",
        "verify",
        "verify-code",
        "admin:index",
        "accounts:login",
        "cabinet:home",
        "cabinet:document_annul",
        "cabinet:upload",
        "cabinet:export",
        "api-document-list",
        "api-document-annul",
        "api-verify",
    } <= names


# Endpoints that only change state: GET must be refused outright (405), not
# answered with a page. (Form pages such as annul or upload answer GET with
# their form; the walk above proves that changes nothing.)
POST_ONLY = [
    ("cabinet:document_issue", "draft"),
    ("cabinet:document_delete", "draft"),
    ("accounts:logout", None),
    ("admin:logout", None),
    ("set_language", None),
]


@pytest.mark.parametrize(("name", "record"), POST_ONLY)
def test_state_changing_pages_refuse_get(world, alice_client, verified_admin_client, name, record):
    from django.urls import reverse

    url = reverse(name, args=[getattr(world, record).pk] if record else [])
    c = verified_admin_client if name.startswith("admin:") else alice_client
    before = database_fingerprint()
    response = c.get(url)
    assert response.status_code == 405 or (name == "set_language" and response.status_code in (204, 302))
    assert changed_tables(before, database_fingerprint()) == []


def test_api_annul_refuses_get(world):
    from institutions.apikeys import api_key_create

    issuer = api_client(api_key_create(name="IS", scope="issue", institution=world.school)[1])
    response = issuer.get(f"/api/v1/documents/{world.issued.pk}/annul/")
    assert response.status_code == 405
    world.issued.refresh_from_db()
    assert world.issued.status == "issued"


# Machine-to-machine endpoints authenticate each request by a key, not a cookie, so
# a forged cross-site request carries no credentials: CSRF does not apply.
CSRF_EXEMPT_PREFIXES = ("/api/", "/gosuslugi-emulator/")


def test_every_browser_post_needs_the_csrf_token(world, alice):
    from django.test import Client

    forger = Client(enforce_csrf_checks=True)
    forger.force_login(alice)
    record_ids = [world.draft.pk, world.issued.pk, world.graduate.pk]
    unprotected = []
    for route in routes():
        ids = admin_model_ids(route.name) if route.name.startswith("admin:") else record_ids
        for url in urls_for(route, ids=ids, words=[world.issued.verification_code]):
            if url.startswith(CSRF_EXEMPT_PREFIXES):
                continue
            response = forger.post(url, {"reason": "forged", "confirm": "1"})
            if response.status_code != 403:
                unprotected.append(f"{route.name} {url}: {response.status_code}")
    assert unprotected == []
