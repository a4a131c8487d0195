"""Public verification of documents: by code, by number and holder, by signed file.

Anyone may ask, without logging in, so each answer shows only what a verifier
needs: the status, the issuing institution, the kind and date, and the holder's
initials. What is shown comes from the signed payload (what the institution
signed), never from columns that could have changed since.

Every query checks the signature against the key it names and the key's
revocation: a signature made from the moment a key was declared compromised no
longer counts. A purged document and one that never existed look the same,
because after the purge nothing is left to tell them apart.
"""

import datetime as dt
import functools
import json
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import connections, models, router
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from psycopg.types.datetime import TimestamptzLoader

from documents.kinds import DocumentKind
from documents.models import Document, DocumentStatus
from documents.signing import ALG, signature_is_valid
from institutions.keys import signed_with_compromised_key
from institutions.models import SigningKey
from registry.errors import ValidationFailed

MAX_SIGNED_FILE_BYTES = 256 * 1024
# Codes are 22 characters (documents.models); a longer one is refused before any query.
MAX_CODE_LENGTH = 64
_MAX_REPLACEMENT_HOPS = 20
_SHOWN = (DocumentStatus.ISSUED, DocumentStatus.ANNULLED)


class VerificationStatus(models.TextChoices):
    VALID = "valid", _("Valid")
    ANNULLED = "annulled", _("Annulled")
    REPLACED = "replaced", _("Replaced")
    SIGNATURE_INVALID = "signature_invalid", _("Signature invalid")
    KEY_REVOKED = "key_revoked", _("Signing key revoked")
    NOT_FOUND = "not_found", _("Not found or purged")


@dataclass
class Verification:
    """The answer to one verification query; `status` decides what the rest means."""

    status: str
    document: Document | None = None
    current: Document | None = None
    payload: dict = field(default_factory=dict)
    annulled_at: dt.datetime | None = None
    annul_reason: str = ""
    revoked_at: dt.datetime | None = None
    # Set when a presented file's signature checked out but the registry has no
    # record of it (purged, or never registered).
    genuine_signature: bool = False

    @property
    def found(self) -> bool:
        return self.status != VerificationStatus.NOT_FOUND

    @property
    def status_label(self) -> str:
        return VerificationStatus(self.status).label

    @property
    def kind(self) -> str:
        return self.payload.get("kind", "")

    @property
    def kind_label(self) -> str:
        try:
            return DocumentKind(self.kind).label
        except ValueError:
            return self.kind

    @property
    def series(self) -> str:
        return self.payload.get("series") or ""

    @property
    def number(self) -> str:
        return self.payload.get("number") or ""

    @property
    def issued_on(self) -> dt.date | None:
        try:
            return dt.date.fromisoformat(self.payload["issued_on"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def institution(self) -> dict:
        inst = self.payload.get("institution") or {}
        return {"inn": inst.get("inn", ""), "ogrn": inst.get("ogrn", ""), "name": inst.get("name", "")}

    @property
    def holder_initials(self) -> str:
        holder = self.payload.get("holder") or {}
        return mask_name(holder.get("last_name", ""), holder.get("first_name", ""), holder.get("middle_name", ""))

    @property
    def experimental(self) -> bool:
        """Experimental documents have no legal force; say so whenever in doubt."""
        return self.payload.get("experiment") is not None or self.payload.get("legal_force") is not True

    @property
    def current_url(self) -> str:
        return verify_url(self.current) if self.current is not None else ""

    def as_dict(self) -> dict:
        """Return the minimal JSON answer for the API (no personal data beyond initials)."""
        if not self.found:
            return {"status": self.status}
        return {
            "status": self.status,
            "kind": self.kind,
            "series": self.series,
            "number": self.number,
            "issued_on": self.payload.get("issued_on"),
            "institution": {"inn": self.institution["inn"], "name": self.institution["name"]},
            "holder": self.holder_initials,
            "experiment": self.payload.get("experiment"),
            "legal_force": not self.experimental,
            "annulled_at": self.annulled_at.isoformat() if self.annulled_at else None,
            "annul_reason": self.annul_reason or None,
            "key_revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "replaced_by": (
                {"verification_code": self.current.verification_code, "url": self.current_url}
                if self.current is not None
                else None
            ),
        }


def mask_name(*parts: str) -> str:
    """Return initials only: "Иванов Иван Иванович" → "И. И. И."."""
    return " ".join(f"{p.strip()[0].upper()}." for p in parts if p and p.strip())


def verify_url(document: Document) -> str:
    return reverse("verify-code", args=[document.verification_code])


def _normalise_name(value: str) -> str:
    # Registry clerks and verifiers disagree on "ё" and on case; neither changes
    # who the person is.
    return " ".join((value or "").casefold().replace("ё", "е").split())


def _documents():
    return Document.objects.select_related("signing_key", "institution", "graduate").filter(status__in=_SHOWN)


def _current_replacement(document: Document) -> Document | None:
    """Follow the replacement chain (duplicate, correction) to its newest document."""
    current, hops = None, 0
    cursor = document
    while hops < _MAX_REPLACEMENT_HOPS:
        nxt = Document.objects.filter(replaces=cursor, status__in=_SHOWN).order_by("-id").first()
        if nxt is None:
            break
        current = cursor = nxt
        hops += 1
    return current


def _identity_matches(document: Document, payload: dict) -> bool:
    """The signed payload must be this document's: its id, code, kind and number."""
    return (
        isinstance(payload, dict)
        and payload.get("id") == document.pk
        and payload.get("verification_code") == document.verification_code
        and payload.get("kind") == document.kind
        and (payload.get("series") or "") == document.series
        and payload.get("number") == document.number
    )


def _outside_validity(key: SigningKey, signed_at: dt.datetime | None) -> bool:
    """A retired (rotated, not revoked) key signs nothing after its `not_after`."""
    if key.revoked_at is not None or signed_at is None:
        return False  # revocation is judged on its own, with its own verdict
    return signed_at < key.not_before or (key.not_after is not None and signed_at > key.not_after)


def _judge(document: Document, *, payload: dict | None = None, signature: str | None = None) -> Verification:
    """Return the verdict for a registry document, optionally for a presented signed copy."""
    stored_payload = document.signed_payload or {}
    key = document.signing_key
    if payload is None:
        payload, signature = stored_payload, document.signature
    result = Verification(status=VerificationStatus.VALID, document=document, payload=payload)
    if (
        key is None
        or not _identity_matches(document, payload)
        or signature != document.signature
        or not signature_is_valid(payload, signature, key)
        or _outside_validity(key, document.signed_at)
    ):
        result.status = VerificationStatus.SIGNATURE_INVALID
        return result
    if signed_with_compromised_key(key=key, signed_at=document.signed_at):
        result.status = VerificationStatus.KEY_REVOKED
        result.revoked_at = key.revoked_at
        return result
    if document.status == DocumentStatus.ANNULLED:
        result.annulled_at, result.annul_reason = document.annulled_at, document.annul_reason
        result.current = _current_replacement(document)
        result.status = VerificationStatus.REPLACED if result.current else VerificationStatus.ANNULLED
    return result


def verify_document(document: Document) -> Verification:
    """Return the verdict for a registry document the caller already holds."""
    if document.status not in _SHOWN:
        return Verification(status=VerificationStatus.NOT_FOUND)
    return _judge(document)


# The hot path of the partner API and the QR page: one fixed statement (compiling the
# ORM query would cost several times the indexed read), only the columns the verdict
# reads, and the signing key joined in. The verdict reads the signed payload, not
# the rows it was built from. The code is unique: no ORDER BY, no LIMIT.
_DOCUMENT_COLUMNS = (
    "id", "verification_code", "kind", "series", "number", "status", "annulled_at", "annul_reason",
    "signed_payload", "signature", "signed_at", "signing_key_id",
)  # fmt: skip
_KEY_FIELDS = ("public_key", "not_before", "not_after", "revoked_at")
_KEY_COLUMNS = ", ".join(f"k.{name}" for name in _KEY_FIELDS)
_BY_CODE_SQL = (
    # Table and column names are the models' constants; every value is a parameter.
    f"SELECT {', '.join(f'd.{name}' for name in _DOCUMENT_COLUMNS)}, {_KEY_COLUMNS} "  # noqa: S608
    f"FROM {Document._meta.db_table} d LEFT JOIN {SigningKey._meta.db_table} k ON k.id = d.signing_key_id "
    f"WHERE d.verification_code = %s AND d.status IN ({', '.join(['%s'] * len(_SHOWN))})"
)


def _by_code_cursor(db: str):
    """A cursor for _BY_CODE_SQL: on PostgreSQL, one that has the statement planned once per connection.

    Planning the statement costs PostgreSQL about three times its execution (the
    planner weighs each of the documents table's indexes): 0.23 ms a query as sent
    by Django's cursors, 0.06 ms prepared (pgbench, 1M documents). Django turns
    psycopg's prepared statements off and binds parameters client-side, which can
    never prepare; this cursor binds server-side and psycopg prepares the statement
    on its first execution on each connection (protocol-level, which PgBouncer 1.21+
    keeps in transaction mode). Django's CursorWrapper keeps query logging and error
    translation. REGISTRY_PREPARED_VERIFY=0 turns it off (an older pooler).
    """
    connection = connections[db]
    # A logged query (DEBUG, a test capturing queries) goes the plain way, whose log
    # shows the statement: a prepared one is logged without its text.
    if (
        connection.vendor != "postgresql"
        or connection.queries_logged
        or not getattr(settings, "REGISTRY_PREPARED_VERIFY", True)
    ):
        return connection.cursor()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Only server-side binding cursors ever prepare, and Django's are client-side.
        raw.prepare_threshold = 0
    cursor = psycopg.Cursor(raw)
    if connection.timezone == dt.UTC:
        # Django loads timestamptz with a Python loader that sets its own tzinfo; on a
        # UTC session psycopg's own loader (in C) gives the same datetimes, tzinfo
        # datetime.UTC included: 3% of a verification.
        cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
    return connection.make_cursor(cursor)


@functools.lru_cache(maxsize=32)
def _converters(connection, model: type[models.Model], names: tuple[str, ...]) -> tuple:
    """Per column of `names`: (attname, the converters the ORM would apply), for one connection."""
    result = []
    for name in names:
        model_field = model._meta.get_field(name)
        column = model_field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + model_field.get_db_converters(connection)
        result.append((model_field.attname, column, tuple(converters)))
    return tuple(result)


def _from_columns(model: type[models.Model], db: str, names: tuple[str, ...], values) -> models.Model:
    """An instance of `model` from a fixed statement's columns, converted as the ORM would
    (SQLite returns datetimes and JSON as text, for one); its other fields stay deferred."""
    connection = connections[db]
    loaded = {}
    for (attname, column, converters), value in zip(_converters(connection, model, names), values, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        loaded[attname] = value
    ordered = [f.attname for f in model._meta.concrete_fields if f.attname in loaded]  # from_db's order
    return model.from_db(db, ordered, [loaded[name] for name in ordered])


def verify_by_code(*, code: str) -> Verification:
    """Verify the document behind a QR code; unknown or purged codes give NOT_FOUND."""
    code = (code or "").strip()
    if not code or len(code) > MAX_CODE_LENGTH:
        return Verification(status=VerificationStatus.NOT_FOUND)
    # A plain cursor: a RawQuerySet would resolve the model's columns on every call,
    # which costs more than the indexed read.
    db = router.db_for_read(Document)
    with _by_code_cursor(db) as cursor:
        cursor.execute(_BY_CODE_SQL, [code, *_SHOWN])
        row = cursor.fetchone()
    if row is None:
        return Verification(status=VerificationStatus.NOT_FOUND)
    split = len(_DOCUMENT_COLUMNS)
    document = _from_columns(Document, db, _DOCUMENT_COLUMNS, row[:split])
    if document.signing_key_id is not None:
        document.signing_key = _from_columns(
            SigningKey, db, ("id", *_KEY_FIELDS), (document.signing_key_id, *row[split:])
        )
    return _judge(document)


def verify_by_details(*, number: str, last_name: str, birth_date: dt.date, series: str = "") -> Verification:
    """Verify by number (and series when given), the holder's surname and birth date.

    All three must match one issued or annulled document; the surname is compared
    without regard to case or "ё". Several matches (the same number under
    different series, series not given) resolve to the newest.
    """
    number, series = (number or "").strip(), (series or "").strip()
    wanted = _normalise_name(last_name)
    if not number or not wanted or birth_date is None:
        return Verification(status=VerificationStatus.NOT_FOUND)
    candidates = _documents().filter(number=number, graduate__birth_date=birth_date)
    if series:
        candidates = candidates.filter(series=series)
    for document in candidates.order_by("-id")[:20]:
        if _normalise_name(document.graduate.last_name) == wanted:
            return _judge(document)
    return Verification(status=VerificationStatus.NOT_FOUND)


def parse_signed_form(data: bytes | str) -> dict:
    """Parse an uploaded signed document (CONTRACTS "Signed document"); raise ValidationFailed."""
    if isinstance(data, bytes):
        if len(data) > MAX_SIGNED_FILE_BYTES:
            raise ValidationFailed.for_field("file", _("The file is too large for a signed document."))
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed.for_field("file", _("The file is not UTF-8 JSON.")) from None
    try:
        form = json.loads(data)
    except (ValueError, RecursionError):
        raise ValidationFailed.for_field("file", _("The file is not valid JSON.")) from None
    if not (
        isinstance(form, dict)
        and isinstance(form.get("payload"), dict)
        and isinstance(form.get("kid"), str)
        and isinstance(form.get("signature"), str)
        and form.get("alg", ALG) == ALG
    ):
        raise ValidationFailed.for_field(
            "file", _("This is not a signed document: expected payload, alg, kid and signature.")
        )
    return form


def verify_signed_form(*, form: dict) -> Verification:
    """Verify a signed document presented by its holder (the JSON of the signed form).

    The signature is checked against the key named by `kid` first, so a forged or
    altered file is SIGNATURE_INVALID whatever the registry holds. A genuine file
    is then judged by the registry's record: its status, and the signing time the
    registry recorded (a presented file cannot prove when it was signed, so with a
    revoked key and no record it counts as signed with the compromised key).
    """
    payload, signature = form["payload"], form["signature"]
    key = SigningKey.objects.select_related("institution").filter(kid=form["kid"]).first()
    if key is None or not signature_is_valid(payload, signature, key):
        return Verification(status=VerificationStatus.SIGNATURE_INVALID, payload=payload)
    code = payload.get("verification_code")
    document = _documents().filter(verification_code=code).first() if isinstance(code, str) else None
    if document is None:
        if key.revoked_at is not None:
            return Verification(status=VerificationStatus.KEY_REVOKED, payload=payload, revoked_at=key.revoked_at)
        return Verification(status=VerificationStatus.NOT_FOUND, genuine_signature=True)
    if document.signing_key_id != key.pk:
        return Verification(status=VerificationStatus.SIGNATURE_INVALID, document=document, payload=payload)
    return _judge(document, payload=payload, signature=signature)
