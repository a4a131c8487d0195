"""Helpers shared by the cabinet, import and export tests."""

import csv
import datetime as dt
import io

import openpyxl

from tests.factories import PASSWORD, make_snils

YESTERDAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()

HEADER_EN = [
    "kind",
    "series",
    "number",
    "registration_number",
    "issued_on",
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "snils",
    "honours",
]
HEADER_RU = [
    "вид_документа",
    "серия",
    "номер",
    "регистрационный_номер",
    "дата_выдачи",
    "фамилия",
    "имя",
    "отчество",
    "дата_рождения",
    "снилс",
    "с_отличием",
]


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def good_row(n: int, *, number: str | None = None, last_name: str = "Иванов", snils: str | None = None) -> list[str]:
    return [
        "secondary_general_certificate",
        "",
        number or f"{11000000000000 + n:014d}",
        f"Р-{n}",
        YESTERDAY,
        last_name,
        "Иван",
        "Сергеевич",
        "17.05.2007",
        snils or make_snils(9000 + n),
        "нет",
    ]


def mixed_rows() -> tuple[list[list[str]], dict[int, str]]:
    """Rows of a file (without header) and {line: column rejected}; lines count the header as 1."""
    bad_snils = good_row(2)
    bad_snils[9] = "112-233-445 96"
    bad_number = good_row(3, number="1234567890123")
    bad_date = good_row(4)
    bad_date[4] = "31.02.2024"
    bad_kind = good_row(5)
    bad_kind[0] = "bachelor_diploma"
    clash = good_row(6, number=f"{11000000000000 + 1:014d}")  # same number as line 2, other data
    rows = [good_row(1), bad_snils, bad_number, bad_date, bad_kind, clash, good_row(7)]
    rejected = {3: "snils", 4: "number", 5: "issued_on", 6: "kind", 7: "number"}
    return rows, rejected


def csv_bytes(rows, *, header=HEADER_EN, delimiter=";", encoding="utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows, *, header=HEADER_EN) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def read_csv_response(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body), delimiter=";"))
