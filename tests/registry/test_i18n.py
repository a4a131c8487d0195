"""Russian by default, English on request, switchable from every page; both catalogues complete.

The catalogue checks read the .po files with the small parser below (polib is not a
dependency) and the .mo files with the standard library's gettext, so they need no
GNU gettext; `msgfmt --check`, when installed, validates the formats on top.
"""

import ast
import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from registry import settings as configured

LOCALE = Path(settings.BASE_DIR) / "locale"
LANGUAGES = ["ru", "en"]
PLURAL_FORMS = {"ru": 3, "en": 2}
# Placeholders and markup a translation must carry over unchanged.
PLACEHOLDER = re.compile(r"%\(\w+\)[sdf]|%[sdf]|\{\w*\}|<[^>]+>")


@pytest.fixture
def russian_default(settings):
    """Undo conftest's English default: these tests check the portal's own fallback."""
    settings.LANGUAGE_CODE = configured.LANGUAGE_CODE


def po_entries(path: Path) -> list[dict]:
    """Return the entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (a list), flags."""
    entries, entry, field = [], None, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if entry is not None and entry["msgid"] is not None:
                entries.append(entry)
            entry = None
            continue
        if line.startswith("#~"):
            raise AssertionError(f"{path}: obsolete entry left in the catalogue: {line}")
        entry = entry or {"msgctxt": None, "msgid": None, "msgid_plural": None, "msgstr": [], "flags": set()}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if field == "msgstr":
                entry["msgstr"][-1] += value
            else:
                entry[field] += value
        else:
            keyword, _, literal = line.partition(" ")
            field = "msgstr" if keyword.startswith("msgstr") else keyword
            if field == "msgstr":
                entry["msgstr"].append(ast.literal_eval(literal))
            else:
                entry[field] = ast.literal_eval(literal)
    return entries


def entry_label(entry: dict) -> str:
    return f"{entry['msgctxt']}|{entry['msgid']}" if entry["msgctxt"] else entry["msgid"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_has_a_translation_that_keeps_its_placeholders(language):
    entries = po_entries(LOCALE / language / "LC_MESSAGES" / "django.po")
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == "" and "fuzzy" not in header["flags"]
    assert f"Language: {language}\n" in header["msgstr"][0]
    assert f"nplurals={PLURAL_FORMS[language]};" in header["msgstr"][0]
    assert len(messages) > 700
    problems = []
    for entry in messages:
        label = entry_label(entry)
        forms = PLURAL_FORMS[language] if entry["msgid_plural"] is not None else 1
        if "fuzzy" in entry["flags"]:
            problems.append(f"fuzzy: {label}")
        if len(entry["msgstr"]) != forms or not all(text.strip() for text in entry["msgstr"]):
            problems.append(f"untranslated: {label}")
        wanted = sorted(PLACEHOLDER.findall(entry["msgid"]))
        problems += [
            f"placeholders changed: {label} -> {text}"
            for text in entry["msgstr"]
            if text and sorted(PLACEHOLDER.findall(text)) != wanted
        ]
    assert not problems, "\n".join(problems)


def test_russian_is_a_translation_not_a_copy_of_the_english():
    messages = po_entries(LOCALE / "ru" / "LC_MESSAGES" / "django.po")[1:]
    copied = [e["msgid"] for e in messages if e["msgstr"][0] == e["msgid"] and re.search(r"[A-Za-z]{4,}", e["msgid"])]
    assert copied == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_matches_its_po_file(language):
    """The committed .mo is what `compilemessages` makes of the committed .po."""
    directory = LOCALE / language / "LC_MESSAGES"
    with (directory / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog
    expected = {}
    for entry in po_entries(directory / "django.po"):
        key = f"{entry['msgctxt']}\x04{entry['msgid']}" if entry["msgctxt"] else entry["msgid"]
        if entry["msgid_plural"] is None:
            expected[key] = entry["msgstr"][0]
        else:
            expected.update({(key, n): text for n, text in enumerate(entry["msgstr"])})
    # msgfmt drops the POT-Creation-Date from the header; the plural rule must survive.
    header = compiled.pop("")
    assert expected.pop("").split("Plural-Forms: ")[1] == header.split("Plural-Forms: ")[1]
    assert compiled == expected, "run `make messages` and commit the .mo files"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext (msgfmt) is not installed")
@pytest.mark.parametrize("language", LANGUAGES)
def test_msgfmt_accepts_the_catalogue(language, tmp_path):
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "django.mo"), "django.po"],
        cwd=LOCALE / language / "LC_MESSAGES",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+ translated messages\.\n", result.stderr), result.stderr


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "1 документ"),
        (3, "3 документа"),
        (5, "5 документов"),
        (11, "11 документов"),
        (21, "21 документ"),
        (22, "22 документа"),
    ],
)
def test_russian_counts_take_the_right_plural_form(count, expected):
    with translation.override("ru"):
        assert translation.ngettext("%(n)s document", "%(n)s documents", count) % {"n": count} == expected


# --- pages ------------------------------------------------------------------------


def test_home_page_is_russian_by_default(client, db, russian_default):
    response = client.get("/")
    assert response.status_code == 200
    content = response.content.decode()
    assert '<html lang="ru">' in content
    assert "Проверить документ" in content and "Verify a document" not in content


def test_home_page_in_english_from_the_browser_language(client, db, russian_default):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    content = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en">' in content
    assert "Verify a document" in content and "Проверить документ" not in content


@pytest.mark.parametrize(
    ("url", "russian", "english"),
    [
        ("/accounts/login/", ["Войти", "Имя пользователя", "Пароль"], ["Log in", "Username", "Password"]),
        (
            "/verify/",
            ["По номеру и владельцу", "Фамилия владельца", "Проверить файл"],
            ["By number and holder", "Holder&#x27;s surname", "Verify the file"],
        ),
    ],
)
def test_public_pages_speak_the_language_asked_for(client, db, russian_default, url, russian, english):
    in_russian = client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    in_english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for text in russian:
        assert text in in_russian and text not in in_english
    for text in english:
        assert text in in_english and text not in in_russian


def test_language_switch_sticks_for_the_next_pages(db, russian_default):
    """The switcher is a real form: it needs the page's CSRF token."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/verify/")
    assert "По номеру и владельцу" in page.content.decode()
    token = page.cookies[settings.CSRF_COOKIE_NAME].value

    response = client.post(reverse("set_language"), {"language": "en", "next": "/verify/"})
    assert response.status_code == 403

    response = client.post(
        reverse("set_language"), {"language": "en", "next": "/verify/", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/verify/"
    english = client.get("/verify/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert '<html lang="en">' in english and "By number and holder" in english

    client.post(reverse("set_language"), {"language": "ru", "next": "/", "csrfmiddlewaretoken": token})
    russian = client.get("/verify/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="ru">' in russian and "По номеру и владельцу" in russian


def test_every_page_offers_both_languages(client, db):
    content = client.get("/").content.decode()
    assert 'name="language" value="ru"' in content and 'name="language" value="en"' in content


def test_errors_raised_in_code_reach_the_page_in_the_readers_language(client, db, russian_default):
    """A message made in Python (the verification service's refusal) follows the request's language."""

    def upload(language):
        broken = SimpleUploadedFile("document.json", b"{not json", content_type="application/json")
        return client.post("/verify/", {"file": broken}, HTTP_ACCEPT_LANGUAGE=language).content.decode()

    assert "Файл содержит некорректный JSON." in upload("ru")
    assert "The file is not valid JSON." in upload("en")


def test_verdict_page_in_both_languages(client, db, russian_default):
    russian = client.get("/verify/unknown-code/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    english = client.get("/verify/unknown-code/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Такого документа в реестре нет" in russian
    assert "No such document in the registry" in english
