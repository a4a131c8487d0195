"""Uploads: size and type limits, and XLSX archives checked before any parser runs."""

import contextlib
import io
import os
import tracemalloc
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from registry.errors import ValidationFailed
from registry.uploads import CHUNK, upload_check, xlsx_archive_check

BILLION_LAUGHS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>"""

# Memory the check may use while refusing a hostile archive: a few chunks, never
# the inflated content (hundreds of MB for the bomb below).
MEMORY_BOUND = 4 * 1024 * 1024


def valid_xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["kind", "number", "last_name"])
    sheet.append(["basic_general_certificate", "12345678901234", "Иванова"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def replace_member(xlsx: bytes, name: str, content: bytes) -> bytes:
    """Return `xlsx` with member `name` replaced (or added) by `content`."""
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename != name:
                target.writestr(info, source.read(info))
        target.writestr(name, content)
    return out.getvalue()


def zip_bomb(inflated_mb: int = 300) -> bytes:
    """An XLSX whose sheet inflates from well under 1 MB to `inflated_mb` MB of zeros."""
    out = io.BytesIO(replace_member(valid_xlsx(), "xl/worksheets/sheet1.xml", b""))
    source = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                target.writestr(info, source.read(info))
        block = b"0" * (1024 * 1024)
        with target.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            for _ in range(inflated_mb):
                member.write(block)
    return bomb.getvalue()


def refusal_code(data, **kwargs) -> str:
    with pytest.raises(ValidationFailed) as caught:
        xlsx_archive_check(io.BytesIO(data), **kwargs)
    return caught.value.code


def peak_memory_of(func) -> int:
    tracemalloc.start()
    with contextlib.suppress(ValidationFailed):
        func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_a_real_workbook_passes_and_is_rewound():
    f = io.BytesIO(valid_xlsx())
    f.read(10)
    xlsx_archive_check(f)
    assert f.tell() == 0
    assert openpyxl.load_workbook(f).active["C2"].value == "Иванова"


def test_a_workbook_on_disk_passes(tmp_path):
    path = tmp_path / "ok.xlsx"
    path.write_bytes(valid_xlsx())
    xlsx_archive_check(path)
    xlsx_archive_check(str(path))


def test_zip_bomb_is_refused_within_a_memory_bound():
    bomb = zip_bomb(64)
    assert len(bomb) < 256 * 1024  # small on the wire, 64 MB inflated
    assert refusal_code(bomb) == "xlsx_ratio"
    assert peak_memory_of(lambda: xlsx_archive_check(io.BytesIO(bomb))) < MEMORY_BOUND


def test_archive_inflating_past_the_total_limit_is_refused_while_streaming(settings):
    # Random bytes do not compress: the ratio is fine, only the total gives it away.
    settings.REGISTRY_XLSX_MAX_UNCOMPRESSED_BYTES = 1024 * 1024

    data = replace_member(valid_xlsx(), "xl/media/image1.bin", os.urandom(2 * 1024 * 1024))
    assert refusal_code(data) == "xlsx_too_large"


def test_entity_bomb_is_refused_within_a_memory_bound():
    bomb = replace_member(valid_xlsx(), "xl/worksheets/sheet1.xml", BILLION_LAUGHS)
    assert refusal_code(bomb) == "xlsx_entities"
    assert peak_memory_of(lambda: xlsx_archive_check(io.BytesIO(bomb))) < MEMORY_BOUND


@pytest.mark.parametrize(
    "content",
    [
        # Past the first chunk, and split across two chunks: streaming must still see it.
        b"<?xml version='1.0'?>" + b" " * (3 * CHUNK) + b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>",
        b"<?xml version='1.0'?>" + b" " * (CHUNK - 25) + b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>",
        # Lower case, and a bare external entity in shared strings.
        b"<?xml version='1.0'?><!doctype x [<!entity e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
    ],
    ids=["deep", "chunk-boundary", "lower-case"],
)
def test_doctype_anywhere_in_any_part_is_refused(content):
    assert refusal_code(replace_member(valid_xlsx(), "xl/sharedStrings.xml", content)) == "xlsx_entities"


def test_utf16_part_is_refused_since_markers_would_hide_in_it():
    content = BILLION_LAUGHS.replace(b'encoding="UTF-8"', b'encoding="UTF-16"').decode().encode("utf-16")
    assert refusal_code(replace_member(valid_xlsx(), "xl/worksheets/sheet1.xml", content)) == "xlsx_encoding"


def test_too_many_members_are_refused(settings):
    settings.REGISTRY_XLSX_MAX_MEMBERS = 20
    data = valid_xlsx()
    for i in range(25):
        data = replace_member(data, f"xl/extra{i}.xml", b"<x/>")
    assert refusal_code(data) == "xlsx_too_many_parts"


@pytest.mark.parametrize(
    "data",
    [b"kind;number\nbasic;1\n", b"PK\x03\x04 truncated", b""],
    ids=["csv-renamed", "truncated-zip", "empty"],
)
def test_non_zip_is_refused(data):
    assert refusal_code(data) == "xlsx_unreadable"


def test_zip_that_is_not_a_workbook_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert refusal_code(out.getvalue()) == "xlsx_unreadable"


def test_upload_check_accepts_allowed_type_within_size():
    upload = SimpleUploadedFile("graduates.CSV", b"kind;number\n")
    assert upload_check(upload, allowed_extensions=["csv", "xlsx"], max_bytes=1024) == "csv"


@pytest.mark.parametrize("name", ["graduates.exe", "graduates.csv.html", "graduates", ".xlsx.svg"])
def test_upload_check_refuses_other_types(name):
    with pytest.raises(ValidationFailed) as caught:
        upload_check(SimpleUploadedFile(name, b"data"), allowed_extensions=["csv", "xlsx"], max_bytes=1024)
    assert caught.value.code == "upload_type"
    assert "file" in caught.value.errors


def test_upload_check_refuses_too_large_and_empty():
    with pytest.raises(ValidationFailed) as caught:
        upload_check(SimpleUploadedFile("a.csv", b"x" * 2048), allowed_extensions=["csv"], max_bytes=1024)
    assert caught.value.code == "upload_too_large"
    with pytest.raises(ValidationFailed) as caught:
        upload_check(SimpleUploadedFile("a.csv", b""), allowed_extensions=["csv"], max_bytes=1024)
    assert caught.value.code == "upload_empty"


def test_upload_check_refuses_xlsx_that_is_not_a_zip():
    with pytest.raises(ValidationFailed) as caught:
        upload_check(SimpleUploadedFile("a.xlsx", b"<html>hi</html>"), allowed_extensions=["xlsx"], max_bytes=1024)
    assert caught.value.code == "upload_type"


def test_upload_check_uses_the_configured_limit_by_default(settings):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 10
    with pytest.raises(ValidationFailed):
        upload_check(SimpleUploadedFile("a.csv", b"x" * 11), allowed_extensions=["csv"])
