"""Documents in the cabinet: drafts, issuing, annulment, duplicates, corrections, print, home."""

import datetime as dt

import pytest
from django.urls import reverse

from documents import services
from documents.models import Delivery, Document, DocumentStatus, Event
from documents.services import document_issue
from registry.errors import NotAllowed
from tests.documents.cabinet_support import login
from tests.factories import (
    DocumentFactory,
    GraduateFactory,
    InstitutionFactory,
    MembershipFactory,
    ParticipationFactory,
    UserFactory,
)

YESTERDAY = dt.date.today() - dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LANGUAGE_CODE = "en"  # messages are compared in English, whatever the translations say


@pytest.fixture
def graduate(school):
    return GraduateFactory(institution=school)


@pytest.fixture
def draft(graduate):
    return DocumentFactory(graduate=graduate, number="77000000000101", registration_number="R-101")


@pytest.fixture
def issued(draft, alice_actor):
    return document_issue(actor=alice_actor, document=draft)


def certificate_data(**changes):
    data = {
        "kind": "secondary_general_certificate",
        "series": "",
        "number": "12345678901234",
        "registration_number": "15-А",
        "issued_on": YESTERDAY.isoformat(),
        "honours": "on",
        "grade_subject": ["Математика", "Физика", ""],
        "grade_mark": ["5", "4", ""],
    }
    return data | changes


# --- Drafts ---------------------------------------------------------------------------


def test_clerk_creates_a_certificate_draft_with_grades(client, bob, graduate):
    login(client, bob)
    url = reverse("cabinet:document_create", args=[graduate.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'id="kind-families"' in page.content.decode() and "<script>" not in page.content.decode()

    response = client.post(url, certificate_data())

    document = Document.objects.get()
    assert response.status_code == 302 and response.url == reverse("cabinet:document", args=[document.pk])
    assert document.status == DocumentStatus.DRAFT and document.honours
    assert document.grades == [{"subject": "Математика", "mark": "5"}, {"subject": "Физика", "mark": "4"}]
    assert Event.objects.filter(object_type="document", object_id=document.pk, action="document.drafted").exists()


def staff_of(kind, experiment, username):
    institution = InstitutionFactory(kind=kind)
    ParticipationFactory(experiment=experiment, institution=institution)
    user = UserFactory(username=username)
    MembershipFactory(user=user, institution=institution, role="clerk")
    return institution, user


def test_college_diploma_form_keeps_programme_and_ignores_grades(client, db, experiment):
    college = InstitutionFactory(kind="college")
    ParticipationFactory(experiment=experiment, institution=college)
    user = UserFactory(username="dean")
    MembershipFactory(user=user, institution=college, role="clerk")
    graduate = GraduateFactory(institution=college)
    login(client, user)
    data = certificate_data(
        kind="vocational_diploma",
        series="123456",
        number="1234567",
        programme_code="09.02.07",
        programme_name="Информационные системы",
        qualification="Программист",
        hours="72",
    )

    response = client.post(reverse("cabinet:document_create", args=[graduate.pk]), data)

    assert response.status_code == 302
    document = Document.objects.get()
    assert (document.programme_code, document.qualification, document.hours) == ("09.02.07", "Программист", None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"number": "123"}, "number"),
        ({"registration_number": "12345678901234"}, "registration_number"),
        ({"kind": "bachelor_diploma"}, "kind"),
        ({"issued_on": (dt.date.today() + dt.timedelta(days=3)).isoformat()}, "issued_on"),
        ({"series": "AB"}, "series"),
    ],
)
def test_invalid_draft_is_refused_next_to_its_field(client, bob, graduate, changes, field):
    login(client, bob)
    response = client.post(reverse("cabinet:document_create", args=[graduate.pk]), certificate_data(**changes))
    assert response.status_code == 200 and field in response.context["form"].errors
    assert not Document.objects.exists()


def test_duplicate_number_is_refused(client, bob, graduate, draft):
    login(client, bob)
    response = client.post(
        reverse("cabinet:document_create", args=[graduate.pk]), certificate_data(number=draft.number)
    )
    assert response.status_code == 200 and "number" in response.context["form"].errors


def test_edit_a_draft(client, bob, draft):
    login(client, bob)
    url = reverse("cabinet:document_edit", args=[draft.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, certificate_data(number="55555555555555"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.number == "55555555555555"


def test_an_issued_document_is_never_edited(client, alice, issued):
    login(client, alice)
    response = client.post(
        reverse("cabinet:document_edit", args=[issued.pk]), certificate_data(number="55555555555555")
    )
    assert response.status_code == 302
    issued.refresh_from_db()
    assert issued.number == "77000000000101"


def test_delete_a_draft_needs_post(client, bob, draft):
    login(client, bob)
    url = reverse("cabinet:document_delete", args=[draft.pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    assert not Document.objects.exists()


# --- Issuing and what follows -------------------------------------------------------


def test_signer_issues_a_draft_which_is_signed_and_queued(client, alice, draft):
    login(client, alice)
    page = client.get(reverse("cabinet:document", args=[draft.pk])).content.decode()
    assert 'id="issue-button"' in page

    response = client.post(reverse("cabinet:document_issue", args=[draft.pk]))

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == DocumentStatus.ISSUED and draft.signature
    assert Delivery.objects.filter(document=draft, action="publish").exists()
    page = client.get(reverse("cabinet:document", args=[draft.pk])).content.decode()
    assert "Signed and issued" in page and "document.issued" not in page
    assert 'id="deliveries"' in page and "Pending" in page


def test_issue_refuses_get(client, alice, draft):
    login(client, alice)
    assert client.get(reverse("cabinet:document_issue", args=[draft.pk])).status_code == 405
    draft.refresh_from_db()
    assert draft.status == DocumentStatus.DRAFT


def test_clerk_sees_no_issue_button_and_the_service_refuses_the_post(client, bob, draft):
    login(client, bob)
    page = client.get(reverse("cabinet:document", args=[draft.pk])).content.decode()
    assert 'id="issue-button"' not in page

    response = client.post(reverse("cabinet:document_issue", args=[draft.pk]), follow=True)

    draft.refresh_from_db()
    assert draft.status == DocumentStatus.DRAFT
    assert "Only a signer may do this." in [str(m) for m in response.context["messages"]]


def test_clerk_cannot_annul_duplicate_or_correct(client, bob, issued):
    login(client, bob)
    page = client.get(reverse("cabinet:document", args=[issued.pk])).content.decode()
    assert reverse("cabinet:document_annul", args=[issued.pk]) not in page
    for name in ("cabinet:document_annul", "cabinet:document_duplicate", "cabinet:document_correct"):
        assert client.post(reverse(name, args=[issued.pk]), {"reason": "x"}).status_code == 403
        refused = client.get(reverse(name, args=[issued.pk]))
        assert refused.status_code == 403 and "Only a signer may do this." in refused.content.decode()
    issued.refresh_from_db()
    assert issued.status == DocumentStatus.ISSUED


def test_stage_closed_says_why_instead_of_failing(client, alice, draft, experiment):
    experiment.stages.update(allows_forming=False)
    login(client, alice)

    home = client.get(reverse("cabinet:home")).content.decode()
    page = client.get(reverse("cabinet:document", args=[draft.pk])).content.decode()
    response = client.post(reverse("cabinet:document_issue", args=[draft.pk]), follow=True)

    assert "does not allow forming documents" in home
    assert 'id="issue-button"' not in page and "does not allow forming documents" in page
    assert response.status_code == 200
    assert any("does not allow forming" in str(m) for m in response.context["messages"])
    draft.refresh_from_db()
    assert draft.status == DocumentStatus.DRAFT


def test_signer_annuls_with_a_reason(client, alice, issued):
    login(client, alice)
    url = reverse("cabinet:document_annul", args=[issued.pk])
    assert client.get(url).status_code == 200
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 200 and refused.context["form"].errors

    response = client.post(url, {"reason": "Ошибка в фамилии", "loss_mark": ""})

    assert response.status_code == 302
    issued.refresh_from_db()
    assert (issued.status, issued.annul_reason) == (DocumentStatus.ANNULLED, "Ошибка в фамилии")
    assert Delivery.objects.filter(document=issued, action="withdraw").exists()


def test_annulling_a_draft_is_refused(client, alice, draft):
    login(client, alice)
    response = client.post(reverse("cabinet:document_annul", args=[draft.pk]), {"reason": "x"}, follow=True)
    assert any("Only an issued document" in str(m) for m in response.context["messages"])
    draft.refresh_from_db()
    assert draft.status == DocumentStatus.DRAFT


def test_duplicate_links_to_its_original(client, alice, issued):
    login(client, alice)
    url = reverse("cabinet:document_duplicate", args=[issued.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "series": "",
            "number": "77000000000202",
            "registration_number": "R-202",
            "issued_on": YESTERDAY,
            "loss_mark": "lost",
        },
    )

    duplicate = Document.objects.get(number="77000000000202")
    assert response.status_code == 302 and response.url == reverse("cabinet:document", args=[duplicate.pk])
    assert (duplicate.copy_mark, duplicate.replaces, duplicate.status) == ("duplicate", issued, DocumentStatus.ISSUED)
    assert duplicate.grades == issued.grades
    issued.refresh_from_db()
    assert (issued.status, issued.loss_mark) == (DocumentStatus.ANNULLED, "lost")
    page = client.get(response.url).content.decode()
    assert reverse("cabinet:document", args=[issued.pk]) in page


def test_duplicate_with_a_taken_number_is_refused(client, alice, issued):
    login(client, alice)
    response = client.post(
        reverse("cabinet:document_duplicate", args=[issued.pk]),
        {"number": issued.number, "registration_number": "R-9", "issued_on": YESTERDAY, "loss_mark": "lost"},
    )
    assert response.status_code == 200 and "number" in response.context["form"].errors
    issued.refresh_from_db()
    assert issued.status == DocumentStatus.ISSUED


def test_correction_issues_a_replacement(client, alice, issued):
    login(client, alice)
    url = reverse("cabinet:document_correct", args=[issued.pk])
    form_page = client.get(url)
    assert form_page.status_code == 200
    assert [k for k, _label in form_page.context["form"].fields["kind"].choices] == [issued.kind]

    response = client.post(url, certificate_data(number="77000000000303", registration_number="R-303"))

    replacement = Document.objects.get(number="77000000000303")
    assert response.status_code == 302
    assert (replacement.replaces, replacement.replacement_reason, replacement.copy_mark) == (
        issued,
        "correction",
        "original",
    )
    issued.refresh_from_db()
    assert issued.status == DocumentStatus.ANNULLED


def test_printable_view_has_a_qr_code_to_the_verification_page(client, alice, issued, settings):
    settings.REGISTRY_PUBLIC_URL = "https://registry.example"
    login(client, alice)
    response = client.get(reverse("cabinet:document_print", args=[issued.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert f"https://registry.example/verify/{issued.verification_code}/" in html
    assert "<svg" in html and "<script" not in html
    assert issued.graduate.last_name in html
    # The code itself encodes that address: the same symbol as segno draws for it.
    import re

    import segno

    expected = segno.make(f"https://registry.example/verify/{issued.verification_code}/", error="m")
    drawn = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert re.search(r' d="([^"]+)"', drawn).group(1) == re.search(
        r' d="([^"]+)"', expected.svg_inline(scale=4, border=2)
    ).group(1)


def test_draft_print_has_no_qr_code(client, bob, draft):
    login(client, bob)
    html = client.get(reverse("cabinet:document_print", args=[draft.pk])).content.decode()
    assert "<svg" not in html and draft.verification_code not in html


# --- Lists, home and isolation ------------------------------------------------------


def test_document_list_filters_and_pages(client, bob, school, issued):
    graduate = issued.graduate
    DocumentFactory.create_batch(51, graduate=graduate)
    login(client, bob)
    url = reverse("cabinet:documents")
    assert len(client.get(url).context["page"]) == 50
    assert len(client.get(url, {"page": 2}).context["page"]) == 2
    assert [d.pk for d in client.get(url, {"status": "issued"}).context["page"]] == [issued.pk]
    assert [d.pk for d in client.get(url, {"q": issued.number}).context["page"]] == [issued.pk]


def test_home_counts_documents_by_kind_status_and_delivery_state(client, alice, school, issued, graduate):
    DocumentFactory(graduate=graduate, kind="basic_general_certificate")
    login(client, alice)
    response = client.get(reverse("cabinet:home"))
    context = response.context
    assert context["graduates_count"] == 1
    rows = {row["kind"]: (row["counts"], row["total"]) for row in context["document_rows"]}
    assert context["status_labels"] == ["Draft", "Issued", "Annulled"]
    assert rows == {
        "Certificate of basic general education (grade 9)": ([1, 0, 0], 1),
        "Certificate of secondary general education (grade 11)": ([0, 1, 0], 1),
    }
    assert (context["status_totals"], context["documents_total"]) == ([1, 1, 0], 2)
    assert [(state, n) for _label, state, n in context["deliveries"] if n] == [("pending", 1)]
    assert context["rule"].allowed
    html = response.content.decode()
    assert '<th class="num">2</th></tr></tfoot>' in html


def test_other_institution_gets_404_for_every_document_page(client, charlie, issued, draft):
    login(client, charlie)
    for name in (
        "cabinet:document",
        "cabinet:document_edit",
        "cabinet:document_annul",
        "cabinet:document_duplicate",
        "cabinet:document_correct",
        "cabinet:document_print",
    ):
        assert client.get(reverse(name, args=[issued.pk])).status_code == 404, name
    for name in ("cabinet:document_issue", "cabinet:document_delete", "cabinet:document_annul"):
        assert client.post(reverse(name, args=[issued.pk]), {"reason": "x"}).status_code == 404, name
    assert issued.number not in client.get(reverse("cabinet:documents")).content.decode()
    assert client.get(reverse("cabinet:home")).context["graduates_count"] == 0


def test_each_cabinet_action_writes_an_event_shown_in_the_history(client, bob, alice, graduate):
    login(client, bob)
    client.post(reverse("cabinet:document_create", args=[graduate.pk]), certificate_data())
    document = Document.objects.get()
    client.post(reverse("cabinet:document_edit", args=[document.pk]), certificate_data(registration_number="15-Б"))
    client.logout()
    login(client, alice)
    client.post(reverse("cabinet:document_issue", args=[document.pk]))
    client.post(
        reverse("cabinet:document_duplicate", args=[document.pk]),
        {"number": "77000000000404", "registration_number": "R-404", "issued_on": YESTERDAY, "loss_mark": "lost"},
    )
    duplicate = Document.objects.get(number="77000000000404")
    client.post(
        reverse("cabinet:document_correct", args=[duplicate.pk]),
        certificate_data(number="77000000000505", registration_number="R-505"),
    )
    correction = Document.objects.get(number="77000000000505")
    client.post(reverse("cabinet:document_annul", args=[correction.pk]), {"reason": "Ошибка"})

    def actions(doc):
        return [e.action for e in Event.objects.filter(object_type="document", object_id=doc.pk).order_by("seq")]

    assert actions(document) == [
        "document.drafted",
        "document.updated",
        "document.issued",
        "document.replaced_by_duplicate",
    ]
    assert actions(duplicate) == ["document.issued", "document.replaced_by_correction"]
    assert actions(correction) == ["document.issued", "document.annulled"]
    history = client.get(reverse("cabinet:document", args=[document.pk])).context["events"]
    assert [e.action_label for e in history] == [
        "Draft created",
        "Draft changed",
        "Signed and issued",
        "Replaced by a duplicate",
    ]
    page = client.get(reverse("cabinet:document", args=[correction.pk])).content.decode()
    assert "Annulled" in page and "Ошибка" in page and "document.annulled" not in page


def test_deleting_a_draft_is_recorded(client, bob, draft):
    login(client, bob)
    client.post(reverse("cabinet:document_delete", args=[draft.pk]))
    assert Event.objects.filter(object_type="document", object_id=draft.pk, action="document.draft_deleted").exists()


@pytest.mark.parametrize("kind", ["qualification_upgrade_certificate", "additional_education_certificate"])
def test_additional_education_form_asks_for_hours_and_keeps_no_grades(client, db, experiment, kind):
    organisation, user = staff_of("additional", experiment, "dpo")
    graduate = GraduateFactory(institution=organisation)
    login(client, user)
    url = reverse("cabinet:document_create", args=[graduate.pk])
    assert [k for k, _label in client.get(url).context["form"].fields["kind"].choices] == [
        "qualification_upgrade_certificate",
        "professional_retraining_diploma",
        "additional_education_certificate",
    ]
    data = certificate_data(
        kind=kind, number="ДПО-17", programme_name="Охрана труда", qualification="", honours="on", hours=""
    )

    refused = client.post(url, data)
    response = client.post(url, data | {"hours": "72"})

    assert refused.status_code == 200 and "hours" in refused.context["form"].errors
    assert response.status_code == 302
    document = Document.objects.get()
    assert (document.kind, document.hours, document.programme_name) == (kind, 72, "Охрана труда")
    assert (document.grades, document.honours) == ([], False)


def test_diploma_without_its_programme_is_refused(client, db, experiment):
    college, user = staff_of("college", experiment, "dean2")
    graduate = GraduateFactory(institution=college)
    login(client, user)
    data = certificate_data(kind="vocational_diploma", series="123456", number="1234567")
    response = client.post(reverse("cabinet:document_create", args=[graduate.pk]), data)
    assert response.status_code == 200
    assert {"programme_code", "programme_name"} <= set(response.context["form"].errors)
    assert not Document.objects.exists()


# --- The services refuse, whatever the pages show ------------------------------------


def test_services_refuse_a_clerk_annulling_duplicating_or_correcting(bob_actor, issued):
    data = services.DocumentData(
        kind=issued.kind, number="77000000000909", registration_number="R-909", issued_on=YESTERDAY
    )
    for call in (
        lambda: services.document_annul(actor=bob_actor, document=issued, reason="Ошибка"),
        lambda: services.document_issue_duplicate(actor=bob_actor, original=issued, data=data),
        lambda: services.document_correct(actor=bob_actor, original=issued, data=data),
    ):
        with pytest.raises(NotAllowed) as exc:
            call()
        assert exc.value.code == "signer_required"
    issued.refresh_from_db()
    assert issued.status == DocumentStatus.ISSUED and Document.objects.count() == 1


def test_the_service_never_edits_an_issued_document(alice_actor, issued):
    data = services.DocumentData(
        kind=issued.kind, number="77000000000999", registration_number="R-9", issued_on=YESTERDAY
    )
    with pytest.raises(NotAllowed):
        services.document_update_draft(actor=alice_actor, document=issued, data=data)
    with pytest.raises(NotAllowed):
        services.document_delete_draft(actor=alice_actor, document=issued)
    issued.refresh_from_db()
    assert (issued.number, issued.status) == ("77000000000101", DocumentStatus.ISSUED)


def test_services_refuse_another_institutions_records(charlie_actor, draft, issued):
    graduate = issued.graduate
    data = services.DocumentData(
        kind=issued.kind, number="77000000000888", registration_number="R-8", issued_on=YESTERDAY
    )
    for call in (
        lambda: services.document_create_draft(actor=charlie_actor, graduate=graduate, data=data),
        lambda: services.document_annul(actor=charlie_actor, document=issued, reason="x"),
        lambda: services.document_correct(actor=charlie_actor, original=issued, data=data),
        lambda: services.graduate_update(
            actor=charlie_actor,
            graduate=graduate,
            data=services.GraduateData(
                last_name="X", first_name="Y", birth_date=graduate.birth_date, snils=graduate.snils
            ),
        ),
    ):
        with pytest.raises(NotAllowed) as exc:
            call()
        assert exc.value.code == "other_institution"
    issued.refresh_from_db()
    assert issued.status == DocumentStatus.ISSUED and Document.objects.count() == 1


def test_staff_of_two_institutions_sees_only_the_chosen_ones_records(client, alice, school, other_school, issued):
    from documents.cabinet_context import SESSION_KEY

    MembershipFactory(user=alice, institution=other_school, role="signer")
    theirs = DocumentFactory(graduate=GraduateFactory(institution=other_school), number="77000000000606")
    login(client, alice)
    client.post(reverse("accounts:choose"), {"institution": other_school.pk})
    assert client.session[SESSION_KEY] == other_school.pk

    assert client.get(reverse("cabinet:document", args=[issued.pk])).status_code == 404
    assert client.get(reverse("cabinet:document_print", args=[issued.pk])).status_code == 404
    assert client.get(reverse("cabinet:graduate", args=[issued.graduate.pk])).status_code == 404
    assert [d.pk for d in client.get(reverse("cabinet:documents")).context["page"]] == [theirs.pk]

    client.post(reverse("accounts:choose"), {"institution": school.pk})
    assert client.get(reverse("cabinet:document", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("cabinet:document", args=[issued.pk])).status_code == 200


def test_stage_closed_duplicate_and_correction_say_why_and_change_nothing(client, alice, issued, experiment):
    experiment.stages.update(allows_forming=False)
    login(client, alice)

    page = client.get(reverse("cabinet:document", args=[issued.pk])).content.decode()
    duplicate_page = client.get(reverse("cabinet:document_duplicate", args=[issued.pk])).content.decode()
    correct_page = client.get(reverse("cabinet:document_correct", args=[issued.pk])).content.decode()
    duplicate = client.post(
        reverse("cabinet:document_duplicate", args=[issued.pk]),
        {"number": "77000000000202", "registration_number": "R-202", "issued_on": YESTERDAY, "loss_mark": "lost"},
    )
    correction = client.post(
        reverse("cabinet:document_correct", args=[issued.pk]),
        certificate_data(number="77000000000303", registration_number="R-303"),
    )

    assert 'id="duplicate-link"' not in page and 'id="correct-link"' not in page
    assert "cannot be issued today" in page and "does not allow forming documents" in page
    assert "does not allow forming documents" in duplicate_page
    assert "does not allow forming documents" in correct_page
    for response in (duplicate, correction):
        assert response.status_code == 200
        assert any("does not allow forming" in e for e in response.context["form"].non_field_errors())
    issued.refresh_from_db()
    assert issued.status == DocumentStatus.ISSUED and Document.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "basic_general_certificate"}, "kind"),
        ({"number": "77000000000101"}, "number"),
        ({"registration_number": ""}, "registration_number"),
    ],
)
def test_invalid_correction_is_refused_and_the_original_stays_issued(client, alice, issued, changes, field):
    login(client, alice)
    data = certificate_data(number="77000000000303", registration_number="R-303") | changes
    response = client.post(reverse("cabinet:document_correct", args=[issued.pk]), data)
    assert response.status_code == 200 and field in response.context["form"].errors
    issued.refresh_from_db()
    assert issued.status == DocumentStatus.ISSUED and Document.objects.count() == 1
