"""Bench data: institutions and experiments through the ORM (a handful), bulk rows through COPY.

Graduates, documents and deliveries are written with PostgreSQL's COPY (psycopg 3),
never the ORM, so a million rows take seconds rather than hours. Rows are valid as
the project defines them (SNILS with check digits, encrypted and keyed-hashed under
the bench master key; 14-digit certificate numbers; issued documents signed), so
the code being measured sees what production would hold.

Each purpose has its own institution(s), so a purpose's rows can be wiped and
regenerated without touching the others.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid

from tests.benchmarks.harness import log, raw_connection

LAST_NAMES = ["Иванов", "Петрова", "Сидоров", "Кузнецова", "Смирнов", "Попова", "Васильев", "Соколова"]
FIRST_NAMES = ["Иван", "Мария", "Пётр", "Анна", "Алексей", "Елена", "Дмитрий", "Ольга"]
MIDDLE_NAMES = ["Сергеевич", "Андреевна", "Игоревич", "Петровна", "", "Олегович"]
SUBJECTS = ["Математика", "Русский язык", "Физика", "История", "Литература"]
KIND = "secondary_general_certificate"

# Two-digit prefixes of the 14-digit certificate numbers, one per purpose, so the
# (kind, series, number) uniqueness never clashes between purposes.
PURPOSES = {
    "list": (1, "11"),
    "import": (2, "21"),
    "naive": (3, "31"),
    "forward": (4, "41"),
    "purge-a": (5, "51"),
    "purge-b": (6, "52"),
    "purge-c": (7, "53"),
    "purge-d": (8, "54"),
}
PURGE_INSTITUTIONS = ["purge-a", "purge-b", "purge-c", "purge-d"]
PURGE_YEAR = 2023
BULK_TABLES = ("documents_graduate", "documents_document", "documents_delivery")


# --- Reference rows (ORM, a handful) ------------------------------------------------


def _inn(n: int) -> str:
    from institutions.validators import inn10_check_digit

    first9 = f"79{n:07d}"
    return first9 + inn10_check_digit(first9)


def _ogrn(n: int) -> str:
    from institutions.validators import ogrn_check_digit

    first12 = f"102779{n:06d}"
    return first12 + ogrn_check_digit(first12)


def institution(purpose: str, *, kind: str = "school"):
    from institutions.models import Institution

    index, _ = PURPOSES[purpose]
    inst, _ = Institution.objects.get_or_create(
        inn=_inn(900000 + index),
        defaults=dict(
            full_name=f"Муниципальное бюджетное общеобразовательное учреждение «Бенчмарк {purpose}»",
            short_name=f"Бенчмарк {purpose}",
            kind=kind,
            ownership="municipal",
            ogrn=_ogrn(900000 + index),
            kpp="770101001",
            region_code="77",
        ),
    )
    return inst


def current_experiment():
    """This year's experiment with one stage open all year (forming and transfer)."""
    from django.utils import timezone

    from experiment.models import Experiment, Stage

    year = timezone.localdate().year
    exp, _ = Experiment.objects.get_or_create(
        year=year,
        defaults=dict(
            title=f"Эксперимент {year}",
            starts_on=dt.date(year, 1, 1),
            ends_on=dt.date(year, 12, 31),
            purge_on=dt.date(year + 1, 1, 1),
        ),
    )
    if not exp.stages.filter(allows_forming=True, starts_on__lte=timezone.localdate()).exists():
        Stage.objects.update_or_create(
            experiment=exp,
            number=9,
            defaults=dict(
                title="Бенчмарк",
                starts_on=dt.date(year, 1, 1),
                ends_on=dt.date(year, 12, 31),
                allows_forming=True,
                allows_transfer=True,
            ),
        )
    return exp


def ended_experiment():
    """A past experiment, ended and due for purge (the purge's subject)."""
    from experiment.models import Experiment, Stage

    exp, created = Experiment.objects.get_or_create(
        year=PURGE_YEAR,
        defaults=dict(
            title=f"Эксперимент {PURGE_YEAR} (бенчмарк)",
            starts_on=dt.date(PURGE_YEAR, 3, 15),
            ends_on=dt.date(PURGE_YEAR, 12, 31),
            purge_on=dt.date(PURGE_YEAR + 1, 1, 1),
        ),
    )
    if created:
        Stage.objects.create(
            experiment=exp,
            number=1,
            title="Формирование",
            starts_on=exp.starts_on,
            ends_on=exp.ends_on,
            allows_forming=True,
            allows_transfer=True,
        )
    return exp


def enrol(inst, exp) -> None:
    from experiment.models import Participation

    Participation.objects.get_or_create(experiment=exp, institution=inst)


def signing_key(inst):
    from institutions.keys import signing_key_current

    return signing_key_current(institution=inst)


def staff_user(username: str, *, institution=None, role: str = "signer", is_staff: bool = False):
    from django.contrib.auth import get_user_model

    from institutions.models import Membership

    user, created = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": is_staff})
    if created:
        user.set_password("bench-password-0123")
        user.save()
    if institution is not None:
        Membership.objects.get_or_create(user=user, institution=institution, defaults={"role": role})
    return user


# --- Wiping ---------------------------------------------------------------------------


def _referencing(cursor, table: str) -> list[tuple[str, str]]:
    """(table, column) pairs with a single-column foreign key to `table`.id."""
    cursor.execute(
        """
        SELECT c.conrelid::regclass::text, a.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.confrelid = %s::regclass AND array_length(c.conkey, 1) = 1
        """,
        [table],
    )
    return [(t.strip('"'), col) for t, col in cursor.fetchall() if t.strip('"') != table]


def _delete_cascade(cursor, table: str, where: str, params: list, depth: int = 0) -> int:
    """DELETE rows of `table` matching `where`, first deleting whatever references them."""
    if depth < 4:
        for ref_table, column in _referencing(cursor, table):
            _delete_cascade(cursor, ref_table, f"{column} IN (SELECT id FROM {table} WHERE {where})", params, depth + 1)
    if table == "documents_document":
        # The self-reference (replaces) is deferred; clear it so the rows can go in any order.
        cursor.execute(f"UPDATE {table} SET replaces_id = NULL WHERE replaces_id IS NOT NULL AND {where}", params)
    cursor.execute(f"DELETE FROM {table} WHERE {where}", params)
    return cursor.rowcount


def wipe(inst) -> None:
    """Delete every row that belongs to `inst` (documents, graduates, deliveries, jobs, events)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM documents_delivery WHERE institution_id = %s", [inst.pk])
        _delete_cascade(cursor, "documents_document", "institution_id = %s", [inst.pk])
        _delete_cascade(cursor, "documents_importjob", "institution_id = %s", [inst.pk])
        _delete_cascade(cursor, "documents_graduate", "institution_id = %s", [inst.pk])
        cursor.execute("DELETE FROM documents_event WHERE institution_id_ref = %s", [inst.pk])
        cursor.execute("DELETE FROM documents_eventchainhead WHERE chain = %s", [f"institution:{inst.pk}"])


def document_count(inst) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM documents_document WHERE institution_id = %s", [inst.pk])
        return cursor.fetchone()[0]


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("documents_graduate", "documents_document", "documents_delivery"):
            cursor.execute(f"VACUUM ANALYZE {table}")


# --- COPY ----------------------------------------------------------------------------


def _txt(value) -> str:
    """Render one value in COPY's text format."""
    if value is None:
        return r"\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    elif isinstance(value, (dt.date, dt.datetime, uuid.UUID)):
        return value.isoformat() if not isinstance(value, uuid.UUID) else str(value)
    else:
        value = str(value)
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


class CopyWriter:
    """COPY rows of a model: `varying` columns per row, every other column a constant.

    Columns not given take the field's default (a NOT NULL datetime without one, such
    as auto_now, takes now), so fields added to the model later need no change here.
    """

    def __init__(self, model, varying: list[str], constants: dict | None = None):
        from django.db import models as m
        from django.utils import timezone

        constants = dict(constants or {})
        now = timezone.now()
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        self.table = model._meta.db_table
        self.varying = varying
        const_cols, const_vals = [], []
        for attname, f in by_attname.items():
            if attname in varying:
                continue
            if attname in constants:
                value = constants[attname]
            elif f.primary_key:
                continue
            elif f.has_default():
                value = f.get_default()
            elif isinstance(f, m.DateTimeField) and not f.null:
                value = now
            elif f.null:
                value = None
            elif isinstance(f, (m.CharField, m.TextField)):
                value = ""
            else:
                raise ValueError(f"bench datagen: no value for {model.__name__}.{attname}")
            const_cols.append(f.column)
            const_vals.append(_txt(value))
        self.columns = [by_attname[a].column for a in varying] + const_cols
        self.suffix = ("\t" + "\t".join(const_vals) if const_vals else "") + "\n"

    def copy(self, rows) -> int:
        """Write `rows` (tuples in `varying` order); return how many."""
        conn = raw_connection()
        cols = ", ".join(f'"{c}"' for c in self.columns)
        with conn.cursor() as cursor:
            # Bench rows are valid by construction: skip the per-row foreign-key triggers
            # (session_replication_role needs a superuser, which the local bench has).
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET synchronous_commit = off")
            try:
                n = self._copy(cursor, cols, rows)
            finally:
                cursor.execute("RESET session_replication_role")
                cursor.execute("RESET synchronous_commit")
        return n

    def _copy(self, cursor, cols: str, rows) -> int:
        n = 0
        buf: list[str] = []
        size = 0
        with cursor.copy(f'COPY "{self.table}" ({cols}) FROM STDIN') as copy:
            for row in rows:
                # A row may come pre-rendered (a str in COPY text format) on hot paths.
                line = (row if isinstance(row, str) else "\t".join(map(_txt, row))) + self.suffix
                buf.append(line)
                size += len(line)
                n += 1
                if size > 1 << 20:
                    copy.write("".join(buf))
                    buf, size = [], 0
            if buf:
                copy.write("".join(buf))
        return n


SAVED_INDEXES = "bench_saved_indexes"


def restore_indexes() -> None:
    """Recreate indexes a crashed bench run dropped (see `indexes_dropped`)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {SAVED_INDEXES} (name text PRIMARY KEY, definition text NOT NULL)")
        cursor.execute(f"SELECT name, definition FROM {SAVED_INDEXES}")
        for name, definition in cursor.fetchall():
            cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
            if cursor.fetchone() is None:
                log(f"  restoring index {name}")
                cursor.execute(definition)
            cursor.execute(f"DELETE FROM {SAVED_INDEXES} WHERE name = %s", [name])


class indexes_dropped:
    """Drop a table's plain indexes for a bulk load and build them again afterwards.

    Building an index over sorted data once is much faster than maintaining it row by
    row. Indexes behind constraints (primary key, unique) stay, so uniqueness is still
    checked. The definitions are saved in a table first, so a run killed mid-load
    gets them back at its next start (`restore_indexes`).
    """

    def __init__(self, *tables: str):
        self.tables = tables
        self.saved: list[tuple[str, str]] = []

    def __enter__(self):
        from django.db import connection

        restore_indexes()
        with connection.cursor() as cursor:
            for table in self.tables:
                cursor.execute(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                    "WHERE i.tablename = %s AND i.schemaname = current_schema() AND NOT EXISTS "
                    "(SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)",
                    [table],
                )
                self.saved += cursor.fetchall()
            for name, definition in self.saved:
                cursor.execute(f"INSERT INTO {SAVED_INDEXES} (name, definition) VALUES (%s, %s)", [name, definition])
                cursor.execute(f'DROP INDEX "{name}"')
        return self

    def __exit__(self, *exc):
        from django.db import connection

        log(f"  rebuilding {len(self.saved)} indexes of {', '.join(self.tables)}")
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for name, definition in self.saved:
                cursor.execute(definition)
                cursor.execute(f"DELETE FROM {SAVED_INDEXES} WHERE name = %s", [name])
            cursor.execute("RESET maintenance_work_mem")


def _next_ids(table: str, n: int) -> int:
    """Reserve `n` ids of `table` (bench is the only writer); return the first."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')")
        seq = cursor.fetchone()[0]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        current = cursor.fetchone()[0]
        cursor.execute("SELECT last_value, is_called FROM " + seq)
        last, called = cursor.fetchone()
        first = max(current, last if called else last - 1) + 1
        cursor.execute("SELECT setval(%s, %s)", [seq, first + n - 1])
    return first


def snils(n: int) -> str:
    from documents.validators import snils_check_digits

    first9 = f"{200000000 + n:09d}"
    return first9 + snils_check_digits(first9)


def certificate_number(purpose: str, i: int) -> str:
    return f"{PURPOSES[purpose][1]}{i:012d}"


def _payload_json(doc_id, code, number, reg, issued, inst, grad, grades, year) -> str:
    last, first, middle, birth = grad
    return json.dumps(
        {
            "id": doc_id,
            "verification_code": code,
            "kind": KIND,
            "series": "",
            "number": number,
            "registration_number": reg,
            "issued_on": issued,
            "institution": {"inn": inst.inn, "ogrn": inst.ogrn, "name": inst.full_name},
            "holder": {"last_name": last, "first_name": first, "middle_name": middle, "birth_date": birth},
            "programme": {"code": "", "name": ""},
            "qualification": "",
            "hours": None,
            "honours": False,
            "grades": grades,
            "copy": "original",
            "replaces": None,
            "experiment": year,
            "legal_force": year is None,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def generate(
    inst,
    n: int,
    *,
    purpose: str,
    experiment=None,
    delivery_state: str | None = "done",
    start: int = 0,
) -> tuple[int, int]:
    """COPY `n` issued certificates of `inst`, one graduate each, and one publish delivery each.

    `delivery_state` None writes no delivery. Returns the (first, last) document id.
    Signatures are placeholders (see `resign` for real ones where a row needs them).
    """
    from django.utils import timezone

    from documents.models import Delivery, Document, Graduate
    from documents.pii import snils_encrypt, snils_lookup_hash

    key = signing_key(inst)
    now = timezone.now()
    issued = (timezone.localdate() - dt.timedelta(days=30)).isoformat()
    year = experiment.year if experiment is not None else None
    first_grad = _next_ids("documents_graduate", n)
    first_doc = _next_ids("documents_document", n)
    snils_base = PURPOSES[purpose][0] * 10_000_000 + start

    grad_writer = CopyWriter(
        Graduate,
        ["id", "last_name", "first_name", "middle_name", "birth_date", "snils_encrypted", "snils_hash"],
        {"institution_id": inst.pk, "citizenship": "RUS", "created_at": now, "updated_at": now},
    )
    holders = []

    def graduates():
        for i in range(n):
            s = snils(snils_base + i)
            holder = (
                LAST_NAMES[i % len(LAST_NAMES)],
                FIRST_NAMES[(i // 7) % len(FIRST_NAMES)],
                MIDDLE_NAMES[(i // 3) % len(MIDDLE_NAMES)],
                dt.date(2005 + i % 4, 1 + i % 12, 1 + i % 28).isoformat(),
            )
            holders.append(holder)
            yield (first_grad + i, *holder, snils_encrypt(s), snils_lookup_hash(s))

    log(f"  COPY {n:,} graduates ({purpose})")
    grad_writer.copy(graduates())

    doc_writer = CopyWriter(
        Document,
        ["id", "graduate_id", "number", "registration_number", "grades", "verification_code", "signed_payload"],
        {
            "institution_id": inst.pk,
            "kind": KIND,
            "series": "",
            "issued_on": issued,
            "programme_code": "",
            "programme_name": "",
            "qualification": "",
            "honours": False,
            "status": "issued",
            "copy_mark": "original",
            "loss_mark": "",
            "replacement_reason": "",
            "experiment_id": experiment.pk if experiment is not None else None,
            "signature": "A" * 86,
            "signing_key_id": key.pk,
            "signed_at": now,
            "annul_reason": "",
            "created_at": now,
            "updated_at": now,
        },
    )

    # Rendering a million payloads with json.dumps dominates the Python side, so the
    # payload is rendered once with sentinels and filled in per row (the values are
    # digits, codes and names: nothing JSON or COPY would have to escape).
    template = _payload_json(-1, "@CODE@", "@NUM@", "@REG@", issued, inst, ("@L@", "@F@", "@M@", "@B@"), [], year)
    template = template.replace("{", "{{").replace("}", "}}")
    for sentinel, name in (("-1", "id"), ("[]", "grades")):
        template = template.replace(f":{sentinel},", f":{{{name}}},", 1)
    for sentinel, name in (("@CODE@", "code"), ("@NUM@", "num"), ("@REG@", "reg")):
        template = template.replace(sentinel, f"{{{name}}}")
    for sentinel, name in (("@L@", "last"), ("@F@", "first"), ("@M@", "middle"), ("@B@", "birth")):
        template = template.replace(sentinel, f"{{{name}}}")
    fast = "\\" not in template
    grade_texts = [
        json.dumps(
            [{"subject": SUBJECTS[(i + k) % len(SUBJECTS)], "mark": str(3 + (i + k) % 3)} for k in range(3)],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for i in range(15)
    ]

    def documents():
        for i in range(n):
            doc_id = first_doc + i
            number = certificate_number(purpose, start + i)
            reg = f"R-{purpose}-{start + i}"
            code = secrets.token_urlsafe(16)
            grades = grade_texts[i % 15]
            last, first, middle, birth = holders[i]
            if fast:
                payload = template.format(
                    id=doc_id,
                    code=code,
                    num=number,
                    reg=reg,
                    grades=grades,
                    last=last,
                    first=first,
                    middle=middle,
                    birth=birth,
                )
                yield f"{doc_id}\t{first_grad + i}\t{number}\t{reg}\t{grades}\t{code}\t{payload}"
            else:
                payload = _payload_json(doc_id, code, number, reg, issued, inst, holders[i], json.loads(grades), year)
                yield (doc_id, first_grad + i, number, reg, json.loads(grades), code, payload)

    log(f"  COPY {n:,} documents ({purpose})")
    doc_writer.copy(documents())
    holders.clear()

    if delivery_state is not None:
        done = delivery_state == "done"
        dlv_writer = CopyWriter(
            Delivery,
            ["document_id", "idempotency_key", "portal_id"],
            {
                "institution_id": inst.pk,
                "action": "publish",
                "state": delivery_state,
                "attempts": 1 if done else 0,
                "next_attempt_at": now,
                "claimed_until": None,
                "last_error": "",
                "created_at": now,
                "updated_at": now,
                "delivered_at": now if done else None,
            },
        )
        base = uuid.uuid4().hex[:20]

        def deliveries():
            for i in range(n):
                yield (first_doc + i, f"{base}{i:012x}", f"epgu-{first_doc + i}" if done else "")

        log(f"  COPY {n:,} deliveries ({purpose})")
        dlv_writer.copy(deliveries())
    return first_doc, first_doc + n - 1


def resign(doc_ids: list[int]) -> None:
    """Give these documents their real payload and signature (the project's own functions)."""
    from documents.models import Document
    from documents.signing import sign_document

    docs = list(
        Document.objects.filter(pk__in=doc_ids).select_related("institution", "graduate", "experiment", "replaces")
    )
    for doc in docs:
        sign_document(doc)
    Document.objects.bulk_update(docs, ["signed_payload", "signature", "signing_key", "signed_at"], batch_size=500)


def csv_rows(n: int, *, purpose: str, start: int = 0):
    """Yield the import file's rows (header first) for `n` grade-11 certificates."""
    from django.utils import timezone

    issued = (timezone.localdate() - dt.timedelta(days=10)).isoformat()
    snils_base = PURPOSES[purpose][0] * 10_000_000 + start
    yield [
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
    ]
    for i in range(n):
        s = snils(snils_base + i)
        yield [
            KIND,
            "",
            certificate_number(purpose, start + i),
            f"R-{purpose}-{start + i}",
            issued,
            LAST_NAMES[i % len(LAST_NAMES)],
            FIRST_NAMES[(i // 7) % len(FIRST_NAMES)],
            MIDDLE_NAMES[(i // 3) % len(MIDDLE_NAMES)],
            dt.date(2005 + i % 4, 1 + i % 12, 1 + i % 28).isoformat(),
            f"{s[0:3]}-{s[3:6]}-{s[6:9]} {s[9:11]}",
        ]


def list_dataset(ctx: dict):
    """The documents the list rows read: scaled(1,000,000) regular certificates at one school.

    Generated once and kept between runs (and between rows of a run); regenerated only
    when the scale changed. Returns the institution.
    """
    from tests.benchmarks.harness import scaled, stopwatch

    if "list_inst" in ctx:
        return ctx["list_inst"]
    inst = institution("list")
    n = scaled(1_000_000)
    have = document_count(inst)
    if have != n:
        log(f"  list dataset: have {have:,}, want {n:,}: regenerating")
        with stopwatch() as t:
            wipe(inst)
            with indexes_dropped(*BULK_TABLES):
                generate(inst, n, purpose="list", experiment=None, delivery_state="done")
            analyze()
        log(f"  list dataset generated in {t.seconds:.0f} s")
    ctx["list_inst"] = inst
    return inst
