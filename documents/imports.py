"""Bulk import of documents from CSV and XLSX files (CONTRACTS.md, "Import file").

The upload form, the `import_documents` command and the `import_run` task all go
through `import_job_create` + `import_job_run`. The file is streamed: rows are read
one at a time and handled in batches of `BATCH_SIZE`, each batch in one
transaction that also advances the job's counters, so memory stays flat for any
file size and an interrupted run resumes after the last committed batch. On
PostgreSQL a writer thread stores batch N while batch N+1 is being validated and
signed (`_run_pipelined`): the Python work and the database's work overlap.

Each row is validated by the services' own routines (`graduate_data_errors`,
`document_data_errors`); this module adds only what needs the whole batch at once:
look-ups of existing numbers and graduates (one query per batch, never per row).

A signer's (or the command's) upload issues the documents: signed, stored and
queued for Gosuslugi. A clerk's upload stores them as drafts for a signer to issue.
A row identical to a document the institution already has counts as "already
present", so the same file uploaded twice creates nothing twice.
"""

import codecs
import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import json
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from documents.delivery import deliveries_enqueue, deliveries_enqueue_new
from documents.history import events_record
from documents.models import (
    CopyMark,
    Delivery,
    DeliveryAction,
    Document,
    DocumentStatus,
    Graduate,
    ImportJob,
    ImportJobState,
    ImportRejection,
    new_verification_codes,
)
from documents.pii import snils_encrypt, snils_lookup_hash
from documents.services import DocumentData, GraduateData, document_data_errors, graduate_data_errors
from documents.signing import build_payload, sign_payload
from documents.status_list import status_list_indexes_new
from documents.validators import snils_normalize
from experiment.services import forming_rule
from institutions.keys import signing_key_current
from institutions.models import Membership
from registry.actors import SIGNER, SYSTEM, Actor
from registry.bulk import InsertedReferences, PlannerStatistics, allocate_ids, insert_rows, replica_role
from registry.csv_safe import FORMULA_PREFIXES, neutralise_formula
from registry.errors import DomainError, NotAllowed, ValidationFailed
from registry.uploads import upload_check, xlsx_archive_check

logger = logging.getLogger(__name__)

# One batch = one transaction. 1,000 rows keeps each transaction well under a
# second (short locks on the chain head and the number index) while making the
# per-batch queries negligible per row.
BATCH_SIZE = 1000
UPLOAD_EXTENSIONS = ("csv", "xlsx")

# English column name → Russian alias, in the export's column order.
COLUMNS: dict[str, str] = {
    "kind": "вид_документа",
    "series": "серия",
    "number": "номер",
    "registration_number": "регистрационный_номер",
    "issued_on": "дата_выдачи",
    "last_name": "фамилия",
    "first_name": "имя",
    "middle_name": "отчество",
    "birth_date": "дата_рождения",
    "snils": "снилс",
    "programme_code": "код_программы",
    "programme_name": "программа",
    "qualification": "квалификация",
    "honours": "с_отличием",
    "hours": "часы",
}
REQUIRED_COLUMNS = (
    "kind",
    "number",
    "registration_number",
    "issued_on",
    "last_name",
    "first_name",
    "birth_date",
    "snils",
)
_HEADER_NAMES = {name: name for name in COLUMNS} | {alias: name for name, alias in COLUMNS.items()}

# An export prefixes a cell starting with a formula trigger (FORMULA_PREFIXES) with
# "'" and the import strips that prefix again, so exported files round-trip.

_TRUE = {"1", "yes", "true", "да", "y", "д"}
_FALSE = {"", "0", "no", "false", "нет", "n", "н"}

# Messages of this module; each reason is stored in every language of the portal.
MESSAGES = {
    "bad_date": _("Use the format YYYY-MM-DD or DD.MM.YYYY."),
    "bad_hours": _("Hours must be a whole number."),
    "bad_honours": _("Use yes/no, да/нет or 1/0."),
    "number_taken": _("A document of this kind with this series and number already exists with other data."),
    "number_elsewhere": _("A document of this kind with this series and number is already registered."),
    "duplicate_in_file": _("The file already has a different row with this kind, series and number."),
    "snils_mismatch": _("This SNILS belongs to another graduate in your records."),
    "not_text": _("The file is not a CSV text file."),
    "encoding": _("The file's encoding could not be read; save it as UTF-8 or Windows-1251."),
    "empty": _("The file is empty: the first row must be the header."),
    "missing_columns": _("Required columns are missing: %(columns)s."),
    "duplicate_columns": _("A column appears twice: %(columns)s."),
    "unknown_format": _("Upload a CSV or XLSX file."),
    "not_member": _("The uploader is no longer a staff member of this institution."),
    "other": _("The file could not be imported."),
}


class ImportFileError(Exception):
    """The file as a whole cannot be read; no row is processed."""

    def __init__(self, code: str, params: dict | None = None, text: dict | None = None):
        self.code, self.params, self.text = code, params or {}, text
        super().__init__(code)


# --- Languages ---------------------------------------------------------------------


def in_all_languages(render: Callable[[], str]) -> dict[str, str]:
    """Return {language: text} for a message rendered under each of the portal's languages."""
    texts = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            texts[code] = str(render())
    return texts


def pick_language(texts: dict, language: str | None = None) -> str:
    """The text for the reader's language, falling back to English, then anything."""
    if not isinstance(texts, dict):
        return str(texts)
    language = (language or translation.get_language() or "en").split("-")[0]
    return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")


def _message(code: str, params: dict | None = None) -> dict[str, str]:
    return in_all_languages(lambda: MESSAGES[code] % params if params else MESSAGES[code])


def job_error_text(job: ImportJob, language: str | None = None) -> str:
    """The job's fatal error in the reader's language."""
    if not job.error:
        return ""
    try:
        return pick_language(json.loads(job.error), language)
    except (ValueError, TypeError):
        return job.error


def rejection_reasons(rejection: ImportRejection, language: str | None = None) -> list[tuple[str, str]]:
    """[(column, reason)] of a rejected row in the reader's language."""
    return [(r.get("field", ""), pick_language(r.get("text", {}), language)) for r in rejection.reasons]


# --- Reading files -----------------------------------------------------------------


# The one formula neutraliser (registry/csv_safe.py), under this module's name.
neutralize = neutralise_formula


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return _unprefix(text) if text[:1] == "'" else text


def _unprefix(text: str) -> str:
    """Strip the "'" an export puts before a cell starting with a formula trigger."""
    return text[1:] if text[1:].startswith(FORMULA_PREFIXES) else text


def _detect_csv(head: bytes) -> tuple[str, str]:
    """Return (encoding, delimiter) from the first bytes of a CSV file."""
    if b"\x00" in head:
        raise ImportFileError("not_text")
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        try:
            # final=False: a multi-byte character cut at the end of `head` is fine.
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1251"
    lines = head.decode(encoding, errors="replace").splitlines()
    first = lines[0] if lines else ""
    delimiter = "," if first.count(",") > first.count(";") else ";"
    return encoding, delimiter


def _csv_rows(fh, *, clean: bool = True) -> Iterator[list[str]]:
    """Yield the records of a CSV file; `clean=False` leaves the cells as read (for counting)."""
    encoding, delimiter = _detect_csv(fh.read(64 * 1024))
    fh.seek(0)
    text = io.TextIOWrapper(fh, encoding=encoding, newline="")
    try:
        records = csv.reader(text, delimiter=delimiter)
        if not clean:
            yield from records
            return
        for record in records:
            # A CSV cell is always text: `_cell_text` reduced to what applies to text.
            yield [_unprefix(v) if v[:1] == "'" else v for v in map(str.strip, record)]
    except UnicodeDecodeError:
        raise ImportFileError("encoding") from None
    except csv.Error:
        raise ImportFileError("not_text") from None
    finally:
        text.detach()


def _xlsx_rows(fh) -> Iterator[list[str]]:
    import openpyxl

    try:
        xlsx_archive_check(fh)
    except DomainError as exc:
        message = exc.message
        raise ImportFileError("xlsx", text=in_all_languages(lambda: message)) from None
    workbook = openpyxl.load_workbook(fh, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cell_text(v) for v in row]
    finally:
        workbook.close()


def file_format(name: str) -> str:
    lower = (name or "").lower()
    if lower.endswith(".xlsx"):
        return "xlsx"
    if lower.endswith(".csv"):
        return "csv"
    raise ImportFileError("unknown_format")


def _header_map(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    duplicates = []
    for index, raw in enumerate(header):
        key = raw.strip().lstrip("\ufeff").casefold().replace(" ", "_").replace("-", "_")
        name = _HEADER_NAMES.get(key)
        if name is None:
            continue  # extra columns are allowed and ignored
        if name in columns:
            duplicates.append(raw)
        columns[name] = index
    if duplicates:
        raise ImportFileError("duplicate_columns", {"columns": ", ".join(duplicates)})
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError("missing_columns", {"columns": ", ".join(missing)})
    return columns


def read_records(fh, name: str) -> Iterator[tuple[int, dict[str, str] | None]]:
    """Yield (line, {column: text}) per data row of an open binary file; None for a blank row.

    Line numbers count the header as line 1, as a spreadsheet shows them.
    """
    rows = _xlsx_rows(fh) if file_format(name) == "xlsx" else _csv_rows(fh)
    try:
        header = next(rows, None)
        if header is None:
            raise ImportFileError("empty")
        columns = _header_map(header)
        for line, row in enumerate(rows, start=2):
            if not any(row):
                yield line, None
                continue
            width = len(row)
            yield line, {name: (row[i] if i < width else "") for name, i in columns.items()}
    finally:
        rows.close()  # while the file is still open


# --- Rows --------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    graduate: GraduateData
    document: DocumentData
    parse_errors: dict
    snils_hash: str = ""


def _parse_date(text: str, field: str, errors: dict) -> dt.date | None:
    if not text:
        return None
    if len(text) == 10 and text[4] == "-" and text[7] == "-" and text.isascii():
        try:  # the common case, in C; anything it refuses gets the full treatment below
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    errors[field] = ["bad_date"]
    return None


def parse_row(line: int, values: dict[str, str]) -> Row:
    """Turn a row's texts into typed data; format errors are kept as codes."""
    get = values.get
    errors: dict[str, list] = {}
    hours_text = get("hours", "")
    hours = None
    if hours_text:
        if hours_text.isdigit():
            hours = int(hours_text)
        else:
            errors["hours"] = ["bad_hours"]
    honours_text = get("honours", "").casefold()
    if honours_text not in _TRUE and honours_text not in _FALSE:
        errors["honours"] = ["bad_honours"]
    graduate = GraduateData(
        last_name=get("last_name", ""),
        first_name=get("first_name", ""),
        middle_name=get("middle_name", ""),
        birth_date=_parse_date(get("birth_date", ""), "birth_date", errors),
        snils=snils_normalize(get("snils", "")),
    )
    document = DocumentData(
        kind=get("kind", "").casefold(),
        series=get("series", ""),
        number=get("number", ""),
        registration_number=get("registration_number", ""),
        issued_on=_parse_date(get("issued_on", ""), "issued_on", errors),
        programme_code=get("programme_code", ""),
        programme_name=get("programme_name", ""),
        qualification=get("qualification", ""),
        hours=hours,
        honours=honours_text in _TRUE,
    )
    return Row(line=line, graduate=graduate, document=document, parse_errors=errors)


def row_errors(row: Row, institution_kind: str, today: dt.date | None = None) -> dict:
    """{field: [message]} for a row: the services' checks, plus this module's format errors."""
    today = today or timezone.localdate()
    errors = graduate_data_errors(row.graduate, today=today)
    errors.update(document_data_errors(institution_kind=institution_kind, data=row.document, today=today))
    for field, codes in row.parse_errors.items():
        errors[field] = [MESSAGES[c] for c in codes]  # the precise reason replaces "required"
    return errors


def _reasons(compute: Callable[[], dict]) -> list[dict]:
    """Render {field: [message]} in every language as [{"field", "text": {lang: message}}]."""
    per_language = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            per_language[code] = [(f, str(m)) for f, messages in compute().items() for m in messages]
    first = next(iter(per_language.values()))
    return [
        {"field": field, "text": {code: items[i][1] for code, items in per_language.items() if i < len(items)}}
        for i, (field, _m) in enumerate(first)
    ]


# --- Jobs --------------------------------------------------------------------------


def _save_upload(job: ImportJob, fileobj, name: str) -> None:
    digest = hashlib.sha256()
    for chunk in iter(lambda: fileobj.read(1 << 20), b""):
        digest.update(chunk)
    fileobj.seek(0)
    job.sha256 = digest.hexdigest()
    job.file.save(name, File(fileobj, name=name), save=False)


def _check_file_type(fileobj, name: str) -> None:
    """Refuse a file by size, name and first bytes (registry.uploads), and a CSV holding NULs."""
    if not getattr(fileobj, "name", None):
        fileobj.name = name
    upload_check(fileobj, allowed_extensions=UPLOAD_EXTENSIONS)
    if file_format(name) == "csv":
        head = fileobj.read(64 * 1024)
        fileobj.seek(0)
        if b"\x00" in head:
            raise ValidationFailed.for_field("file", MESSAGES["not_text"], code="file_type")


@transaction.atomic
def import_job_create(*, actor: Actor, institution, fileobj, name: str, dry_run: bool = False, user=None) -> ImportJob:
    """Store an uploaded file as a queued import job of `institution` (clerk, signer or system).

    The file must be a CSV or XLSX file by name and first bytes (else ValidationFailed);
    it is not parsed here. Run it with
    `import_job_run` (the `import_run` task does, after commit).
    """
    actor.require_institution(institution.pk)
    _check_file_type(fileobj, name)
    job = ImportJob(
        institution=institution,
        uploaded_by=user if user is not None else actor.user,
        original_name=name[:255],
        dry_run=dry_run,
    )
    _save_upload(job, fileobj, name.rsplit("/", 1)[-1])
    job.save()
    return job


def import_job_dispatch(job_id: int) -> None:
    """Send the job to a worker (or run it here when Celery is eager); never raises.

    With the broker away the job stays queued and its page says so; the upload
    itself has succeeded and must not look failed.
    """
    from documents.tasks import import_run

    try:
        import_run.delay(job_id)
    except Exception as exc:  # any broker failure leaves the job queued
        logger.warning("Could not send import job %s to the broker: %r", job_id, exc)


def _job_actor(job: ImportJob) -> Actor:
    if job.uploaded_by_id is None:
        return Actor(label="system:import_documents", institution=job.institution, role=SYSTEM)
    membership = Membership.objects.filter(user_id=job.uploaded_by_id, institution_id=job.institution_id).first()
    if membership is None:
        raise ImportFileError("not_member")
    return Actor.staff(user=job.uploaded_by, institution=job.institution, role=membership.role)


def _fail(job: ImportJob, text: dict) -> ImportJob:
    job.state = ImportJobState.FAILED
    job.error = json.dumps(text, ensure_ascii=False)
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "error", "finished_at"])
    return job


def _count_rows(job: ImportJob) -> int:
    """The number of data rows `read_records` will yield (blank ones included), for progress.

    Checks the header as `read_records` does, but leaves a CSV file's cells alone:
    a quick pass over a large file before the real one.
    """
    if file_format(job.original_name) != "csv":
        with job.file.open("rb") as fh:
            return sum(1 for _record in read_records(fh, job.original_name))
    with job.file.open("rb") as fh:
        rows = _csv_rows(fh, clean=False)
        try:
            header = next(rows, None)
            if header is None:
                raise ImportFileError("empty")
            _header_map([_unprefix(v) if v[:1] == "'" else v for v in map(str.strip, header)])
            return sum(1 for _record in rows)
        finally:
            rows.close()


def _batches(records: Iterator, skip: int) -> Iterator[list[tuple[int, dict | None]]]:
    """Group `records` into batches of BATCH_SIZE, after the first `skip` (committed by an earlier run)."""
    batch: list[tuple[int, dict | None]] = []
    for index, record in enumerate(records):
        if index < skip:
            continue
        batch.append(record)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def import_job_run(*, job_id: int) -> ImportJob:
    """Run (or resume) an import job to its end; idempotent.

    A job already done or failed is left alone. A job interrupted mid-way resumes
    after its last committed batch (`processed_rows`). If another runner is working
    on the same job, this one stops at its first batch without writing anything.
    """
    job = ImportJob.objects.select_related("institution", "uploaded_by").get(pk=job_id)
    if job.state in (ImportJobState.DONE, ImportJobState.FAILED):
        return job
    try:
        actor = _job_actor(job)
        issue = actor.role in (SIGNER, SYSTEM)
        experiment = None
        if issue:
            rule = forming_rule(institution=job.institution)
            if not rule.allowed:
                return _fail(job, in_all_languages(lambda: forming_rule(institution=job.institution).reason))
            experiment = rule.experiment
        if job.total_rows is None:
            job.total_rows = _count_rows(job)
        job.state = ImportJobState.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.save(update_fields=["state", "started_at", "total_rows"])
        importer = _BatchImporter(job=job, actor=actor, issue=issue, experiment=experiment)
        statistics = PlannerStatistics(Document, Graduate, Delivery)
        # Closed explicitly, so a failure mid-file leaves no reader open on a closed file.
        with job.file.open("rb") as fh, contextlib.closing(read_records(fh, job.original_name)) as records:
            if not _import_batches(importer, _batches(records, skip=job.processed_rows), statistics):
                return job
    except ImportFileError as exc:
        return _fail(job, exc.text or _message(exc.code if exc.code in MESSAGES else "other", exc.params))
    job.refresh_from_db()
    job.state = ImportJobState.DONE
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "finished_at"])
    return job


_DOCUMENT_COMPARED = (
    "registration_number",
    "issued_on",
    "programme_code",
    "programme_name",
    "qualification",
    "hours",
    "honours",
)


@dataclass
class _Prepared:
    """A batch made ready to store: validated, matched, signed, laid out as table rows.

    While it is in flight (prepared, not yet committed), the next batches are
    matched against its `documents` and `graduates` and draw no status index of
    `indexes`: what their look-ups cannot see yet.
    """

    records: list  # the file's records, to redo the batch if its write conflicts
    start: int  # the job's processed_rows before this batch
    rejected: list
    imported: int = 0
    unchanged: int = 0
    graduate_rows: list = dataclasses.field(default_factory=list)
    document_ids: list = dataclasses.field(default_factory=list)
    document_rows: Iterable = ()
    documents: dict = dataclasses.field(default_factory=dict)  # (kind, series, number) → signature
    graduates: dict = dataclasses.field(default_factory=dict)  # snils hash → new _Person
    indexes: set = dataclasses.field(default_factory=set)
    seq: int = 0  # its place in a pipelined run

    @property
    def batch_number(self) -> int:
        # Counted from the rows already done, so a resumed run numbers on.
        return self.start // BATCH_SIZE + 1


class _BatchImporter:
    """Prepares (validates, matches, signs) and stores batches of rows, each in one transaction.

    `run` does both for one batch inside its transaction. A pipelined run
    (`_run_pipelined`) prepares in the calling thread and stores in a writer
    thread (`write`), so the next batch is prepared while the database takes
    the previous one.
    """

    def __init__(self, *, job: ImportJob, actor: Actor, issue: bool, experiment):
        self.job, self.actor, self.issue, self.experiment = job, actor, issue, experiment
        self.institution = job.institution
        # Foreign keys checked once per batch where the database allows (registry.bulk).
        self.references = InsertedReferences.load(Graduate, Document, Delivery)

    def run(self, records: list[tuple[int, dict | None]]) -> bool:
        """Import `records`; return False if another runner has moved the job on."""
        for attempt in range(3):
            try:
                with transaction.atomic():
                    job = self._lock(self.job.processed_rows)
                    if job is None:
                        return False
                    self._write(self.prepare(records, job.processed_rows, stream=True), job)
                    return True
            except IntegrityError:
                # A concurrent writer took a number or a SNILS between our look-up and
                # our insert; the next attempt's look-up sees it.
                if attempt == 2:
                    raise
        return False  # pragma: no cover

    def write(self, batch: _Prepared) -> bool:
        """Store a prepared batch in its own transaction; False if another runner has moved the job on."""
        with transaction.atomic():
            job = self._lock(batch.start)
            if job is None:
                return False
            self._write(batch, job)
        return True

    def _lock(self, start: int) -> ImportJob | None:
        job = ImportJob.objects.select_for_update().get(pk=self.job.pk)
        if job.state != ImportJobState.RUNNING or job.processed_rows != start:
            return None
        return job

    def prepare(self, records: list, start: int, *, overlay: list[_Prepared] = (), stream: bool = False) -> _Prepared:
        """Validate, match and (when issuing) sign `records`, the rows after `start`.

        `overlay`: the batches in flight, ahead of this one. `stream`: sign each
        document row only as the COPY asks for it (inside the caller's transaction).
        """
        job_id = self.job.pk
        rejected: list[ImportRejection] = []
        valid: list[Row] = []
        kind = self.institution.kind
        today = timezone.localdate()
        for line, values in records:
            if values is None:
                continue
            row = parse_row(line, values)
            if row_errors(row, kind, today):
                rejected.append(
                    ImportRejection(
                        job_id=job_id, line=line, reasons=_reasons(lambda r=row: row_errors(r, kind, today))
                    )
                )
                continue
            row.snils_hash = snils_lookup_hash(row.graduate.snils)
            valid.append(row)

        accepted, unchanged, conflicts, graduates, new_graduates = self._match(valid, overlay)
        for row, code in conflicts:
            rejected.append(
                ImportRejection(
                    job_id=job_id, line=row.line, reasons=_reasons(lambda c=code: {_conflict_field(c): [MESSAGES[c]]})
                )
            )
        batch = _Prepared(records=records, start=start, rejected=rejected, imported=len(accepted), unchanged=unchanged)
        if accepted and not self.job.dry_run:
            self._lay_out(batch, accepted, graduates, new_graduates, overlay, stream)
        return batch

    def _match(self, rows: list[Row], overlay: list[_Prepared]):
        """Split valid rows into new ones, already present ones and conflicting ones.

        One query for the batch's SNILS hashes (this institution's graduates) and one
        for its numbers (any institution), each a single index look-up per value: no
        join, so neither needs more than the batch's own rows. The batches in
        `overlay` count as already stored.
        """
        existing = {}
        graduates: dict[str, _Person] = {}
        if rows:
            hashes = {row.snils_hash for row in rows}
            graduates = {
                snils_hash: _Person(pk, *names)
                for pk, snils_hash, *names in Graduate.objects.filter(
                    institution=self.institution, snils_hash__any=list(hashes)
                ).values_list("id", "snils_hash", "last_name", "first_name", "middle_name", "birth_date")
            }
            for ahead in overlay:
                for snils_hash, person in ahead.graduates.items():
                    if snils_hash in hashes:
                        graduates.setdefault(snils_hash, person)
            # A document matches a row only through one of these graduates; any
            # other graduate (or institution) makes it differ, whatever its SNILS.
            hash_of = {person.id: snils_hash for snils_hash, person in graduates.items()}
            numbers = {row.document.number for row in rows}
            fields = ("kind", "series", "number", "institution_id", "graduate_id", *_DOCUMENT_COMPARED)
            for kind, series, number, institution_id, graduate_id, *compared in Document.objects.filter(
                number__any=list(numbers)
            ).values_list(*fields):
                existing[kind, series, number] = (institution_id, hash_of.get(graduate_id), *compared)
            for ahead in overlay:
                existing.update(ahead.documents)
        new_graduates: dict[str, GraduateData] = {}
        in_batch: dict[tuple, tuple] = {}
        accepted, conflicts, unchanged = [], [], 0
        for row in rows:
            d = row.document
            key = (d.kind, d.series, d.number)
            signature = (self.institution.pk, row.snils_hash, *(getattr(d, f) for f in _DOCUMENT_COMPARED))
            found = existing.get(key) or in_batch.get(key)
            if found is not None:
                if found == signature:
                    unchanged += 1
                elif found[0] != self.institution.pk:
                    conflicts.append((row, "number_elsewhere"))
                elif key in in_batch:
                    conflicts.append((row, "duplicate_in_file"))
                else:
                    conflicts.append((row, "number_taken"))
                continue
            person = graduates.get(row.snils_hash) or new_graduates.get(row.snils_hash)
            if person is not None and (
                person.last_name.strip().casefold() != row.graduate.last_name.strip().casefold()
                or person.birth_date != row.graduate.birth_date
            ):
                conflicts.append((row, "snils_mismatch"))
                continue
            if person is None:
                new_graduates[row.snils_hash] = row.graduate
            in_batch[key] = signature
            accepted.append(row)
        return accepted, unchanged, conflicts, graduates, new_graduates

    def _lay_out(self, batch: _Prepared, rows: list[Row], graduates, new_graduates, overlay, stream: bool) -> None:
        """Build the batch's graduate and document rows, signing each document when issuing.

        No model instances: ids are reserved first, so documents name their graduates
        and signed payloads name their documents without reading anything back, and
        the rows go in as plain values (a COPY on PostgreSQL, see registry.bulk).
        """
        now = timezone.now()
        institution = self.institution
        if new_graduates:
            ids = allocate_ids(Graduate, len(new_graduates))
            for pk, (snils_hash, g) in zip(ids, new_graduates.items(), strict=True):
                person = _Person(
                    pk, g.last_name.strip(), g.first_name.strip(), (g.middle_name or "").strip(), g.birth_date
                )
                graduates[snils_hash] = batch.graduates[snils_hash] = person
                batch.graduate_rows.append(
                    (*person, institution.pk, g.citizenship or "RUS", snils_encrypt(g.snils), snils_hash, now, now)
                )
        ids = batch.document_ids = _allocate_document_ids(len(rows))
        if self.issue:
            key = signing_key_current(institution=institution)
            taken = set().union(*(ahead.indexes for ahead in overlay))
            indexes = status_list_indexes_new(len(rows), exclude=taken)
            batch.indexes = set(indexes)
            status, experiment_id, key_id, signed_at = DocumentStatus.ISSUED, self.experiment.pk, key.pk, now
        else:
            key, indexes = None, [None] * len(rows)
            status, experiment_id, key_id, signed_at = DocumentStatus.DRAFT, None, None, None
        created_by_id = self.actor.user.pk if self.actor.user is not None else None
        institution_id, job_id = institution.pk, self.job.pk
        for row in rows:
            d = row.document
            batch.documents[d.kind, d.series, d.number] = (
                institution_id,
                row.snils_hash,
                *(getattr(d, f) for f in _DOCUMENT_COMPARED),
            )

        codes = new_verification_codes(len(rows))

        def document_rows():
            for pk, index, code, row in zip(ids, indexes, codes, rows, strict=True):
                d = row.document
                person = graduates[row.snils_hash]
                payload = None
                signature = ""
                if self.issue:
                    payload = build_payload(_Unsaved(pk, code, d, institution, person, self.experiment))
                    signature = sign_payload(payload, key)
                yield (
                    pk,
                    institution_id,
                    person.id,
                    d.kind,
                    d.series,
                    d.number,
                    d.registration_number,
                    d.issued_on,
                    d.programme_code,
                    d.programme_name,
                    d.qualification,
                    d.hours,
                    d.honours,
                    [],
                    status,
                    experiment_id,
                    code,
                    payload,
                    signature,
                    key_id,
                    signed_at,
                    index,
                    job_id,
                    created_by_id,
                    now,
                    now,
                )

        # Streamed: each row goes to the COPY as soon as it is signed, so the database
        # stores one row while the next is being signed. Pipelined: signed here, now.
        batch.document_rows = document_rows() if stream else list(document_rows())

    def _write(self, batch: _Prepared, job: ImportJob) -> None:
        """Store a prepared batch and advance the job's counters, in the caller's transaction."""
        institution = self.institution
        ids = batch.document_ids
        if batch.graduate_rows or ids:
            with connection.cursor() as cursor:
                if self.references is not None:
                    replica_role(cursor, True)
                if batch.graduate_rows:
                    insert_rows(Graduate, _GRADUATE_COLUMNS, batch.graduate_rows)
                delivery_ids = []
                if ids:
                    insert_rows(Document, _DOCUMENT_COLUMNS, batch.document_rows)
                    if self.issue:
                        # One write for the batch's outbox rows; the delivery tasks go out
                        # on commit, many rows per task.
                        delivery_ids = deliveries_enqueue_new(document_ids=ids, institution_id=institution.pk)
                if self.references is not None:
                    self.references.check(
                        cursor,
                        {
                            Graduate._meta.db_table: [row[0] for row in batch.graduate_rows],
                            Document._meta.db_table: ids,
                            Delivery._meta.db_table: delivery_ids,
                        },
                    )
                    replica_role(cursor, False)
        if ids:
            events_record(
                actor=self.actor,
                action="documents.imported" if self.issue else "documents.drafted_by_import",
                object_type="importjob",
                items=[(job.pk, {"batch": batch.batch_number, "count": len(ids), "ids": [ids[0], ids[-1]]})],
                institution_id=institution.pk,
            )
        ImportRejection.objects.bulk_create(batch.rejected)
        job.processed_rows += len(batch.records)
        job.imported += batch.imported
        job.rejected += len(batch.rejected)
        job.unchanged += batch.unchanged
        job.save(update_fields=["processed_rows", "imported", "rejected", "unchanged"])
        self.job = job


# Prepared batches waiting for the writer thread, besides the one it is storing.
PIPELINE_DEPTH = 1


class _Writer(threading.Thread):
    """Stores prepared batches in order, each in its own transaction, on the thread's own connection.

    Once a batch fails (or another runner has moved the job on) the rest are
    dropped unwritten; the failure is kept in `error` for the preparing thread.
    """

    def __init__(self, importer: _BatchImporter, statistics: PlannerStatistics):
        super().__init__(name=f"import-writer-{importer.job.pk}", daemon=True)
        self.importer, self.statistics = importer, statistics
        self.queue: queue.Queue[_Prepared | None] = queue.Queue(maxsize=PIPELINE_DEPTH)
        self.committed = 0  # the seq of the last batch committed
        self.error: BaseException | None = None
        self.moved_on = False

    @property
    def stopped(self) -> bool:
        return self.error is not None or self.moved_on

    def run(self) -> None:
        try:
            while (batch := self.queue.get()) is not None:
                if self.stopped:
                    continue  # drained, so the preparing thread never waits on a full queue
                try:
                    if not self.importer.write(batch):
                        self.moved_on = True
                        continue
                    self.committed = batch.seq
                    self.statistics.rows_added(len(batch.records))
                except BaseException as exc:  # handed to the preparing thread
                    self.error = exc
        finally:
            connections.close_all()  # this thread's connections only


def _pipelined() -> bool:
    """Whether batches may be stored by a writer thread: on PostgreSQL, outside any transaction.

    Inside a caller's transaction a second connection would not see the job (and
    the batches could not commit one by one anyway). SQLite allows one writer.
    """
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _run_pipelined(importer: _BatchImporter, batches: Iterator[list], statistics) -> tuple[bool, list[list]]:
    """Prepare batches here while a writer thread stores the previous ones.

    Return (go_on, leftover): go_on is False if another runner has moved the job
    on; leftover, the batches to redo one by one after a write lost a race with a
    concurrent writer (an IntegrityError: a number, a SNILS or a status index taken
    meanwhile), in order. Any other failure of the writer is raised here, once the
    batches before it are committed and the thread has ended.
    """
    writer = _Writer(importer, statistics)
    writer.start()
    in_flight: list[_Prepared] = []
    unsent: list[list] = []
    start, seq = importer.job.processed_rows, 0
    try:
        for records in batches:
            if writer.stopped:
                unsent.append(records)
                break
            committed = writer.committed
            in_flight = [ahead for ahead in in_flight if ahead.seq > committed]
            batch = importer.prepare(records, start, overlay=in_flight)
            seq += 1
            batch.seq, start = seq, start + len(records)
            in_flight.append(batch)
            writer.queue.put(batch)
    finally:
        writer.queue.put(None)
        writer.join()
        if writer.error is not None and sys.exc_info()[1] is not None:
            logger.error("Import job %s: storing a batch failed", importer.job.pk, exc_info=writer.error)
    if isinstance(writer.error, IntegrityError):
        return True, [ahead.records for ahead in in_flight if ahead.seq > writer.committed] + unsent
    if writer.error is not None:
        raise writer.error
    return not writer.moved_on, []


def _import_batches(importer: _BatchImporter, batches: Iterator[list], statistics: PlannerStatistics) -> bool:
    """Import every batch, pipelined when possible; False if another runner has moved the job on."""
    if _pipelined():
        go_on, leftover = _run_pipelined(importer, batches, statistics)
        if not go_on:
            return False
        if not leftover:
            return True
        batches = itertools.chain(leftover, batches)
    for records in batches:
        if not importer.run(records):
            return False
        statistics.rows_added(len(records))
    return True


class _Person(NamedTuple):
    """A graduate as the import needs it: to match rows and to build payloads."""

    id: int
    last_name: str
    first_name: str
    middle_name: str
    birth_date: dt.date


_GRADUATE_COLUMNS = (
    "id",
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "institution_id",
    "citizenship",
    "snils_encrypted",
    "snils_hash",
    "created_at",
    "updated_at",
)
_DOCUMENT_COLUMNS = (
    "id",
    "institution_id",
    "graduate_id",
    "kind",
    "series",
    "number",
    "registration_number",
    "issued_on",
    "programme_code",
    "programme_name",
    "qualification",
    "hours",
    "honours",
    "grades",
    "status",
    "experiment_id",
    "verification_code",
    "signed_payload",
    "signature",
    "signing_key_id",
    "signed_at",
    "status_list_index",
    "import_job_id",
    "created_by_id",
    "created_at",
    "updated_at",
)


class _Unsaved:
    """What `build_payload` reads of a document, for an imported row not yet written.

    An imported document is an original (no copy mark, no replacement) without
    grades; everything else comes from the row, its graduate and the batch.
    """

    __slots__ = (
        "experiment",
        "experiment_id",
        "graduate",
        "honours",
        "hours",
        "institution",
        "issued_on",
        "kind",
        "number",
        "pk",
        "programme_code",
        "programme_name",
        "qualification",
        "registration_number",
        "series",
        "verification_code",
    )
    grades = ()
    copy_mark = CopyMark.ORIGINAL
    replaces_id = None

    def __init__(self, pk, code, data: DocumentData, institution, graduate: _Person, experiment):
        self.pk, self.verification_code, self.institution, self.graduate = pk, code, institution, graduate
        self.kind, self.series, self.number = data.kind, data.series, data.number
        self.registration_number, self.issued_on = data.registration_number, data.issued_on
        self.programme_code, self.programme_name = data.programme_code, data.programme_name
        self.qualification, self.hours, self.honours = data.qualification, data.hours, data.honours
        self.experiment, self.experiment_id = experiment, experiment.pk if experiment is not None else None


def _conflict_field(code: str) -> str:
    return "snils" if code == "snils_mismatch" else "number"


def _allocate_document_ids(n: int) -> list[int]:
    """Reserve `n` document ids up front: a signed payload names its document's id."""
    return allocate_ids(Document, n)


def import_job_rejections(job: ImportJob):
    return job.rejections.order_by("line").iterator(chunk_size=2000)


_ISSUE_FIELDS = [
    "status",
    "experiment",
    "status_list_index",
    "signed_payload",
    "signature",
    "signing_key",
    "signed_at",
    "updated_at",
]


def import_job_issue_drafts(*, actor: Actor, job: ImportJob) -> int:
    """Issue the drafts a clerk's upload created (signer only); return how many were issued.

    Works in batches of BATCH_SIZE, each signed, stored, queued for Gosuslugi and
    recorded as one event in its own transaction. Idempotent: a document already
    issued (here or one by one) is left alone, so running it twice issues nothing
    twice. Refused with the stage's reason when documents cannot be formed today.
    """
    actor.require_institution(job.institution_id)
    actor.require_signer()
    rule = forming_rule(institution=job.institution)
    if not rule.allowed:
        raise NotAllowed(rule.reason, code="stage_closed")
    issued = 0
    while True:
        with transaction.atomic():
            batch = list(
                Document.objects.select_for_update(of=("self",))
                .select_related("institution", "graduate")
                .filter(import_job=job, status=DocumentStatus.DRAFT)
                .order_by("id")[:BATCH_SIZE]
            )
            if not batch:
                return issued
            now = timezone.now()
            key = signing_key_current(institution=job.institution)
            for document, index in zip(batch, status_list_indexes_new(len(batch)), strict=True):
                document.status = DocumentStatus.ISSUED
                document.experiment = rule.experiment
                document.status_list_index = index
                payload = build_payload(document)
                document.signed_payload = payload
                document.signature = sign_payload(payload, key)
                document.signing_key = key
                document.signed_at = now
                document.updated_at = now
            Document.objects.bulk_update(batch, _ISSUE_FIELDS)
            deliveries_enqueue(documents=batch, action=DeliveryAction.PUBLISH)
            events_record(
                actor=actor,
                action="documents.issued_from_import",
                object_type="importjob",
                items=[(job.pk, {"count": len(batch), "ids": [batch[0].pk, batch[-1].pk]})],
                institution_id=job.institution_id,
            )
            issued += len(batch)
