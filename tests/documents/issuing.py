"""Issue real documents through documents.services for the signing and verification tests."""

import datetime as dt
import itertools
import secrets

import pytest

from documents import services
from documents.models import Document
from tests.factories import make_snils

_numbers = itertools.count(1)

SNILS_DIGITS = make_snils(4242)
SNILS_FORMATTED = f"{SNILS_DIGITS[:3]}-{SNILS_DIGITS[3:6]}-{SNILS_DIGITS[6:9]} {SNILS_DIGITS[9:]}"


def graduate_data(**over) -> services.GraduateData:
    base = dict(
        last_name="Ёлкина",
        first_name="Анна",
        middle_name="Петровна",
        birth_date=dt.date(2007, 3, 1),
        snils=SNILS_DIGITS,
    )
    base.update(over)
    return services.GraduateData(**base)


def certificate_data(**over) -> services.DocumentData:
    n = next(_numbers)
    base = dict(
        kind="secondary_general_certificate",
        number=f"{77100000000000 + n:014d}",
        registration_number=f"R-{n}",
        issued_on=dt.date.today() - dt.timedelta(days=1),
        grades=[{"subject": "Математика", "mark": "5"}, {"subject": "Русский язык", "mark": "4"}],
    )
    base.update(over)
    return services.DocumentData(**base)


def issue(actor, *, graduate=None, **over) -> Document:
    """Create the graduate (once) and a certificate, issue it, return it reloaded."""
    if graduate is None:
        graduate = services.graduate_find_or_create(actor=actor, data=graduate_data())
    draft = services.document_create_draft(actor=actor, graduate=graduate, data=certificate_data(**over))
    services.document_issue(actor=actor, document=draft)
    return reload(draft)


def reload(document) -> Document:
    return Document.objects.select_related("institution", "graduate", "signing_key", "experiment").get(pk=document.pk)


@pytest.fixture
def fresh_ip(client):
    """Give the test client its own address, so verification rate limits never leak between tests.

    Random, not counted: the counters live in Redis when REDIS_URL is set, shared
    by the xdist workers and kept between runs, so a per-process counter would
    hand two workers (or two runs a minute apart) the same address.
    """
    n = secrets.randbits(24)
    client.defaults["REMOTE_ADDR"] = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    return client.defaults["REMOTE_ADDR"]
