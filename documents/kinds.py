"""Document kinds, who may issue them, and the shape of their numbers.

This table is the one place these rules live; forms, the import, the API and the
services all consult it.
"""

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class DocumentKind(models.TextChoices):
    BASIC_GENERAL_CERTIFICATE = "basic_general_certificate", _("Certificate of basic general education (grade 9)")
    SECONDARY_GENERAL_CERTIFICATE = (
        "secondary_general_certificate",
        _("Certificate of secondary general education (grade 11)"),
    )
    VOCATIONAL_DIPLOMA = "vocational_diploma", _("Diploma of secondary vocational education")
    BACHELOR_DIPLOMA = "bachelor_diploma", _("Bachelor's diploma")
    SPECIALIST_DIPLOMA = "specialist_diploma", _("Specialist's diploma")
    MASTER_DIPLOMA = "master_diploma", _("Master's diploma")
    QUALIFICATION_UPGRADE_CERTIFICATE = "qualification_upgrade_certificate", _("Certificate of qualification upgrade")
    PROFESSIONAL_RETRAINING_DIPLOMA = "professional_retraining_diploma", _("Diploma of professional retraining")
    ADDITIONAL_EDUCATION_CERTIFICATE = "additional_education_certificate", _("Certificate of additional education")


class Family(models.TextChoices):
    """What a kind's form asks for: grades, a programme, or hours."""

    GENERAL = "general", _("General education certificate")
    VOCATIONAL = "vocational", _("Vocational diploma")
    HIGHER = "higher", _("Higher education diploma")
    ADDITIONAL = "additional", _("Additional professional education")


@dataclass(frozen=True)
class KindRule:
    family: str
    issuers: frozenset[str]
    series_digits: int | None  # None: no series; 0: optional free-form series
    number_digits: int | None  # None: free-form number (ДПО)
    needs_programme_code: bool
    needs_programme_name: bool
    needs_hours: bool


_SCHOOL = frozenset({"school"})
_COLLEGE = frozenset({"college"})
_UNIVERSITY = frozenset({"university"})
_DPO = frozenset({"college", "university", "additional"})

RULES: dict[str, KindRule] = {
    DocumentKind.BASIC_GENERAL_CERTIFICATE: KindRule(Family.GENERAL, _SCHOOL, None, 14, False, False, False),
    DocumentKind.SECONDARY_GENERAL_CERTIFICATE: KindRule(Family.GENERAL, _SCHOOL, None, 14, False, False, False),
    DocumentKind.VOCATIONAL_DIPLOMA: KindRule(Family.VOCATIONAL, _COLLEGE, 6, 7, True, True, False),
    DocumentKind.BACHELOR_DIPLOMA: KindRule(Family.HIGHER, _UNIVERSITY, 6, 7, True, True, False),
    DocumentKind.SPECIALIST_DIPLOMA: KindRule(Family.HIGHER, _UNIVERSITY, 6, 7, True, True, False),
    DocumentKind.MASTER_DIPLOMA: KindRule(Family.HIGHER, _UNIVERSITY, 6, 7, True, True, False),
    DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE: KindRule(Family.ADDITIONAL, _DPO, 0, None, False, True, True),
    DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA: KindRule(Family.ADDITIONAL, _DPO, 0, None, False, True, True),
    DocumentKind.ADDITIONAL_EDUCATION_CERTIFICATE: KindRule(
        Family.ADDITIONAL, frozenset({"additional"}), 0, None, False, True, True
    ),
}


def rule_for(kind: str) -> KindRule:
    return RULES[kind]


def kinds_for_institution(institution_kind: str) -> list[str]:
    """Return the document kinds an institution of `institution_kind` may issue."""
    return [kind for kind, rule in RULES.items() if institution_kind in rule.issuers]


def may_issue(institution_kind: str, kind: str) -> bool:
    rule = RULES.get(kind)
    return rule is not None and institution_kind in rule.issuers
