"""The admin and the API docs work in a real browser under the Content-Security-Policy."""

import pytest
from django_otp.oath import totp

from registry.otp import totp_enrol

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VIOLATION_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(
  e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
"""


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context()
        context.add_init_script(VIOLATION_WATCH)
        page = context.new_page()
        messages = []
        page.on("console", lambda m: messages.append(m.text))
        page.messages = messages
        yield page
        browser.close()


def violations(page) -> list[str]:
    found = page.evaluate("window.__cspViolations")
    found += [m for m in page.messages if "Content Security Policy" in m]
    return found


def test_swagger_ui_renders_the_schema_under_the_policy(page, live_server):
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "registry" in page.inner_text(".swagger-ui .info .title").lower()
    assert violations(page) == []


@pytest.fixture
def operator_device(django_user_model):
    # Made before the browser starts: Playwright's event loop forbids the ORM in its thread.
    user = django_user_model.objects.create_superuser("root", password="correct-horse-battery-staple")
    totp_enrol(user)
    return user.totpdevice_set.get()


def test_admin_works_with_both_factors_under_the_policy(operator_device, page, live_server):
    device, user = operator_device, operator_device.user
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "correct-horse-battery-staple")
    page.fill("#id_otp_token", f"{totp(device.bin_key):06d}")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    assert page.url.rstrip("/").endswith("/admin")
    # A change form: the admin's own scripts (collapse, calendar, related widgets).
    page.goto(f"{live_server.url}/admin/auth/user/{user.pk}/change/")
    page.wait_for_selector("#user_form")
    page.goto(f"{live_server.url}/admin/auth/user/")
    page.wait_for_selector("#changelist")
    assert violations(page) == []


@pytest.fixture
def signer_with_documents(alice_actor):
    # Made before the browser starts (see operator_device).
    from documents import services
    from tests.security.conftest import certificate_data, graduate_data

    graduate = services.graduate_create(actor=alice_actor, data=graduate_data())
    draft = services.document_create_draft(actor=alice_actor, graduate=graduate, data=certificate_data())
    return alice_actor.user, graduate, draft


def test_cabinet_pages_run_their_scripts_under_the_policy(signer_with_documents, page, live_server):
    from tests.factories import PASSWORD

    user, graduate, draft = signer_with_documents
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/cabinet/**")
    for path in [
        "/cabinet/",
        "/cabinet/graduates/",
        f"/cabinet/graduates/{graduate.pk}/",
        f"/cabinet/graduates/{graduate.pk}/documents/new/",
        f"/cabinet/documents/{draft.pk}/",
        f"/cabinet/documents/{draft.pk}/edit/",
        f"/cabinet/documents/{draft.pk}/print/",
        "/cabinet/imports/",
        "/verify/",
    ]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
    # The document form's script switches fields by kind.
    page.goto(f"{live_server.url}/cabinet/graduates/{graduate.pk}/documents/new/")
    options = page.eval_on_selector_all("#id_kind option", "els => els.map(e => e.value)")
    for value in options:
        page.select_option("#id_kind", value)
    assert violations(page) == []
