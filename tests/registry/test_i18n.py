"""Russian by default, English on request, switchable from every page."""

from pathlib import Path

from django.conf import settings
from django.urls import reverse


def test_home_page_is_russian_by_default(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert '<html lang="ru">' in response.content.decode()


def test_home_page_in_english_from_the_browser_language(client, db):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    content = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en">' in content
    assert "Verify a document" in content


def test_language_switch_sticks_for_the_next_pages(client, db):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert '<html lang="en">' in client.get("/").content.decode()
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    assert '<html lang="ru">' in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_every_page_offers_both_languages(client, db):
    content = client.get("/").content.decode()
    assert 'name="language" value="ru"' in content and 'name="language" value="en"' in content


def test_russian_and_english_pages_differ_once_translations_are_compiled(client, db):
    catalog = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES" / "django.mo"
    russian = client.get("/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    if catalog.exists():
        assert "Verify a document" not in russian
    assert "Verify a document" in english
