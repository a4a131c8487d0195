"""registry.bulk: reserved ids, rows written without model instances, the __any lookup, statistics."""

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction

from documents.models import Delivery, Document, Graduate
from registry.bulk import (
    InsertedReferences,
    PlannerStatistics,
    allocate_ids,
    array_literal,
    insert_rows,
    replica_role,
)
from tests.factories import DocumentFactory, GraduateFactory

pytestmark = pytest.mark.django_db


def test_reserved_ids_are_fresh_and_the_rows_keep_them(school):
    existing = GraduateFactory(institution=school)
    ids = allocate_ids(Graduate, 3)

    assert len(set(ids)) == 3 and min(ids) > existing.pk and ids == sorted(ids)
    insert_rows(
        Graduate,
        ("id", "institution_id", "last_name", "first_name", "birth_date", "snils_encrypted", "snils_hash"),
        [(pk, school.pk, f"Иванов{pk}", "Иван", "2007-05-17", b"\x01secret", f"hash-{pk}") for pk in ids],
    )

    stored = Graduate.objects.filter(pk__in=ids).order_by("pk")
    assert [g.last_name for g in stored] == [f"Иванов{pk}" for pk in ids]
    # Unlisted fields get their defaults: constant ones, and `now` for auto_now.
    assert {(g.middle_name, g.citizenship) for g in stored} == {("", "RUS")}
    assert all(g.created_at and g.updated_at for g in stored)
    assert bytes(stored[0].snils_encrypted) == b"\x01secret"
    assert GraduateFactory(institution=school).pk > max(ids)  # the sequence has moved past them


def test_unlisted_callable_defaults_are_drawn_per_row(school):
    documents = [DocumentFactory(institution=school) for _ in range(3)]

    insert_rows(
        Delivery, ("document_id", "institution_id", "action"), [(d.pk, school.pk, "publish") for d in documents]
    )

    rows = Delivery.objects.filter(document__in=documents)
    assert rows.count() == 3
    assert len({row.idempotency_key for row in rows}) == 3
    assert {(row.state, row.attempts, row.last_error) for row in rows} == {("pending", 0, "")}


def test_json_values_round_trip(school):
    document = DocumentFactory(institution=school)
    graduate = document.graduate
    [pk] = allocate_ids(type(document), 1)
    payload = {"id": pk, "holder": {"last_name": "Ёлкина"}, "honours": True, "hours": None, "grades": []}
    fields = [
        "id",
        "institution_id",
        "graduate_id",
        "kind",
        "number",
        "registration_number",
        "issued_on",
        "signed_payload",
        "grades",
        "verification_code",
    ]
    values = (pk, school.pk, graduate.pk, document.kind, "99000000000001", "R-1", document.issued_on, payload)
    insert_rows(type(document), fields, [(*values, [{"subject": "Математика", "mark": "5"}], f"code-{pk}")])

    stored = type(document).objects.get(pk=pk)
    assert stored.signed_payload == payload
    assert stored.grades == [{"subject": "Математика", "mark": "5"}]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_statistics_are_refreshed_as_a_job_doubles_its_tables(school):
    def reltuples():
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'documents_graduate'::regclass")
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE documents_graduate")
    statistics = PlannerStatistics(Graduate, min_rows=4)
    GraduateFactory.create_batch(3, institution=school)
    statistics.rows_added(3)
    assert reltuples() <= 0  # fewer rows than the threshold: nothing done yet

    GraduateFactory.create_batch(3, institution=school)
    statistics.rows_added(3)
    assert reltuples() == 6


_GRADUATE = ("id", "institution_id", "last_name", "first_name", "birth_date", "snils_encrypted", "snils_hash")
_DOCUMENT = ("id", "institution_id", "graduate_id", "kind", "number", "registration_number", "issued_on")


def _document(pk, institution, graduate_id):
    return (pk, institution.pk, graduate_id, "school_certificate", f"990000{pk:08d}", f"R-{pk}", "2024-06-20")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_checked_set_based_locks_what_it_points_at(school):
    """With the triggers off, `check` does what they would: it locks the referenced rows until commit."""
    references = InsertedReferences.load(Graduate, Document, Delivery)
    assert references is not None  # the suite's role is a superuser
    assert ("documents_document", "graduate_id", "documents_graduate", "id") in references.keys
    existing = GraduateFactory(institution=school)
    other = connection.copy()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            replica_role(cursor, True)
            [new] = allocate_ids(Graduate, 1)  # a graduate the batch itself inserts
            insert_rows(Graduate, _GRADUATE, [(new, school.pk, "Новая", "Анна", "2007-01-02", b"\x01", "h-new")])
            ids = allocate_ids(Document, 2)
            insert_rows(Document, _DOCUMENT, [_document(ids[0], school, existing.pk), _document(ids[1], school, new)])
            references.check(cursor, {"documents_graduate": [new], "documents_document": ids})
            replica_role(cursor, False)
            with other.cursor() as elsewhere:
                elsewhere.execute("SET lock_timeout = '200ms'")
                with pytest.raises(OperationalError, match="lock timeout"):
                    elsewhere.execute("DELETE FROM documents_graduate WHERE id = %s", [existing.pk])
    finally:
        other.close()
    assert set(Document.objects.filter(pk__in=ids).values_list("graduate_id", flat=True)) == {existing.pk, new}


@pytest.mark.postgres
def test_a_batch_pointing_at_a_missing_row_is_refused_and_rolled_back(school):
    references = InsertedReferences.load(Graduate, Document, Delivery)
    [pk] = allocate_ids(Document, 1)

    with (
        pytest.raises(IntegrityError, match=r"documents_document\.graduate_id = 987654321"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        replica_role(cursor, True)
        insert_rows(Document, _DOCUMENT, [_document(pk, school, 987654321)])
        references.check(cursor, {"documents_document": [pk]})

    assert not Document.objects.filter(pk=pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


@pytest.mark.postgres
def test_set_based_checks_are_off_when_the_setting_says_so(settings):
    settings.REGISTRY_SET_BASED_CHECKS = False
    assert InsertedReferences.load(Graduate, Document, Delivery) is None


@pytest.mark.postgres
def test_array_literals_round_trip_through_postgresql():
    texts = ['a"b', "back\\slash", "comma, and {braces}", "", "NULL", "Ёлкина 'quoted'"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::bigint[]", [array_literal(texts), array_literal([3, -1, 2**40])])
        assert cursor.fetchone() == (texts, [3, -1, 2**40])
    assert array_literal([1, "1"]) is None
