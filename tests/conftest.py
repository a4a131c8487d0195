"""Fixtures and personas shared by every test.

Personas: Alice signs at her school, Bob is a clerk at the same school, Charlie
signs at another school and must see nothing of Alice's.

Tests marked `postgres`, `redis` or `browser` skip with a reason when the service is
absent — except in CI, where REGISTRY_REQUIRE_SERVICES=1 turns every skip into a
failure so a missing service cannot pass unnoticed.
"""

import os
import shutil

import pytest
from django.conf import settings

from registry.actors import Actor
from tests.factories import (
    ExperimentFactory,
    InstitutionFactory,
    MembershipFactory,
    ParticipationFactory,
    UserFactory,
)

REQUIRE_SERVICES = os.environ.get("REGISTRY_REQUIRE_SERVICES") == "1"


def _redis_up() -> bool:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis"):
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # Tests on the Redis broker start Celery workers or share emulator state in Redis:
    # run them in the serial pass of `make test`, never beside each other under xdist.
    for item in items:
        if item.get_closest_marker("redis"):
            item.add_marker(pytest.mark.serial)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and not settings.USING_POSTGRES:
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://…")
    if item.get_closest_marker("redis") and not _redis_up():
        pytest.skip("needs Redis: set CELERY_BROKER_URL=redis://…")
    if item.get_closest_marker("browser") and not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, where every service must be present: {reason}"


@pytest.fixture(autouse=True)
def process_cache_cleared():
    """Empty the in-process cache after each test (the SQLite runs use LocMemCache).

    Rolled-back tests reuse row ids on SQLite, so a figure cached under an id (the
    dashboard's, say) would otherwise leak into the next test that gets the same id.
    A shared Redis cache is left alone: parallel test processes use it at once.
    """
    yield
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


@pytest.fixture(autouse=True)
def english_unless_asked(settings):
    """Run every test in English, the source language, unless the request asks for another.

    The portal falls back to Russian (LANGUAGE_CODE = "ru"); tests compare messages with
    the English source strings, so rewording a translation never breaks them. Changing
    the setting also resets the thread's active language (Django's setting_changed
    handler), so a test that browsed in Russian leaves nothing behind. The Russian UI
    itself is tested in tests/registry/test_i18n.py, which restores the real default.
    """
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def force_login_passes_both_factors(monkeypatch):
    """Make the test client's `force_login` log staff in with both factors.

    `force_login` skips the login form, the password included; for staff it skips
    the admin's TOTP code too (a confirmed device is made when the user has none),
    so admin tests reach the admin as an operator would after a full login. Tests
    of the second factor itself log in through the real forms.
    """
    from django.test.client import ClientMixin
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    original = ClientMixin.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        if user.is_staff or user.is_superuser:
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
            if device is None:
                device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()

    monkeypatch.setattr(ClientMixin, "force_login", force_login)


def login_to_admin(client, user):
    """Sign `user` in to the admin with both factors (see force_login_passes_both_factors)."""
    client.force_login(user)
    return client


@pytest.fixture
def experiment(db):
    return ExperimentFactory()


@pytest.fixture
def school(db, experiment):
    institution = InstitutionFactory(short_name="Школа Алисы")
    ParticipationFactory(experiment=experiment, institution=institution)
    return institution


@pytest.fixture
def other_school(db, experiment):
    institution = InstitutionFactory(short_name="Школа Чарли")
    ParticipationFactory(experiment=experiment, institution=institution)
    return institution


@pytest.fixture
def alice(school):
    user = UserFactory(username="alice")
    MembershipFactory(user=user, institution=school, role="signer")
    return user


@pytest.fixture
def bob(school):
    user = UserFactory(username="bob")
    MembershipFactory(user=user, institution=school, role="clerk")
    return user


@pytest.fixture
def charlie(other_school):
    user = UserFactory(username="charlie")
    MembershipFactory(user=user, institution=other_school, role="signer")
    return user


@pytest.fixture
def alice_actor(alice, school):
    return Actor.staff(user=alice, institution=school, role="signer")


@pytest.fixture
def bob_actor(bob, school):
    return Actor.staff(user=bob, institution=school, role="clerk")


@pytest.fixture
def charlie_actor(charlie, other_school):
    return Actor.staff(user=charlie, institution=other_school, role="signer")
