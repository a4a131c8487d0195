"""The embedded SQLite searches case-insensitively in Russian too."""

import pytest
from django.db import connection

from institutions.models import Institution
from registry.sqlite import like
from tests.factories import InstitutionFactory


def test_like_folds_case_in_every_alphabet_and_keeps_wildcards():
    assert like("%школа%", "МБОУ Школа № 5")
    assert like("ёлк%", "Ёлкина")
    assert like("a_c", "ABC") and not like("a_c", "ABBC")
    assert like("100\\%", "100%", "\\") and not like("100\\%", "1000", "\\")
    assert like(None, "x") is None


@pytest.mark.django_db
def test_icontains_finds_cyrillic_in_another_case():
    school = InstitutionFactory(short_name="Школа Ёлочка")
    assert list(Institution.objects.filter(short_name__icontains="ёлоч")) == [school]
    assert list(Institution.objects.filter(short_name__icontains="ШКОЛА")) == [school]
    assert not Institution.objects.filter(short_name__icontains="лицей").exists()
    assert connection.vendor in ("sqlite", "postgresql")
