"""Business operations on graduates and documents: the one place their rules live.

Forms, the import, the API and admin actions call these; none re-implements a
check. Every service is atomic, takes keyword arguments and raises a DomainError
subclass (nothing changed) when a rule refuses.
"""

import datetime as dt
from dataclasses import dataclass, field, fields

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from documents import validators
from documents.delivery import deliveries_enqueue
from documents.history import event_record
from documents.kinds import RULES, Family
from documents.models import (
    CopyMark,
    DeliveryAction,
    Document,
    DocumentStatus,
    Graduate,
    LossMark,
    ReplacementReason,
)
from documents.pii import snils_encrypt, snils_lookup_hash
from documents.signing import sign_document
from experiment.services import forming_experiment
from registry.actors import Actor
from registry.cleaning import merge_errors, text_error, text_errors
from registry.errors import Conflict, NotAllowed, ValidationFailed

MAX_GRADES = 60


# --- Graduates ------------------------------------------------------------------


@dataclass
class GraduateData:
    last_name: str
    first_name: str
    birth_date: dt.date
    snils: str
    middle_name: str = ""
    citizenship: str = "RUS"


def graduate_data_errors(data: GraduateData, *, today: dt.date | None = None) -> dict:
    """Return {field: [message]} for everything wrong with `data`; empty when valid.

    `today` (the local date) may be passed by a caller checking many rows at once.
    """
    errors: dict[str, list] = {}
    for name in ("last_name", "first_name"):
        if not (getattr(data, name) or "").strip():
            errors[name] = [_("This field is required.")]
    if not validators.snils_is_valid(data.snils or ""):
        errors["snils"] = [_("SNILS must be 11 digits (XXX-XXX-XXX YY) with a valid check number.")]
    merge_errors(
        errors,
        text_errors(
            Graduate,
            last_name=data.last_name,
            first_name=data.first_name,
            middle_name=data.middle_name,
            citizenship=data.citizenship,
        ),
    )
    if data.birth_date is None:
        errors["birth_date"] = [_("This field is required.")]
    elif data.birth_date > (today or timezone.localdate()) or data.birth_date.year < 1900:
        errors["birth_date"] = [_("Birth date is not plausible.")]
    return errors


def _clean_graduate(data: GraduateData) -> GraduateData:
    errors = graduate_data_errors(data)
    if errors:
        raise ValidationFailed(_("The graduate's data is not valid."), errors=errors)
    data.last_name = data.last_name.strip()
    data.first_name = data.first_name.strip()
    data.middle_name = (data.middle_name or "").strip()
    return data


@transaction.atomic
def graduate_create(*, actor: Actor, data: GraduateData) -> Graduate:
    """Create a graduate at the actor's institution; the same SNILS twice is a Conflict."""
    data = _clean_graduate(data)
    institution = actor.institution
    snils_hash = snils_lookup_hash(data.snils)
    if Graduate.objects.filter(institution=institution, snils_hash=snils_hash).exists():
        raise Conflict.for_field("snils", _("A graduate with this SNILS already exists."), code="duplicate_snils")
    graduate = Graduate(
        institution=institution,
        last_name=data.last_name,
        first_name=data.first_name,
        middle_name=data.middle_name,
        birth_date=data.birth_date,
        citizenship=data.citizenship or "RUS",
        snils_encrypted=snils_encrypt(data.snils),
        snils_hash=snils_hash,
    )
    try:
        with transaction.atomic():
            graduate.save()
    except IntegrityError:
        raise Conflict.for_field(
            "snils", _("A graduate with this SNILS already exists."), code="duplicate_snils"
        ) from None
    event_record(actor=actor, action="graduate.created", obj=graduate, institution_id=institution.pk)
    return graduate


@transaction.atomic
def graduate_update(*, actor: Actor, graduate: Graduate, data: GraduateData) -> Graduate:
    actor.require_institution(graduate.institution_id)
    data = _clean_graduate(data)
    snils_hash = snils_lookup_hash(data.snils)
    if (
        Graduate.objects.filter(institution_id=graduate.institution_id, snils_hash=snils_hash)
        .exclude(pk=graduate.pk)
        .exists()
    ):
        raise Conflict.for_field("snils", _("A graduate with this SNILS already exists."), code="duplicate_snils")
    graduate.last_name, graduate.first_name, graduate.middle_name = data.last_name, data.first_name, data.middle_name
    graduate.birth_date, graduate.citizenship = data.birth_date, data.citizenship or "RUS"
    if snils_hash != graduate.snils_hash:
        graduate.snils_encrypted, graduate.snils_hash = snils_encrypt(data.snils), snils_hash
    graduate.save()
    event_record(actor=actor, action="graduate.updated", obj=graduate, institution_id=graduate.institution_id)
    return graduate


def graduate_find_or_create(*, actor: Actor, data: GraduateData) -> Graduate:
    """Return the institution's graduate with this SNILS, or create one.

    A SNILS already on file for a person with another surname or birth date is
    refused rather than silently attaching the document to the wrong person.
    """
    data = _clean_graduate(data)
    existing = Graduate.objects.filter(institution=actor.institution, snils_hash=snils_lookup_hash(data.snils)).first()
    if existing is None:
        return graduate_create(actor=actor, data=data)
    if existing.last_name.casefold() != data.last_name.casefold() or existing.birth_date != data.birth_date:
        raise Conflict.for_field(
            "snils", _("This SNILS belongs to another graduate in your records."), code="snils_mismatch"
        )
    return existing


# --- Documents ------------------------------------------------------------------


@dataclass
class DocumentData:
    kind: str
    number: str
    registration_number: str
    issued_on: dt.date
    series: str = ""
    programme_code: str = ""
    programme_name: str = ""
    qualification: str = ""
    hours: int | None = None
    honours: bool = False
    grades: list = field(default_factory=list)


DOCUMENT_FIELDS = tuple(f.name for f in fields(DocumentData))


def document_data_errors(*, institution_kind: str, data: DocumentData, today: dt.date | None = None) -> dict:
    """Return {field: [message]} for everything wrong with `data`; empty when valid.

    `today` (the local date) may be passed by a caller checking many rows at once.
    """
    rule = RULES.get(data.kind)
    if rule is None:
        return {"kind": [_("Unknown document kind.")]}
    errors = validators.document_identifier_errors(
        kind=data.kind,
        series=data.series or "",
        number=data.number or "",
        registration_number=data.registration_number or "",
    )
    merge_errors(
        errors,
        text_errors(
            Document,
            series=data.series,
            number=data.number,
            registration_number=data.registration_number,
            programme_code=data.programme_code,
            programme_name=data.programme_name,
            qualification=data.qualification,
        ),
    )
    issuer = validators.issuer_error(institution_kind=institution_kind, kind=data.kind)
    if issuer:
        errors.setdefault("kind", []).append(issuer)
    if data.issued_on is None:
        errors["issued_on"] = [_("This field is required.")]
    elif data.issued_on > (today or timezone.localdate()):
        errors["issued_on"] = [_("Issue date cannot be in the future.")]
    if rule.needs_programme_code:
        if not data.programme_code:
            errors["programme_code"] = [_("Programme code is required for this kind of document.")]
        else:
            try:
                validators.validate_okso(data.programme_code)
            except validators.ValidationError as exc:
                errors["programme_code"] = list(exc.messages)
    elif data.programme_code:
        try:
            validators.validate_okso(data.programme_code)
        except validators.ValidationError as exc:
            errors["programme_code"] = list(exc.messages)
    if rule.needs_programme_name and not (data.programme_name or "").strip():
        errors["programme_name"] = [_("Programme name is required for this kind of document.")]
    if rule.needs_hours:
        if data.hours is None or data.hours <= 0:
            errors["hours"] = [_("Hours must be a positive number for this kind of document.")]
    elif data.hours is not None and data.hours <= 0:
        errors["hours"] = [_("Hours must be a positive number.")]
    if data.grades:
        errors.update(_grades_errors(data.grades, rule.family))
    return errors


def _grades_errors(grades, family) -> dict:
    if not isinstance(grades, list) or len(grades) > MAX_GRADES:
        return {"grades": [_("Grades must be a list of at most %(n)d subjects.") % {"n": MAX_GRADES}]}
    for item in grades:
        if not (isinstance(item, dict) and str(item.get("subject", "")).strip() and str(item.get("mark", "")).strip()):
            return {"grades": [_("Each grade needs a subject and a mark.")]}
        if len(str(item["subject"])) > 200 or len(str(item["mark"])) > 40:
            return {"grades": [_("A subject or a mark is too long.")]}
        message = text_error(str(item["subject"])) or text_error(str(item["mark"]))
        if message:
            return {"grades": [message]}
    if family == Family.ADDITIONAL:
        return {"grades": [_("This kind of document has no grades.")]}
    return {}


def _clean_document(*, institution, data: DocumentData) -> DocumentData:
    data.series = (data.series or "").strip()
    data.number = (data.number or "").strip()
    data.registration_number = (data.registration_number or "").strip()
    data.programme_name = (data.programme_name or "").strip()
    data.qualification = (data.qualification or "").strip()
    data.grades = (
        [
            {"subject": str(g["subject"]).strip(), "mark": str(g["mark"]).strip()}
            for g in (data.grades or [])
            if isinstance(g, dict)
        ]
        if data.grades
        else []
    )
    errors = document_data_errors(institution_kind=institution.kind, data=data)
    if errors:
        raise ValidationFailed(_("The document's data is not valid."), errors=errors)
    return data


def _duplicate_number_error() -> Conflict:
    return Conflict.for_field(
        "number",
        _("A document of this kind with this series and number already exists."),
        code="duplicate_number",
    )


def _save_new(document: Document) -> None:
    if Document.objects.filter(kind=document.kind, series=document.series, number=document.number).exists():
        raise _duplicate_number_error()
    try:
        with transaction.atomic():
            document.save()
    except IntegrityError:
        raise _duplicate_number_error() from None


@transaction.atomic
def document_create_draft(*, actor: Actor, graduate: Graduate, data: DocumentData) -> Document:
    """Create a draft for `graduate` at the actor's institution (clerk or signer)."""
    actor.require_institution(graduate.institution_id)
    institution = graduate.institution
    data = _clean_document(institution=institution, data=data)
    document = Document(
        institution=institution,
        graduate=graduate,
        created_by=actor.user,
        status=DocumentStatus.DRAFT,
        **{name: getattr(data, name) for name in DOCUMENT_FIELDS},
    )
    _save_new(document)
    event_record(
        actor=actor,
        action="document.drafted",
        obj=document,
        institution_id=institution.pk,
        data={"kind": document.kind},
    )
    return document


@transaction.atomic
def document_update_draft(*, actor: Actor, document: Document, data: DocumentData) -> Document:
    """Change a draft. An issued or annulled document is never edited in place."""
    actor.require_institution(document.institution_id)
    document = Document.objects.select_for_update().select_related("institution").get(pk=document.pk)
    if document.status != DocumentStatus.DRAFT:
        raise NotAllowed(
            _("Only a draft can be edited; correct an issued document by issuing a replacement."), code="not_draft"
        )
    data = _clean_document(institution=document.institution, data=data)
    clash = Document.objects.filter(kind=data.kind, series=data.series, number=data.number).exclude(pk=document.pk)
    if clash.exists():
        raise _duplicate_number_error()
    for name in DOCUMENT_FIELDS:
        setattr(document, name, getattr(data, name))
    try:
        with transaction.atomic():
            document.save()
    except IntegrityError:
        raise _duplicate_number_error() from None
    event_record(actor=actor, action="document.updated", obj=document, institution_id=document.institution_id)
    return document


@transaction.atomic
def document_delete_draft(*, actor: Actor, document: Document) -> None:
    actor.require_institution(document.institution_id)
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.status != DocumentStatus.DRAFT:
        raise NotAllowed(_("Only a draft can be deleted."), code="not_draft")
    event_record(actor=actor, action="document.draft_deleted", obj=document, institution_id=document.institution_id)
    document.delete()


def _issue_locked(*, actor: Actor, document: Document) -> Document:
    document.experiment = forming_experiment(institution=document.institution)
    document.status = DocumentStatus.ISSUED
    sign_document(document)
    document.save()
    deliveries_enqueue(documents=[document], action=DeliveryAction.PUBLISH)
    event_record(
        actor=actor,
        action="document.issued",
        obj=document,
        institution_id=document.institution_id,
        data={
            "kind": document.kind,
            "kid": document.signing_key.kid,
            "experiment": document.experiment.year if document.experiment else None,
        },
    )
    return document


@transaction.atomic
def document_issue(*, actor: Actor, document: Document) -> Document:
    """Issue a draft: sign it and queue its publication at Gosuslugi (signer only).

    Signing, the status change and the outbox row commit together; the delivery
    task starts after commit. Issuing an already issued document is refused.
    """
    actor.require_institution(document.institution_id)
    actor.require_signer()
    document = (
        Document.objects.select_for_update(of=("self",))
        .select_related("institution", "graduate", "experiment", "replaces")
        .get(pk=document.pk)
    )
    if document.status != DocumentStatus.DRAFT:
        raise NotAllowed(_("This document has already been issued."), code="not_draft")
    return _issue_locked(actor=actor, document=document)


@transaction.atomic
def document_create_and_issue(*, actor: Actor, graduate_data: GraduateData, data: DocumentData) -> Document:
    """Create the graduate if new, then a document, and issue it in one step (API)."""
    actor.require_signer()
    graduate = graduate_find_or_create(actor=actor, data=graduate_data)
    document = document_create_draft(actor=actor, graduate=graduate, data=data)
    document = Document.objects.select_related("institution", "graduate").get(pk=document.pk)
    return _issue_locked(actor=actor, document=document)


@transaction.atomic
def document_annul(*, actor: Actor, document: Document, reason: str, loss_mark: str = LossMark.NONE) -> Document:
    """Annul an issued document with a reason (signer only) and withdraw it from Gosuslugi."""
    actor.require_institution(document.institution_id)
    actor.require_signer()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.for_field("reason", _("Give the reason for annulment."))
    message = text_error(reason, max_length=Document._meta.get_field("annul_reason").max_length, multiline=True)
    if message:
        raise ValidationFailed.for_field("reason", message)
    document = Document.objects.select_for_update(of=("self",)).select_related("institution").get(pk=document.pk)
    if document.status != DocumentStatus.ISSUED:
        raise NotAllowed(_("Only an issued document can be annulled."), code="not_issued")
    document.status = DocumentStatus.ANNULLED
    document.annulled_at = timezone.now()
    document.annul_reason = reason[:500]
    if loss_mark:
        document.loss_mark = loss_mark
    document.save(update_fields=["status", "annulled_at", "annul_reason", "loss_mark", "updated_at"])
    deliveries_enqueue(documents=[document], action=DeliveryAction.WITHDRAW)
    event_record(actor=actor, action="document.annulled", obj=document, institution_id=document.institution_id)
    return document


def _replace(*, actor: Actor, original: Document, data: DocumentData, reason: str, loss_mark: str) -> Document:
    actor.require_institution(original.institution_id)
    actor.require_signer()
    original = (
        Document.objects.select_for_update(of=("self",)).select_related("institution", "graduate").get(pk=original.pk)
    )
    if original.status != DocumentStatus.ISSUED:
        raise NotAllowed(_("Only an issued document can be replaced."), code="not_issued")
    data = _clean_document(institution=original.institution, data=data)
    if data.kind != original.kind:
        raise ValidationFailed.for_field("kind", _("A replacement must be of the same kind as the original."))
    replacement = Document(
        institution=original.institution,
        graduate=original.graduate,
        created_by=actor.user,
        status=DocumentStatus.DRAFT,
        replaces=original,
        replacement_reason=reason,
        copy_mark=CopyMark.DUPLICATE if reason == ReplacementReason.DUPLICATE else CopyMark.ORIGINAL,
        **{name: getattr(data, name) for name in DOCUMENT_FIELDS},
    )
    _save_new(replacement)
    original.status = DocumentStatus.ANNULLED
    original.annulled_at = timezone.now()
    original.loss_mark = loss_mark
    original.annul_reason = str(
        _("Replaced by a duplicate") if reason == ReplacementReason.DUPLICATE else _("Replaced by a corrected document")
    )
    original.save(update_fields=["status", "annulled_at", "annul_reason", "loss_mark", "updated_at"])
    deliveries_enqueue(documents=[original], action=DeliveryAction.WITHDRAW)
    event_record(
        actor=actor,
        action=f"document.replaced_by_{reason}",
        obj=original,
        institution_id=original.institution_id,
        data={"replacement": replacement.pk},
    )
    return _issue_locked(actor=actor, document=replacement)


@transaction.atomic
def document_issue_duplicate(
    *, actor: Actor, original: Document, data: DocumentData, loss_mark: str = LossMark.LOST
) -> Document:
    """Issue a duplicate (ФРДО "Дубликат") of an issued original, which it replaces.

    The duplicate carries new series/number; the original is marked (lost,
    exchanged, destroyed) and withdrawn.
    """
    return _replace(actor=actor, original=original, data=data, reason=ReplacementReason.DUPLICATE, loss_mark=loss_mark)


@transaction.atomic
def document_correct(*, actor: Actor, original: Document, data: DocumentData) -> Document:
    """Correct an issued document by issuing its replacement; the original is annulled."""
    return _replace(
        actor=actor, original=original, data=data, reason=ReplacementReason.CORRECTION, loss_mark=LossMark.EXCHANGED
    )
