"""Checks on uploaded files before a parser opens them.

An XLSX file is a zip of XML parts: a small file can expand to gigabytes (a zip
bomb) or carry XML entity tricks. `xlsx_archive_check` refuses both from the zip's
directory and the parts' first bytes, without expanding anything into memory.
"""

import zipfile

from django.utils.translation import gettext_lazy as _

from registry.errors import ValidationFailed

MAX_UNCOMPRESSED_BYTES = 2 * 1024 * 1024 * 1024
MAX_MEMBERS = 10_000
# Shared strings and sheets of real spreadsheets compress about 5–20×; 200× is a bomb.
MAX_RATIO = 200
_SNIFF_BYTES = 64 * 1024


def xlsx_archive_check(path_or_file) -> None:
    """Raise ValidationFailed unless `path_or_file` is a plausible, bounded XLSX archive."""
    try:
        archive = zipfile.ZipFile(path_or_file)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ValidationFailed(_("The file is not a valid XLSX workbook."), code="xlsx_invalid") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ValidationFailed(_("The workbook has too many parts."), code="xlsx_bomb")
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > MAX_UNCOMPRESSED_BYTES or total > MAX_UNCOMPRESSED_BYTES:
                raise ValidationFailed(_("The workbook expands to too much data."), code="xlsx_bomb")
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1 << 20:
                raise ValidationFailed(_("The workbook is compressed suspiciously well."), code="xlsx_bomb")
        if "[Content_Types].xml" not in archive.namelist():
            raise ValidationFailed(_("The file is not a valid XLSX workbook."), code="xlsx_invalid")
        for info in infos:
            if not info.filename.endswith((".xml", ".rels")):
                continue
            with archive.open(info) as part:
                head = part.read(_SNIFF_BYTES).upper()
            if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                raise ValidationFailed(_("The workbook contains forbidden XML declarations."), code="xlsx_dtd")
    if hasattr(path_or_file, "seek"):
        path_or_file.seek(0)
