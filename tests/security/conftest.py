"""Fixtures for the security tests: a small populated world and privileged clients."""

import datetime as dt
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client

from documents import services
from tests.factories import make_snils


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    # Logins hash passwords; the production hasher would make these tests slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def graduate_data(**over) -> services.GraduateData:
    base = dict(
        last_name="Иванова",
        first_name="Мария",
        middle_name="Петровна",
        birth_date=dt.date(2007, 3, 1),
        snils=make_snils(7),
    )
    base.update(over)
    return services.GraduateData(**base)


def certificate_data(**over) -> services.DocumentData:
    base = dict(
        kind="secondary_general_certificate",
        number="12345678901234",
        registration_number="R-1",
        issued_on=dt.date.today() - dt.timedelta(days=1),
    )
    base.update(over)
    return services.DocumentData(**base)


@dataclass
class World:
    school: object
    graduate: object
    draft: object
    issued: object
    annulled: object


@pytest.fixture
def world(alice_actor, school, charlie):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data())
    draft = services.document_create_draft(actor=alice_actor, graduate=graduate, data=certificate_data())
    issued = services.document_create_and_issue(
        actor=alice_actor, graduate_data=graduate_data(), data=certificate_data(number="12345678901235")
    )
    annulled = services.document_create_and_issue(
        actor=alice_actor, graduate_data=graduate_data(), data=certificate_data(number="12345678901236")
    )
    annulled = services.document_annul(actor=alice_actor, document=annulled, reason="Ошибка в фамилии")
    return World(school=school, graduate=graduate, draft=draft, issued=issued, annulled=annulled)


@pytest.fixture
def operator_user(db):
    return User.objects.create_superuser("root", password="correct-horse-battery-staple")


@pytest.fixture
def verified_admin_client(operator_user):
    """A client signed in to the admin with both factors (see force_login in tests/conftest.py)."""
    client = Client()
    client.force_login(operator_user)
    return client


@pytest.fixture
def alice_client(alice):
    client = Client()
    client.force_login(alice)
    return client
