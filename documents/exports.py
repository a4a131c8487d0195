"""Export of an institution's documents in the import file's format (round-trips).

Rows are streamed from the database in chunks; every text cell that a
spreadsheet would evaluate as a formula is prefixed with "'" (the import strips
that prefix again). SNILS leaves the registry in clear only in a full export,
which only a signer may make and which is recorded as an event.
"""

import csv
import tempfile
from collections.abc import Iterator

from documents.history import event_record
from documents.imports import COLUMNS, neutralize
from documents.pii import snils_decrypt
from documents.validators import snils_mask
from registry.actors import Actor

HEADER = list(COLUMNS)
_CHUNK = 2000


def export_rows(queryset, *, full_snils: bool) -> Iterator[list[str]]:
    """Yield the header, then one neutralised row per document of `queryset`."""
    yield HEADER
    documents = queryset.select_related("graduate").order_by("id").iterator(chunk_size=_CHUNK)
    for d in documents:
        g = d.graduate
        snils = snils_decrypt(g.snils_encrypted)
        values = {
            "kind": d.kind,
            "series": d.series,
            "number": d.number,
            "registration_number": d.registration_number,
            "issued_on": d.issued_on.isoformat(),
            "last_name": g.last_name,
            "first_name": g.first_name,
            "middle_name": g.middle_name,
            "birth_date": g.birth_date.isoformat(),
            "snils": snils if full_snils else snils_mask(snils),
            "programme_code": d.programme_code,
            "programme_name": d.programme_name,
            "qualification": d.qualification,
            "honours": "yes" if d.honours else "no",
            "hours": "" if d.hours is None else str(d.hours),
        }
        yield [neutralize(values[name]) for name in HEADER]


def export_start(*, actor: Actor, institution, full_snils: bool, count: int) -> None:
    """Check who may export and record a full export (with SNILS) as an event.

    Anyone on the institution's staff may export; only a signer may include SNILS.
    """
    actor.require_institution(institution.pk)
    if full_snils:
        actor.require_signer()
        event_record(
            actor=actor,
            action="documents.exported_with_snils",
            object_type="institution",
            object_id=institution.pk,
            institution_id=institution.pk,
            data={"count": count},
        )


class _Echo:
    def write(self, value):
        return value


def csv_stream(rows: Iterator[list[str]]) -> Iterator[str]:
    """CSV text, `;`-separated, UTF-8 with a BOM so spreadsheets read Cyrillic."""
    writer = csv.writer(_Echo(), delimiter=";")
    yield "\ufeff"
    for row in rows:
        yield writer.writerow(row)


def xlsx_file(rows: Iterator[list[str]]):
    """Write rows to a temporary XLSX file (write-only mode: flat memory); return it open."""
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("documents")
    for row in rows:
        # Every cell is text: a number such as 00012 keeps its zeros, and text is
        # never taken for a formula (neutralised above as well).
        sheet.append(row)
    out = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - the response streams and closes it
    workbook.save(out)
    out.seek(0)
    return out
