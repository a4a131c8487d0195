"""Hostile input through every way in, and its escaped or neutralised way out.

The corpus (tests/security/hostile.py): script tags, attribute breakers, formula
prefixes, a right-to-left override, a 10,000-character value, a NUL byte. Markup
and formulas are valid text for a name, so they are stored and must come out
escaped (pages) or neutralised (spreadsheets); NUL, direction overrides and
over-long values are refused with a validation message — never a server error
(PostgreSQL would refuse a NUL outright).
"""

import pytest
from django.urls import reverse

from documents import services
from documents.models import Document, Graduate
from registry.errors import ValidationFailed
from tests.factories import make_snils
from tests.security.conftest import certificate_data, graduate_data
from tests.security.hostile import ACCEPTED, ATTRIBUTE_BREAKER, REFUSED, SCRIPT, assert_escaped

pytestmark = pytest.mark.django_db


# --- The shared layer: services refuse what the database would -------------------


@pytest.mark.parametrize("field", ["last_name", "first_name", "middle_name"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_graduate_service_refuses_with_a_field_message(alice_actor, field, case):
    with pytest.raises(ValidationFailed) as caught:
        services.graduate_create(actor=alice_actor, data=graduate_data(**{field: REFUSED[case]}))
    assert field in caught.value.errors
    assert not Graduate.objects.exists()


@pytest.mark.parametrize("field", ["programme_name", "qualification", "series", "registration_number"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_document_service_refuses_with_a_field_message(alice_actor, world, field, case):
    count = Document.objects.count()
    with pytest.raises(ValidationFailed) as caught:
        services.document_create_draft(
            actor=alice_actor,
            graduate=world.graduate,
            data=certificate_data(number="22345678901234", **{field: REFUSED[case]}),
        )
    assert field in caught.value.errors
    assert Document.objects.count() == count


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_grades_with_hostile_text_are_refused(alice_actor, world, case):
    grades = [{"subject": REFUSED[case][:150], "mark": "5"}]
    if case == "long":
        grades = [{"subject": REFUSED[case], "mark": "5"}]
    with pytest.raises(ValidationFailed) as caught:
        services.document_create_draft(
            actor=alice_actor, graduate=world.graduate, data=certificate_data(number="22345678901234", grades=grades)
        )
    assert "grades" in caught.value.errors


@pytest.mark.parametrize("case", ["nul", "rlo"])
def test_annul_reason_with_hostile_text_is_refused(alice_actor, world, case):
    with pytest.raises(ValidationFailed) as caught:
        services.document_annul(actor=alice_actor, document=world.issued, reason=REFUSED[case])
    assert "reason" in caught.value.errors
    world.issued.refresh_from_db()
    assert world.issued.status == "issued"


@pytest.mark.parametrize("value", ACCEPTED)
def test_markup_and_formulas_are_stored_as_typed(alice_actor, value):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data(last_name=value, snils=make_snils(9)))
    graduate.refresh_from_db()
    assert graduate.last_name == value


def test_surrounding_whitespace_is_not_refused(alice_actor):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data(last_name=" Иванова\t"))
    assert graduate.last_name == "Иванова"


# --- Pages: the admin -------------------------------------------------------------


@pytest.fixture
def hostile_document(alice_actor):
    graduate = services.graduate_create(
        actor=alice_actor, data=graduate_data(last_name=SCRIPT, first_name=ATTRIBUTE_BREAKER, snils=make_snils(11))
    )
    return services.document_create_draft(
        actor=alice_actor,
        graduate=graduate,
        data=certificate_data(number="32345678901234", qualification=SCRIPT, registration_number="R-9"),
    )


def admin_url(obj, view="change"):
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[obj.pk])


@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_admin_pages_escape_a_hostile_graduate(verified_admin_client, hostile_document, view):
    from django.contrib import admin

    if Graduate not in admin.site._registry:
        pytest.skip("no Graduate admin on this branch yet")
    response = verified_admin_client.get(admin_url(hostile_document.graduate, view))
    assert response.status_code == 200
    assert_escaped(response.content.decode(), SCRIPT)


def test_admin_changelist_escapes_hostile_values(verified_admin_client, hostile_document):
    from django.contrib import admin

    for model in (Graduate, Document):
        if model not in admin.site._registry:
            continue
        meta = model._meta
        response = verified_admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert response.status_code == 200
        html = response.content.decode()
        for raw in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>"):
            assert raw not in html
