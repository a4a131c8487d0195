"""Checks on uploaded files, run before anything parses them.

`upload_check` limits size and type; `xlsx_archive_check` refuses XLSX files built
to exhaust the server — a zip bomb (huge when inflated) or an XML entity bomb
(a DOCTYPE declaring nested entities) — reading the zip directory and streaming
each part in small chunks, so a hostile file costs bounded memory to refuse.
"""

import os
import zipfile
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from registry.errors import ValidationFailed

# Chunk for streaming a zip member: small enough to keep memory flat, large
# enough that the inflate call overhead stays negligible.
CHUNK = 64 * 1024
# Markers of a document type declaration — where entities are declared. XLSX parts
# never carry one; openpyxl and the XML parsers under it would expand what it declares.
_MARKERS = (b"<!doctype", b"<!entity")
_OVERLAP = max(len(m) for m in _MARKERS) - 1
# Byte patterns that open UTF-16/UTF-32 XML: in those encodings the markers above
# would not appear as ASCII bytes, so such parts are refused outright (XLSX parts
# are UTF-8).
_WIDE_STARTS = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
# Below this inflated size a member's ratio does not matter: a part of repetitive
# XML may compress very well and still be harmless.
RATIO_SLACK = 1024 * 1024


def _refuse(message, code: str, field: str = "file") -> ValidationFailed:
    return ValidationFailed(message, code=code, errors={field: [message]})


def upload_check(uploaded_file, *, allowed_extensions, max_bytes: int | None = None) -> str:
    """Refuse an upload that is too large or not of an allowed type; return its extension.

    `allowed_extensions` are lower-case without the dot ("csv", "xlsx"). An XLSX
    must also be a zip archive (its first bytes), so a renamed file of another
    kind is refused before a parser sees it; the archive itself is checked by
    `xlsx_archive_check`.
    """
    max_bytes = max_bytes if max_bytes is not None else settings.REGISTRY_MAX_UPLOAD_BYTES
    name = os.path.basename(getattr(uploaded_file, "name", "") or "")
    extension = Path(name).suffix.lower().lstrip(".")
    allowed = {e.lower().lstrip(".") for e in allowed_extensions}
    if extension not in allowed:
        raise _refuse(
            _("Files of this type are not accepted. Accepted: %(types)s.")
            % {"types": ", ".join(sorted(f".{e}" for e in allowed))},
            code="upload_type",
        )
    size = getattr(uploaded_file, "size", None)
    if size is None:
        uploaded_file.seek(0, os.SEEK_END)
        size = uploaded_file.tell()
        uploaded_file.seek(0)
    if size == 0:
        raise _refuse(_("The file is empty."), code="upload_empty")
    if size > max_bytes:
        raise _refuse(
            _("The file is too large: at most %(mb)d MB.") % {"mb": max(1, max_bytes // (1024 * 1024))},
            code="upload_too_large",
        )
    if extension == "xlsx":
        head = _read_head(uploaded_file, 4)
        if head != b"PK\x03\x04":
            raise _refuse(_("This is not an XLSX file."), code="upload_type")
    return extension


def _read_head(f, n: int) -> bytes:
    position = f.tell()
    f.seek(0)
    head = f.read(n)
    f.seek(position)
    return head


def xlsx_archive_check(file_or_path) -> None:
    """Refuse an XLSX archive that could exhaust memory or time when parsed.

    Refused: not a zip; more than REGISTRY_XLSX_MAX_MEMBERS members; encrypted
    members; a total inflated size over REGISTRY_XLSX_MAX_UNCOMPRESSED_BYTES; a
    member or the whole inflating more than REGISTRY_XLSX_MAX_RATIO times its
    compressed size; any part declaring a DOCTYPE or an ENTITY, or in a UTF-16/32
    encoding. Sizes declared in the zip directory are checked first, then counted
    again while streaming, since a hostile archive may declare small sizes.

    Raises ValidationFailed; returns None when the archive is acceptable. A file
    object is rewound to its start afterwards, so the caller can parse it.
    """
    max_members = settings.REGISTRY_XLSX_MAX_MEMBERS
    max_total = settings.REGISTRY_XLSX_MAX_UNCOMPRESSED_BYTES
    max_ratio = settings.REGISTRY_XLSX_MAX_RATIO
    is_file = hasattr(file_or_path, "read")
    if is_file:
        file_or_path.seek(0)
    try:
        with zipfile.ZipFile(file_or_path) as archive:
            infos = archive.infolist()
            _check_directory(infos, max_members=max_members, max_total=max_total, max_ratio=max_ratio)
            if "[Content_Types].xml" not in archive.namelist():
                raise _refuse(_("This is not a readable XLSX file."), code="xlsx_unreadable")
            total = 0
            for info in infos:
                total += _scan_member(archive, info, budget=max_total - total, max_ratio=max_ratio)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError, ValueError) as exc:
        # zipfile's refusals of malformed headers, truncated data, bad CRCs and
        # unsupported compression methods.
        raise _refuse(_("This is not a readable XLSX file."), code="xlsx_unreadable") from exc
    finally:
        if is_file:
            file_or_path.seek(0)


def _check_directory(infos, *, max_members: int, max_total: int, max_ratio: int) -> None:
    if len(infos) > max_members:
        raise _refuse(_("The XLSX file has too many parts."), code="xlsx_too_many_parts")
    declared = 0
    compressed = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise _refuse(_("Encrypted XLSX files are not accepted."), code="xlsx_encrypted")
        declared += info.file_size
        compressed += info.compress_size
        if info.file_size > max_ratio * max(info.compress_size, 1) + RATIO_SLACK:
            raise _refuse(_("The XLSX file is compressed suspiciously well (a zip bomb?)."), code="xlsx_ratio")
    if declared > max_total:
        raise _refuse(_("The XLSX file is too large once unpacked."), code="xlsx_too_large")
    if declared > max_ratio * max(compressed, 1) + RATIO_SLACK:
        raise _refuse(_("The XLSX file is compressed suspiciously well (a zip bomb?)."), code="xlsx_ratio")


def _scan_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, budget: int, max_ratio: int) -> int:
    """Stream one member: count its real inflated size and look for DTD markers."""
    seen = 0
    tail = b""
    limit = min(budget, max_ratio * max(info.compress_size, 1) + RATIO_SLACK)
    with archive.open(info) as member:
        while chunk := member.read(CHUNK):
            if seen == 0 and chunk.startswith(_WIDE_STARTS):
                raise _refuse(_("The XLSX file has a part in an unsupported encoding."), code="xlsx_encoding")
            seen += len(chunk)
            if seen > limit:
                raise _refuse(_("The XLSX file is too large once unpacked."), code="xlsx_too_large")
            window = (tail + chunk).lower()
            if any(marker in window for marker in _MARKERS):
                raise _refuse(_("The XLSX file declares XML entities, which are not accepted."), code="xlsx_entities")
            tail = window[-_OVERLAP:]
    return seen
