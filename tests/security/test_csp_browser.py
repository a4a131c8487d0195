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
