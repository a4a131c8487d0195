import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import translation

from documents import services
from documents.models import Delivery, Document, DocumentStatus, Event
from documents.signing import canonicalize
from registry.errors import Conflict, NotAllowed, ValidationFailed
from tests.factories import DocumentFactory, GraduateFactory, make_snils

pytestmark = pytest.mark.django_db


def graduate_data(**over):
    base = dict(
        last_name="Иванов",
        first_name="Иван",
        middle_name="Иванович",
        birth_date=dt.date(2007, 3, 1),
        snils=make_snils(1),
    )
    base.update(over)
    return services.GraduateData(**base)


def certificate_data(**over):
    base = dict(
        kind="secondary_general_certificate",
        number="12345678901234",
        registration_number="R-1",
        issued_on=dt.date.today() - dt.timedelta(days=1),
        grades=[{"subject": "Математика", "mark": "5"}],
    )
    base.update(over)
    return services.DocumentData(**base)


def test_signer_issues_a_draft_signed_with_outbox_row(alice_actor):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data())
    draft = services.document_create_draft(actor=alice_actor, graduate=graduate, data=certificate_data())
    issued = services.document_issue(actor=alice_actor, document=draft)
    issued.refresh_from_db()
    assert issued.status == DocumentStatus.ISSUED
    assert issued.experiment is not None and issued.signed_payload["legal_force"] is False
    assert issued.signature and issued.signing_key.institution_id == issued.institution_id
    assert Delivery.objects.filter(document=issued, action="publish").count() == 1
    assert "snils" not in canonicalize(issued.signed_payload).decode()
    assert Event.objects.filter(object_type="document", object_id=issued.pk, action="document.issued").exists()


def test_clerk_cannot_issue(bob_actor, school):
    draft = DocumentFactory(graduate=GraduateFactory(institution=school))
    with pytest.raises(NotAllowed):
        services.document_issue(actor=bob_actor, document=draft)
    draft.refresh_from_db()
    assert draft.status == DocumentStatus.DRAFT


def test_other_institution_cannot_touch_a_document(charlie_actor, school):
    draft = DocumentFactory(graduate=GraduateFactory(institution=school))
    with pytest.raises(NotAllowed):
        services.document_issue(actor=charlie_actor, document=draft)


def test_duplicate_number_is_a_conflict(alice_actor):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data())
    services.document_create_draft(actor=alice_actor, graduate=graduate, data=certificate_data())
    with pytest.raises(Conflict) as exc:
        services.document_create_draft(
            actor=alice_actor, graduate=graduate, data=certificate_data(registration_number="R-2")
        )
    assert "number" in exc.value.errors
    assert Document.objects.count() == 1


def test_duplicate_number_fails_in_the_database(school):
    first = DocumentFactory(graduate=GraduateFactory(institution=school))
    with pytest.raises(IntegrityError), transaction.atomic():
        DocumentFactory(graduate=first.graduate, number=first.number, registration_number="other")


def test_registration_number_equal_to_number_fails_in_the_database(school):
    with pytest.raises(IntegrityError), transaction.atomic():
        DocumentFactory(
            graduate=GraduateFactory(institution=school), number="11111111111111", registration_number="11111111111111"
        )


def test_same_snils_twice_is_refused(alice_actor):
    services.graduate_create(actor=alice_actor, data=graduate_data())
    with pytest.raises(Conflict):
        services.graduate_create(actor=alice_actor, data=graduate_data(last_name="Другой"))


def test_school_cannot_issue_a_bachelor_diploma(alice_actor):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data())
    with pytest.raises(ValidationFailed) as exc:
        services.document_create_draft(
            actor=alice_actor,
            graduate=graduate,
            data=certificate_data(
                kind="bachelor_diploma",
                series="123456",
                number="1234567",
                programme_code="09.03.01",
                programme_name="Информатика",
            ),
        )
    assert "kind" in exc.value.errors


def test_annul_and_duplicate(alice_actor):
    graduate = services.graduate_create(actor=alice_actor, data=graduate_data())
    original = services.document_issue(
        actor=alice_actor,
        document=services.document_create_draft(actor=alice_actor, graduate=graduate, data=certificate_data()),
    )
    duplicate = services.document_issue_duplicate(
        actor=alice_actor,
        original=original,
        data=certificate_data(number="12345678900000", registration_number="R-9"),
    )
    original.refresh_from_db()
    assert original.status == DocumentStatus.ANNULLED and original.loss_mark == "lost"
    assert duplicate.replaces_id == original.pk and duplicate.copy_mark == "duplicate"
    assert duplicate.status == DocumentStatus.ISSUED
    services.document_annul(actor=alice_actor, document=duplicate, reason="Ошибка")
    duplicate.refresh_from_db()
    assert duplicate.status == DocumentStatus.ANNULLED
    with pytest.raises(NotAllowed):
        services.document_annul(actor=alice_actor, document=duplicate, reason="again")


def test_document_kind_display_is_the_kinds_label_in_the_active_language():
    document = Document(kind="bachelor_diploma", series="100000", number="1234567")
    with translation.override("en"):
        assert document.get_kind_display() == "Bachelor's diploma"
        assert str(document) == "Bachelor's diploma 100000 1234567"
    assert Document(kind="no_such_kind").get_kind_display() == "no_such_kind"
