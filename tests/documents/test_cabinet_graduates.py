"""Graduates in the cabinet: list and search, create, edit; SNILS never shown in clear."""

import pytest
from django.urls import reverse

from documents.models import Graduate
from documents.validators import snils_format
from tests.documents.cabinet_support import login
from tests.factories import GraduateFactory, make_snils

SNILS = "112-233-445 95"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LANGUAGE_CODE = "en"  # messages are compared in English, whatever the translations say


def form_data(**changes):
    data = {
        "last_name": "Смирнова",
        "first_name": "Ольга",
        "middle_name": "Петровна",
        "birth_date": "2007-03-01",
        "snils": SNILS,
    }
    return data | changes


def test_clerk_adds_a_graduate(client, bob, school):
    login(client, bob)
    response = client.post(reverse("cabinet:graduate_create"), form_data())
    graduate = Graduate.objects.get()
    assert response.status_code == 302 and response.url == reverse("cabinet:graduate", args=[graduate.pk])
    assert (graduate.institution, graduate.last_name, graduate.snils) == (school, "Смирнова", "11223344595")
    page = client.get(response.url).content.decode()
    assert "***-***-*** 95" in page and "112-233-445" not in page and "11223344595" not in page


def test_birth_date_in_russian_format_is_accepted(client, bob, school):
    login(client, bob)
    client.post(reverse("cabinet:graduate_create"), form_data(birth_date="01.03.2007"))
    assert str(Graduate.objects.get().birth_date) == "2007-03-01"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"snils": "112-233-445 96"}, "snils"),
        ({"last_name": ""}, "last_name"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
    ],
)
def test_invalid_graduate_is_refused(client, bob, school, changes, field):
    login(client, bob)
    response = client.post(reverse("cabinet:graduate_create"), form_data(**changes))
    assert response.status_code == 200 and field in response.context["form"].errors
    assert not Graduate.objects.exists()


def test_same_snils_twice_is_refused(client, bob, school):
    login(client, bob)
    client.post(reverse("cabinet:graduate_create"), form_data())
    response = client.post(reverse("cabinet:graduate_create"), form_data(last_name="Другая"))
    assert response.status_code == 200 and "snils" in response.context["form"].errors
    assert Graduate.objects.count() == 1


def test_list_masks_snils_and_searches_by_name_birth_date_and_exact_snils(client, bob, school):
    ivanov = GraduateFactory(institution=school, last_name="Иванов", birth_date="2007-01-02", snils=make_snils(1))
    petrova = GraduateFactory(institution=school, last_name="Петрова", birth_date="2008-03-04", snils=make_snils(2))
    login(client, bob)
    url = reverse("cabinet:graduates")

    page = client.get(url)
    html = page.content.decode()
    assert {g.pk for g in page.context["page"]} == {ivanov.pk, petrova.pk}
    assert make_snils(1) not in html and snils_format(make_snils(1)) not in html
    assert "***-***-*** " + make_snils(1)[9:] in html

    assert [g.pk for g in client.get(url, {"q": "Петр"}).context["page"]] == [petrova.pk]
    assert [g.pk for g in client.get(url, {"birth_date": "02.01.2007"}).context["page"]] == [ivanov.pk]
    assert [g.pk for g in client.get(url, {"snils": snils_format(make_snils(2))}).context["page"]] == [petrova.pk]
    assert list(client.get(url, {"snils": make_snils(3)}).context["page"]) == []


def test_list_pages(client, bob, school):
    GraduateFactory.create_batch(55, institution=school)
    login(client, bob)
    first = client.get(reverse("cabinet:graduates"))
    second = client.get(reverse("cabinet:graduates"), {"page": 2})
    assert len(first.context["page"]) == 50 and len(second.context["page"]) == 5


def test_pages_of_a_search_keep_the_search(client, bob, school):
    GraduateFactory.create_batch(52, institution=school, last_name="Кузнецов")
    GraduateFactory.create_batch(3, institution=school, last_name="Орлов")
    login(client, bob)
    first = client.get(reverse("cabinet:graduates"), {"q": "Кузн"})
    assert first.context["page"].paginator.count == 52
    assert "?q=%D0%9A%D1%83%D0%B7%D0%BD&amp;page=2" in first.content.decode()
    second = client.get(reverse("cabinet:graduates"), {"q": "Кузн", "page": 2})
    assert [g.last_name for g in second.context["page"]] == ["Кузнецов"] * 2


def test_edit_keeps_the_snils_when_left_empty(client, bob, school):
    graduate = GraduateFactory(institution=school, snils=make_snils(7))
    login(client, bob)
    url = reverse("cabinet:graduate_edit", args=[graduate.pk])
    form_page = client.get(url).content.decode()
    assert make_snils(7) not in form_page and snils_format(make_snils(7)) not in form_page

    response = client.post(url, form_data(last_name="Новая", snils=""))

    assert response.status_code == 302
    graduate.refresh_from_db()
    assert (graduate.last_name, graduate.snils) == ("Новая", make_snils(7))


def test_edit_to_a_snils_of_another_graduate_is_refused(client, bob, school):
    GraduateFactory(institution=school, snils=make_snils(1))
    graduate = GraduateFactory(institution=school, snils=make_snils(2))
    login(client, bob)
    response = client.post(reverse("cabinet:graduate_edit", args=[graduate.pk]), form_data(snils=make_snils(1)))
    assert response.status_code == 200 and "snils" in response.context["form"].errors


def test_other_institution_gets_404_for_graduate_pages(client, charlie, school):
    graduate = GraduateFactory(institution=school)
    login(client, charlie)
    for name in ("cabinet:graduate", "cabinet:graduate_edit", "cabinet:document_create"):
        assert client.get(reverse(name, args=[graduate.pk])).status_code == 404
    assert client.post(reverse("cabinet:graduate_edit", args=[graduate.pk]), form_data()).status_code == 404
    assert graduate.last_name not in client.get(reverse("cabinet:graduates")).content.decode()
