"""Logins are throttled: N failures lock the username from that address, and say so."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse

from documents.models import Event
from tests.factories import PASSWORD

LOGIN = "accounts:login"


def attempt(client, username, password, *, url=None, ip="203.0.113.7"):
    return client.post(url or reverse(LOGIN), {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.fixture
def limit():
    assert settings.AXES_ENABLED
    assert 3 <= settings.AXES_FAILURE_LIMIT <= 10
    return settings.AXES_FAILURE_LIMIT


@pytest.mark.django_db
def test_lockout_after_the_configured_number_of_failures(client, alice, limit):
    for _ in range(limit - 1):
        response = attempt(client, "alice", "wrong")
        assert response.status_code == 200  # the form again, with its error
    response = attempt(client, "alice", "wrong")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert "demo-banner" in page or not settings.DEMO_MODE

    # Locked: even the right password is refused, and no session is opened.
    response = attempt(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_lockout_is_recorded_as_an_event_without_personal_data(client, alice, limit):
    for _ in range(limit):
        attempt(client, "alice", "wrong")
    event = Event.objects.get(action="login_locked_out")
    assert event.actor_label == "system:axes"
    assert event.object_type == "user"
    assert event.object_id == alice.pk
    assert event.chain == "registry"
    assert "203.0.113.7" not in str(event.data)
    assert "alice" not in str(event.data)


@pytest.mark.django_db
def test_lockout_of_an_unknown_username_is_recorded_without_an_id(client, limit):
    for _ in range(limit):
        attempt(client, "nobody-by-this-name", "wrong")
    assert Event.objects.get(action="login_locked_out").object_id is None


@pytest.mark.django_db
def test_lockout_holds_one_username_from_one_address_only(client, alice, bob, limit):
    for _ in range(limit):
        attempt(client, "alice", "wrong")
    # Bob at the same address, and Alice from her office, still log in.
    assert attempt(client, "bob", PASSWORD).status_code == 302
    client.logout()
    assert attempt(client, "alice", PASSWORD, ip="198.51.100.20").status_code == 302


@pytest.mark.django_db
def test_lockout_ends_after_the_cool_off(client, alice, limit):
    for _ in range(limit):
        attempt(client, "alice", "wrong")
    assert attempt(client, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time - settings.AXES_COOLOFF_TIME)
    assert attempt(client, "alice", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_success_resets_the_failure_count(client, alice, limit):
    for _ in range(limit - 1):
        attempt(client, "alice", "wrong")
    assert attempt(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(limit - 1):
        assert attempt(client, "alice", "wrong").status_code == 200


@pytest.mark.django_db
def test_admin_login_is_throttled_too(client, limit, django_user_model):
    django_user_model.objects.create_user("operator", password=PASSWORD, is_staff=True)
    url = reverse("admin:login")
    for _ in range(limit):
        response = attempt(client, "operator", "wrong", url=url)
    assert response.status_code == 429


def test_test_client_login_without_a_request_still_works(client, alice):
    # The axes backend steps aside when there is no request (in-process code only).
    assert client.login(username="alice", password=PASSWORD)
