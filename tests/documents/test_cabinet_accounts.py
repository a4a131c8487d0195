"""Logging in, out, changing the password and choosing the institution to act for."""

import pytest
from django.urls import reverse

from documents.cabinet_context import SESSION_KEY
from institutions.models import Membership
from tests.documents.cabinet_support import login
from tests.factories import PASSWORD, MembershipFactory, UserFactory


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LANGUAGE_CODE = "en"  # messages are compared in English, whatever the translations say


def test_login_leads_to_the_cabinet(client, alice, school):
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("cabinet:home")
    home = client.get(response.url)
    assert home.status_code == 200 and school.short_name in home.content.decode()


def test_login_with_a_wrong_password_is_refused(client, alice):
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_anonymous_visitor_is_sent_to_login(client, school):
    response = client.get(reverse("cabinet:documents"))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


def test_logout_needs_post(client, alice):
    login(client, alice)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert client.get(reverse("cabinet:home")).status_code == 302


def test_password_change(client, alice):
    login(client, alice)
    url = reverse("accounts:password_change")
    assert client.get(url).status_code == 200
    refused = client.post(
        url, {"old_password": "wrong", "new_password1": "Nov-Parol-2026!", "new_password2": "Nov-Parol-2026!"}
    )
    assert refused.status_code == 200 and refused.context["form"].errors
    response = client.post(
        url, {"old_password": PASSWORD, "new_password1": "Nov-Parol-2026!", "new_password2": "Nov-Parol-2026!"}
    )
    assert response.status_code == 302 and response.url == reverse("accounts:password_change_done")
    alice.refresh_from_db()
    assert alice.check_password("Nov-Parol-2026!")


def test_user_of_several_institutions_chooses_one(client, alice, school, other_school):
    MembershipFactory(user=alice, institution=other_school, role="clerk")
    login(client, alice)

    response = client.get(reverse("cabinet:documents"))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:choose"))
    page = client.get(response.url)
    assert school.short_name in page.content.decode() and other_school.short_name in page.content.decode()

    chosen = client.post(
        reverse("accounts:choose"), {"institution": other_school.pk, "next": reverse("cabinet:documents")}
    )
    assert chosen.status_code == 302 and chosen.url == reverse("cabinet:documents")
    assert client.session[SESSION_KEY] == other_school.pk
    home = client.get(reverse("cabinet:home"))
    assert home.context["request"].institution == other_school
    assert home.context["request"].membership.role == "clerk"


def test_choosing_an_institution_of_which_one_is_not_a_member_is_refused(client, alice, school, other_school):
    login(client, alice)
    response = client.post(reverse("accounts:choose"), {"institution": other_school.pk})
    assert response.status_code == 200 and response.context["form"].errors
    assert SESSION_KEY not in client.session


def test_choose_ignores_an_offsite_next(client, alice, school):
    login(client, alice)
    response = client.post(reverse("accounts:choose"), {"institution": school.pk, "next": "https://evil.example/"})
    assert response.url == reverse("cabinet:home")


def test_membership_is_rechecked_on_every_request(client, alice, school, other_school):
    MembershipFactory(user=alice, institution=other_school, role="signer")
    login(client, alice)
    client.post(reverse("accounts:choose"), {"institution": other_school.pk})
    assert client.get(reverse("cabinet:home")).status_code == 200

    Membership.objects.filter(user=alice, institution=other_school).delete()

    response = client.get(reverse("cabinet:home"))
    assert response.status_code == 200
    assert response.context["request"].institution == school


def test_user_without_membership_sees_no_cabinet(client, db):
    user = UserFactory(username="nobody")
    login(client, user)
    response = client.get(reverse("cabinet:home"))
    assert response.status_code == 403
