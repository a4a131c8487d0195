"""seed_demo: the demo data of CONTRACTS.md, idempotent, with working logins."""

import datetime as dt
import io
from base64 import b32encode

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from documents.history import history_verify
from documents.models import Delivery, DeliveryAction, Document, DocumentStatus, Event, Graduate
from documents.pii import snils_lookup_hash
from documents.signing import signature_is_valid
from documents.validators import snils_is_valid
from documents.verification import verify_by_code
from experiment.models import Experiment, Participation
from experiment.services import forming_rule
from institutions.models import Institution, Membership
from institutions.validators import inn_is_valid, kpp_is_valid, ogrn_is_valid
from registry import demo_data

TARGETS = {"school": 277, "college": 260, "university": 61, "additional": 225}
# The seed stores password hashes; a fast hasher keeps these tests quick without
# changing what is checked (the same hasher sets and checks).
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seed once for the module inside a transaction rolled back at its end.

    Each test runs in a savepoint of it (pytest-django's `db`), as Django's
    setUpTestData does, so nothing leaks into other modules. The module-scoped seed
    runs before the per-test English default (conftest), so it asks for English itself.
    """
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS, LANGUAGE_CODE="en"):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            out = io.StringIO()
            call_command("seed_demo", stdout=out)
            yield out.getvalue()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _snapshot():
    return {
        model.__name__: model.objects.count()
        for model in (
            Institution,
            Membership,
            Participation,
            Experiment,
            Graduate,
            Document,
            Delivery,
            Event,
            TOTPDevice,
        )
    } | {"users": get_user_model().objects.count()}


def test_institutions_by_kind_match_the_2024_targets(seeded, db):
    counts = dict(Institution.objects.values_list("kind").annotate(n=Count("id")))
    assert counts == TARGETS
    assert Institution.objects.count() == 823


def test_2024_participants_are_277_260_61_225(seeded, db):
    participation = Participation.objects.filter(experiment__year=2024)
    assert dict(participation.values_list("institution__kind").annotate(n=Count("id"))) == TARGETS


def test_every_ownership_type_and_valid_identifiers(seeded, db):
    for kind in TARGETS:
        ownerships = set(Institution.objects.filter(kind=kind).values_list("ownership", flat=True))
        assert ownerships == {"federal", "regional", "municipal", "private"}, kind
    for inn, ogrn, kpp in Institution.objects.values_list("inn", "ogrn", "kpp"):
        assert inn_is_valid(inn) and ogrn_is_valid(ogrn) and kpp_is_valid(kpp)
    assert Institution.objects.values("region_code").distinct().count() > 20


def test_current_year_experiment_has_the_2024_calendar_and_allows_forming(seeded, db):
    today = timezone.localdate()
    experiment = Experiment.objects.get(year=today.year)
    stages = list(experiment.stages.order_by("number"))
    assert [s.number for s in stages] == [1, 2, 3]
    assert stages[1].starts_on == dt.date(today.year, 3, 15)
    assert stages[1].ends_on == stages[0].ends_on == dt.date(today.year, 9, 30)
    assert (stages[2].starts_on, stages[2].ends_on) == (dt.date(today.year, 10, 1), dt.date(today.year, 12, 31))
    assert experiment.purge_on == dt.date(today.year + 1, 1, 1)
    school = Institution.objects.get(inn="7701000019")
    rule = forming_rule(institution=school, on=today)
    assert rule.allowed and rule.experiment == experiment


def test_before_march_15_the_first_stage_starts_on_1_january():
    stages = demo_data.experiment_calendar(2031, today=dt.date(2031, 2, 1))
    assert stages[0].starts_on == dt.date(2031, 1, 1) and stages[0].allows_forming
    later = demo_data.experiment_calendar(2031, today=dt.date(2031, 4, 1))
    assert later[0].starts_on == dt.date(2031, 3, 15)


def test_seeded_before_march_the_demo_experiment_can_form_from_1_january(seeded, db):
    later = dt.date(timezone.localdate().year + 1, 2, 1)
    with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        demo_data.seed(today=later)
    experiment = Experiment.objects.get(year=later.year)
    assert experiment.starts_on == dt.date(later.year, 1, 1)
    school = Institution.objects.get(inn="7701000019")
    rule = forming_rule(institution=school, on=later)
    assert rule.allowed and rule.experiment == experiment
    regular = Institution.objects.get(inn="7701000065")
    assert forming_rule(institution=regular, on=later).experiment is None


def test_regular_school_is_outside_the_current_experiment_with_regular_documents(seeded, db):
    regular = Institution.objects.get(inn="7701000065")
    assert regular.kind == "school"
    assert not Participation.objects.filter(institution=regular, experiment__year=timezone.localdate().year).exists()
    issued = Document.objects.filter(institution=regular).exclude(status=DocumentStatus.DRAFT)
    assert issued.exists()
    assert not issued.filter(experiment__isnull=False).exists()
    assert Membership.objects.get(user__username="regular.signer").institution == regular


def test_fixed_logins_are_at_their_institutions(seeded, db):
    for login in demo_data.LOGINS:
        user = get_user_model().objects.get(username=login.username)
        if login.role == "operator":
            assert user.is_staff and not user.is_superuser
            assert user.groups.filter(name="Ministry operators").exists()
            assert not user.memberships.exists()
        else:
            assert not user.is_staff and not user.is_superuser
            membership = user.memberships.get()
            assert (membership.institution.inn, membership.role) == (login.inn, login.role)
    assert Institution.objects.get(inn="7701000033").kind == "college"
    assert Institution.objects.get(inn="7701000040").kind == "university"
    assert Institution.objects.get(inn="7701000058").kind == "additional"


@override_settings(PASSWORD_HASHERS=FAST_HASHERS)
def test_every_demo_login_can_log_in(seeded, client):
    for login in demo_data.LOGINS:
        assert client.login(username=login.username, password="registry-demo"), login.username
        client.logout()


def test_documents_in_several_states_really_signed_and_delivered(seeded, db):
    documents = Document.objects.all()
    assert 2000 <= documents.count() <= 6000
    statuses = set(documents.values_list("status", flat=True))
    assert statuses == {DocumentStatus.DRAFT, DocumentStatus.ISSUED, DocumentStatus.ANNULLED}
    duplicates = documents.filter(copy_mark="duplicate")
    assert duplicates.exists()
    assert all(d.replaces.status == DocumentStatus.ANNULLED for d in duplicates.select_related("replaces")[:20])
    signed = documents.exclude(status=DocumentStatus.DRAFT).select_related("signing_key")
    for document in signed.order_by("?")[:200]:
        assert document.signed_payload["id"] == document.pk
        assert signature_is_valid(document.signed_payload, document.signature, document.signing_key)
        assert document.signing_key.institution_id == document.institution_id
        assert document.signing_key.not_before <= document.signed_at
        assert document.status_list_index is not None
    published = set(Delivery.objects.filter(action=DeliveryAction.PUBLISH).values_list("document_id", flat=True))
    assert published == set(signed.values_list("id", flat=True))
    withdrawn = set(Delivery.objects.filter(action=DeliveryAction.WITHDRAW).values_list("document_id", flat=True))
    assert withdrawn == set(documents.filter(status=DocumentStatus.ANNULLED).values_list("id", flat=True))
    assert Event.objects.filter(action="document.issued").count() == signed.count()


def test_seeded_documents_pass_public_verification_and_history_checks(seeded, db):
    def first(**filters):
        return Document.objects.filter(**filters).order_by("pk").first()

    assert verify_by_code(code=first(status=DocumentStatus.ISSUED).verification_code).status == "valid"
    annulled = first(status=DocumentStatus.ANNULLED, replacements__isnull=True)
    assert verify_by_code(code=annulled.verification_code).status == "annulled"
    replaced = first(status=DocumentStatus.ANNULLED, replacements__isnull=False)
    assert verify_by_code(code=replaced.verification_code).status == "replaced"
    regular = first(institution__inn="7701000065", status=DocumentStatus.ISSUED)
    assert verify_by_code(code=regular.verification_code).status == "valid"
    reports = history_verify()
    assert reports and all(report.fault is None for report in reports)


def test_graduates_have_encrypted_snils_and_lookup_hash(seeded, db):
    for graduate in Graduate.objects.order_by("?")[:50]:
        snils = graduate.snils
        assert snils_is_valid(snils)
        assert snils.encode() not in bytes(graduate.snils_encrypted)
        assert graduate.snils_hash == snils_lookup_hash(snils)


def test_second_run_changes_nothing_and_prints_the_same_logins(seeded, db):
    before = _snapshot()
    out = io.StringIO()
    with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        call_command("seed_demo", stdout=out)
    assert _snapshot() == before
    assert out.getvalue() == seeded


def test_output_lists_every_login_and_the_password(seeded):
    for login in demo_data.LOGINS:
        assert login.username in seeded
    assert "registry-demo" in seeded
    assert "7701000065" in seeded


def test_operator_gets_the_demo_totp_device_whose_secret_is_printed(seeded, db):
    operator = get_user_model().objects.get(username="operator")
    device = TOTPDevice.objects.get(user=operator)
    assert device.confirmed
    secret = b32encode(device.bin_key).decode()
    assert secret in seeded
    assert not TOTPDevice.objects.exclude(user=operator).exists()


def test_demo_password_is_overridable(seeded, db, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "another-secret-42")
    out = io.StringIO()
    with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        call_command("seed_demo", stdout=out)
        user = get_user_model().objects.get(username="school.signer")
        assert user.check_password("another-secret-42")
        assert not user.check_password("registry-demo")
    assert "another-secret-42" in out.getvalue()


def test_output_prints_the_operators_totp_secret_that_opens_the_admin(seeded, client):
    import re
    from base64 import b32decode

    from django_otp.oath import totp

    match = re.search(r"TOTP secret ([A-Z2-7]+), or scan (otpauth://totp/\S+)", seeded)
    assert match, seeded
    code = f"{totp(b32decode(match.group(1))):06d}"
    with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        response = client.post(
            "/admin/login/?next=/admin/",
            {"username": "operator", "password": demo_data.DEFAULT_PASSWORD, "otp_token": code, "next": "/admin/"},
        )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
