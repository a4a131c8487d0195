"""Experiment rules: which experiment a newly formed document belongs to, and when.

The one place that decides whether an institution may form documents today.
"""

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from documents.history import event_record
from experiment.models import Experiment, Participation, Stage
from institutions.models import Institution
from institutions.validators import inn_is_valid
from registry.actors import Actor
from registry.errors import NotAllowed, ValidationFailed

MAX_INN_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FormingRule:
    """What an institution may do on a given day, and why not if it may not."""

    allowed: bool
    experiment: Experiment | None
    stage: Stage | None
    reason: str = ""
    transfer_allowed: bool = False


def today() -> dt.date:
    return timezone.localdate()


def active_stages(*, experiment: Experiment, on: dt.date) -> list[Stage]:
    """Return the stages active on `on`; stages may overlap (2024: stages 1 and 2)."""
    return list(experiment.stages.filter(starts_on__lte=on, ends_on__gte=on).order_by("number"))


def forming_rule(*, institution, on: dt.date | None = None) -> FormingRule:
    """Return whether `institution` may form documents on `on` and into which experiment.

    An enrolled institution forms experimental documents only while a stage that
    allows forming is active. An institution in no running experiment forms regular
    (non-experimental) documents only when regular operation is switched on.
    """
    on = on or today()
    # A running experiment is one whose dates include `on`: once it has ended the
    # institution is in no experiment, and may form only regular documents.
    participation = (
        institution.participations.select_related("experiment")
        .filter(experiment__starts_on__lte=on, experiment__ends_on__gte=on)
        .order_by("-experiment__year")
        .first()
    )
    if participation is not None:
        experiment = participation.experiment
        stages = active_stages(experiment=experiment, on=on)
        transfer = any(st.allows_transfer for st in stages)
        forming = [st for st in stages if st.allows_forming]
        if not stages:
            return FormingRule(
                False,
                experiment,
                None,
                _("No stage of the %(year)s experiment is active today (%(day)s): documents cannot be formed.")
                % {"year": experiment.year, "day": on.strftime("%d.%m.%Y")},
            )
        if not forming:
            return FormingRule(
                False,
                experiment,
                stages[0],
                _("Stage %(number)s of the %(year)s experiment does not allow forming documents.")
                % {"number": stages[0].number, "year": experiment.year},
                transfer_allowed=transfer,
            )
        return FormingRule(True, experiment, forming[0], transfer_allowed=transfer)
    if settings.REGISTRY_REGULAR_OPERATION:
        return FormingRule(True, None, None, transfer_allowed=True)
    return FormingRule(
        False,
        None,
        None,
        _("The institution is not enrolled in a running experiment and regular operation is switched off."),
    )


def forming_experiment(*, institution, on: dt.date | None = None) -> Experiment | None:
    """Return the experiment a document formed now belongs to (None: regular), or raise."""
    rule = forming_rule(institution=institution, on=on)
    if not rule.allowed:
        raise NotAllowed(rule.reason, code="stage_closed")
    return rule.experiment


# --- Enrolment --------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolmentResult:
    enrolled: int
    already_enrolled: int


class EnrolmentOutcome:
    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already_enrolled"
    UNKNOWN_INN = "unknown_inn"
    INVALID_INN = "invalid_inn"

    LABELS = {
        ENROLLED: _("enrolled"),
        ALREADY_ENROLLED: _("already enrolled"),
        UNKNOWN_INN: _("no institution with this INN"),
        INVALID_INN: _("not a valid INN (10 or 12 digits with correct check digits)"),
    }


@dataclass(frozen=True)
class EnrolmentLine:
    line: int
    inn: str
    outcome: str

    @property
    def label(self) -> str:
        return EnrolmentOutcome.LABELS[self.outcome]


@dataclass
class EnrolmentReport:
    lines: list[EnrolmentLine] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for line in self.lines if line.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {outcome: self.count(outcome) for outcome in EnrolmentOutcome.LABELS}


def _record_enrolment(*, experiment: Experiment, user, enrolled: int, source: str) -> None:
    if enrolled:
        event_record(
            actor=Actor.system("enrolment", user=user),
            action="experiment.enrolled",
            obj=experiment,
            data={"year": experiment.year, "enrolled": enrolled, "source": source},
        )


@transaction.atomic
def participation_enrol_many(
    *, experiment: Experiment, institution_ids: Iterable[int], user=None, source: str = "admin"
) -> EnrolmentResult:
    """Enrol each institution in `experiment`; already enrolled ones are left as they are.

    Idempotent: enrolling the same institutions again creates nothing.
    """
    ids = set(institution_ids)
    existing = set(
        Participation.objects.filter(experiment=experiment, institution_id__in=ids).values_list(
            "institution_id", flat=True
        )
    )
    new = sorted(ids - existing)
    Participation.objects.bulk_create(
        [Participation(experiment=experiment, institution_id=pk, enrolled_by=user) for pk in new],
        ignore_conflicts=True,
    )
    _record_enrolment(experiment=experiment, user=user, enrolled=len(new), source=source)
    return EnrolmentResult(enrolled=len(new), already_enrolled=len(ids & existing))


def participation_enrol(*, experiment: Experiment, institution: Institution, user=None) -> bool:
    """Enrol one institution; return False when it was already enrolled (nothing changes)."""
    result = participation_enrol_many(experiment=experiment, institution_ids=[institution.pk], user=user)
    return bool(result.enrolled)


def _decode(data: bytes) -> str:
    """Return the file's text (UTF-8 with or without BOM, else Windows-1251); refuse a binary file."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ValidationFailed.for_field(
            "file", _("This is a spreadsheet, not a CSV file: save it as CSV (one INN per line) and upload that.")
        )
    if b"\x00" in data:
        raise ValidationFailed.for_field("file", _("This is not a text file: upload a CSV list of INNs."))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1251")
    except UnicodeDecodeError:
        raise ValidationFailed.for_field(
            "file", _("The file is neither UTF-8 nor Windows-1251 text: save it as CSV in one of them.")
        ) from None


def _delimiter(text: str) -> str:
    """The delimiter of the file's first non-empty line: the most frequent of `;`, `,`, tab (`,` if none)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _inn_cell(cell: str) -> str:
    # Spreadsheets export an INN kept as text with a leading apostrophe, and people
    # paste INNs with spaces (also non-breaking ones) between digit groups.
    return "".join(cell.lstrip("'").split())


def inn_rows(data: bytes) -> list[tuple[int, str]]:
    """Return (line number, INN) for each non-empty line of a CSV list of INNs.

    Accepts UTF-8 (with or without BOM) or Windows-1251, `;`, `,` or tab delimited
    (taken from the first line). A header row naming an "inn"/"ИНН" column selects
    that column; otherwise the first column is the INN and every row is data.
    Raises ValidationFailed for a file that is not text (a spreadsheet, a binary).
    """
    text = _decode(data)
    rows = []
    column = 0
    header_seen = False
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    for number, row in enumerate(reader, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if not header_seen:
            header_seen = True
            names = [cell.casefold() for cell in cells]
            if "inn" in names or "инн" in names:
                column = names.index("inn") if "inn" in names else names.index("инн")
                continue
        rows.append((number, _inn_cell(cells[column]) if column < len(cells) else ""))
    return rows


@transaction.atomic
def participation_enrol_inns(*, experiment: Experiment, data: bytes, user=None) -> EnrolmentReport:
    """Enrol the institutions listed by INN in a CSV file; report every line's outcome.

    Lines are enrolled, already enrolled (also an INN repeated in the file), of an
    unknown INN or of an invalid INN. Re-importing the same file enrols nothing new.
    """
    if len(data) > MAX_INN_FILE_BYTES:
        raise ValidationFailed.for_field("file", _("The file is too large (at most 1 MB)."))
    rows = inn_rows(data)
    valid = {inn for _line, inn in rows if inn_is_valid(inn)}
    by_inn = dict(Institution.objects.filter(inn__in=valid).values_list("inn", "pk"))
    enrolled_ids = set(
        Participation.objects.filter(experiment=experiment, institution_id__in=by_inn.values()).values_list(
            "institution_id", flat=True
        )
    )
    report = EnrolmentReport()
    new: list[int] = []
    for line, inn in rows:
        if not inn_is_valid(inn):
            outcome = EnrolmentOutcome.INVALID_INN
        elif inn not in by_inn:
            outcome = EnrolmentOutcome.UNKNOWN_INN
        elif by_inn[inn] in enrolled_ids:
            outcome = EnrolmentOutcome.ALREADY_ENROLLED
        else:
            outcome = EnrolmentOutcome.ENROLLED
            enrolled_ids.add(by_inn[inn])
            new.append(by_inn[inn])
        report.lines.append(EnrolmentLine(line=line, inn=inn[:40], outcome=outcome))
    Participation.objects.bulk_create(
        [Participation(experiment=experiment, institution_id=pk, enrolled_by=user) for pk in new]
    )
    _record_enrolment(experiment=experiment, user=user, enrolled=len(new), source="csv")
    return report
