"""The admin needs a password and a TOTP code; the demo operator's secret is printed."""

import io
from base64 import b32decode
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry.otp import demo_totp_key, ensure_demo_totp, totp_enrol
from tests.factories import PASSWORD


@pytest.fixture
def operator(db):
    return User.objects.create_user("operator", password=PASSWORD, is_staff=True)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", password=PASSWORD)


def code_for(device: TOTPDevice, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits, drift=drift):0{device.digits}d}"


def admin_login(client, username, token=""):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": PASSWORD, "otp_token": token, "next": reverse("admin:index")},
    )


def test_staff_with_a_password_only_gets_the_token_form_not_the_index(client, operator):
    totp_enrol(operator)
    response = admin_login(client, "operator")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="otp_token"' in page
    assert "six-digit code" in page
    assert client.get(reverse("admin:index")).status_code == 302


@pytest.mark.parametrize("who", ["operator", "superuser"])
def test_staff_and_superusers_reach_the_admin_with_a_valid_code(client, request, who):
    user = request.getfixturevalue(who)
    totp_enrol(user)
    device = TOTPDevice.objects.get(user=user)
    response = admin_login(client, user.username, code_for(device))
    assert response.status_code == 302
    assert response.headers["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200


def test_wrong_or_replayed_code_is_refused(client, operator):
    totp_enrol(operator)
    device = TOTPDevice.objects.get(user=operator)
    wrong = f"{(int(code_for(device)) + 1) % 10**6:06d}"
    assert admin_login(client, "operator", wrong).status_code == 200
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    code = code_for(device)
    assert admin_login(client, "operator", code).status_code == 302
    client.logout()
    # The same code again, within its 30 seconds, is a replay.
    assert admin_login(client, "operator", code).status_code == 200


def test_force_login_in_tests_passes_both_factors(client, operator):
    client.force_login(operator)
    assert client.get(reverse("admin:index")).status_code == 200


def test_staff_without_a_device_cannot_reach_the_admin(client, operator):
    assert admin_login(client, "operator", "123456").status_code == 200
    assert client.get(reverse("admin:index")).status_code == 302


def test_signing_in_elsewhere_with_a_password_does_not_open_the_admin(client, superuser):
    totp_enrol(superuser)
    response = client.post(reverse("accounts:login"), {"username": "root", "password": PASSWORD})
    assert response.status_code == 302
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("admin:login"))
    assert 'name="otp_token"' in client.get(response.headers["Location"]).content.decode()


def test_admin_views_refuse_an_unverified_staff_session(client, superuser):
    client.post(reverse("accounts:login"), {"username": "root", "password": PASSWORD})
    assert "_auth_user_id" in client.session
    for url in [reverse("admin:index"), reverse("admin:auth_user_changelist")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith(reverse("admin:login"))


def test_demo_totp_is_stable_and_usable(client, operator):
    secret, uri = ensure_demo_totp(operator, password="registry-demo")
    again, again_uri = ensure_demo_totp(operator, password="registry-demo")
    assert (secret, uri) == (again, again_uri)
    assert TOTPDevice.objects.filter(user=operator).count() == 1
    assert b32decode(secret) == demo_totp_key("registry-demo")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert parse_qs(parsed.query)["secret"] == [secret]
    assert "operator" in parsed.path
    # An authenticator app fed the printed secret produces codes the admin accepts.
    code = f"{totp(b32decode(secret)):06d}"
    assert admin_login(client, "operator", code).status_code == 302


def test_demo_totp_follows_the_demo_password(operator, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "another-demo-password")
    secret, _ = ensure_demo_totp(operator)
    assert b32decode(secret) == demo_totp_key("another-demo-password")
    assert demo_totp_key("another-demo-password") != demo_totp_key("registry-demo")


def test_totp_enrol_command_prints_a_fresh_secret_once(operator):
    out = io.StringIO()
    call_command("totp_enrol", "operator", stdout=out)
    first = out.getvalue()
    assert "otpauth://totp/" in first
    out = io.StringIO()
    call_command("totp_enrol", "operator", stdout=out)
    assert out.getvalue() != first
    assert TOTPDevice.objects.filter(user=operator).count() == 1


def test_totp_enrol_refuses_non_staff(alice):
    with pytest.raises(CommandError):
        call_command("totp_enrol", "alice", stdout=io.StringIO())
