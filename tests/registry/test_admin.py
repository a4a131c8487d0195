"""The admin for ministry operators: permissions, pages, search, filters, counts."""

import importlib
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from documents.models import Document, Event, Graduate, ImportJob, ImportRejection
from documents.services import document_issue
from documents.validators import snils_format
from registry.admin_utils import EstimatedCountPaginator
from tests.conftest import login_to_admin
from tests.factories import (
    DocumentFactory,
    ExperimentFactory,
    GraduateFactory,
    InstitutionFactory,
    UserFactory,
    make_snils,
)

APPS = ("institutions", "experiment", "documents")
GROUP_MIGRATION = importlib.import_module("registry.migrations.0001_ministry_operators_group")


@pytest.fixture
def operator(db):
    user = UserFactory(username="operator", is_staff=True)
    user.groups.add(Group.objects.get(name="Ministry operators"))
    return user


@pytest.fixture
def operator_client(client, operator):
    login_to_admin(client, operator)
    return client


@pytest.fixture
def records(school, alice_actor):
    """One row of every model the operators' admin shows, and an issued document."""
    graduate = GraduateFactory(institution=school, last_name="Ёлкина", snils=make_snils(777))
    drafts = [DocumentFactory(graduate=graduate) for _ in range(3)]
    issued = document_issue(actor=alice_actor, document=DocumentFactory(graduate=graduate, number="55500000000001"))
    job = ImportJob.objects.create(
        institution=school, original_name="graduates.csv", sha256="0" * 64, file="imports/graduates.csv"
    )
    ImportRejection.objects.create(job=job, line=2, reasons=[{"field": "snils", "code": "invalid_snils"}])
    return {"graduate": graduate, "drafts": drafts, "issued": issued, "job": job}


def _registered():
    return [model for model in admin.site._registry if model._meta.app_label in APPS]


def _changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_operators_group_has_exactly_the_permissions_of_the_migration(db):
    group = Group.objects.get(name="Ministry operators")
    got = {(p.content_type.app_label, p.codename) for p in group.permissions.select_related("content_type")}
    want = {
        (app, f"{action}_{model}")
        for app, models in GROUP_MIGRATION.PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    }
    assert got == want
    assert not any(app == "auth" for app, _ in got)
    assert not any(codename.startswith("delete_") for _, codename in got)
    assert ("documents", "view_graduate") in got and ("documents", "change_graduate") not in got


def test_operator_sees_every_changelist_and_change_page(operator_client, operator, records):
    for model in _registered():
        url = _changelist(model)
        can_view = operator.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")
        response = operator_client.get(url)
        assert response.status_code == (200 if can_view else 403), url
        obj = model._default_manager.order_by("pk").first()
        if can_view and obj is not None:
            change = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk])
            assert operator_client.get(change).status_code == 200, change
    assert operator_client.get(reverse("admin:index")).status_code == 200


def test_institution_staff_are_refused(client, alice, records):
    client.force_login(alice)
    for model in _registered():
        response = client.get(_changelist(model))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_flag_without_the_group_gives_nothing(client, db, records):
    login_to_admin(client, UserFactory(username="stray", is_staff=True))
    for model in _registered():
        assert client.get(_changelist(model)).status_code == 403


def test_operator_cannot_manage_users_or_groups(operator_client):
    assert operator_client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert operator_client.get(reverse("admin:auth_group_changelist")).status_code == 403
    assert not Permission.objects.filter(group__name="Ministry operators", content_type__app_label="auth").exists()


def test_documents_are_only_shown_never_added_edited_or_deleted(operator_client, records):
    issued = records["issued"]
    assert operator_client.get(reverse("admin:documents_document_add")).status_code == 403
    page = operator_client.get(reverse("admin:documents_document_change", args=[issued.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert issued.signature.encode() in page.content
    # The history: the issuance recorded by the service.
    assert b"document.issued" in page.content
    before = Document.objects.get(pk=issued.pk).number
    operator_client.post(reverse("admin:documents_document_change", args=[issued.pk]), {"number": "1"})
    assert Document.objects.get(pk=issued.pk).number == before
    assert operator_client.get(reverse("admin:documents_document_delete", args=[issued.pk])).status_code == 403


def test_events_are_read_only_and_not_deletable(operator_client, records):
    event = Event.objects.filter(object_type="document", object_id=records["issued"].pk).first()
    assert event is not None
    assert operator_client.get(reverse("admin:documents_event_delete", args=[event.pk])).status_code == 403
    assert operator_client.get(reverse("admin:documents_event_add")).status_code == 403
    listed = operator_client.get(
        _changelist(Event), {"object_type": "document", "object_id": records["issued"].pk}
    ).context["cl"]
    assert {e.pk for e in listed.result_list} == {event.pk}


def test_graduate_snils_is_never_shown_in_clear(operator_client, records):
    graduate = records["graduate"]
    snils = graduate.snils
    for url in (_changelist(Graduate), reverse("admin:documents_graduate_change", args=[graduate.pk])):
        content = operator_client.get(url).content.decode()
        assert snils not in content and snils_format(snils) not in content
        assert f"***-***-*** {snils[-2:]}" in content


def test_graduate_search_by_last_name_and_by_full_snils(operator_client, records):
    graduate = records["graduate"]
    other = GraduateFactory(institution=graduate.institution, last_name="Петров")
    by_name = operator_client.get(_changelist(Graduate), {"q": "ёлки"}).context["cl"].result_list
    assert [g.pk for g in by_name] == [graduate.pk]
    by_snils = operator_client.get(_changelist(Graduate), {"q": snils_format(graduate.snils)}).context["cl"]
    assert [g.pk for g in by_snils.result_list] == [graduate.pk]
    assert other.pk not in [g.pk for g in by_snils.result_list]


def test_institution_search_by_inn_prefix_and_name_and_filters(operator_client, school):
    college = InstitutionFactory(short_name="Колледж связи", full_name="Колледж связи № 7", kind="college")
    url = _changelist(type(school))
    by_inn = operator_client.get(url, {"q": school.inn}).context["cl"].result_list
    assert school in operator_client.get(url, {"q": school.inn[:4]}).context["cl"].result_list
    assert school in by_inn and college not in by_inn
    by_name = operator_client.get(url, {"q": "КОЛЛЕДЖ СВЯЗИ"}).context["cl"].result_list
    assert list(by_name) == [college]
    by_kind = operator_client.get(url, {"kind__exact": "college"}).context["cl"].result_list
    assert list(by_kind) == [college]


def test_document_search_by_number_prefix_and_status_filter(operator_client, records):
    issued = records["issued"]
    url = _changelist(Document)
    found = operator_client.get(url, {"q": "555000"}).context["cl"].result_list
    assert list(found) == [issued]
    by_registration = operator_client.get(url, {"q": issued.registration_number}).context["cl"].result_list
    assert issued in by_registration
    only_issued = operator_client.get(url, {"status__exact": "issued"}).context["cl"].result_list
    assert list(only_issued) == [issued]
    drafts = operator_client.get(url, {"status__exact": "draft", "kind__exact": issued.kind}).context["cl"]
    assert {d.pk for d in drafts.result_list} == {d.pk for d in records["drafts"]}


def _counts_whole_table(sql: str, table: str) -> bool:
    return bool(re.search(r"COUNT\(", sql, re.I)) and f'"{table}"' in sql and "LIMIT" not in sql.upper()


@pytest.mark.postgres
def test_document_changelist_runs_no_exact_count_on_postgres(operator_client, records):
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(_changelist(Document))
        filtered = operator_client.get(_changelist(Document), {"status__exact": "draft", "q": "77"})
    assert response.status_code == filtered.status_code == 200
    assert response.context["cl"].result_count == 4
    offending = [q["sql"] for q in queries.captured_queries if _counts_whole_table(q["sql"], "documents_document")]
    assert offending == []


@pytest.mark.postgres
def test_past_the_bound_the_count_is_the_planners_estimate(operator_client, records, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 2)
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(_changelist(Document), {"status__exact": "draft"})
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 3
    assert any(q["sql"].startswith("EXPLAIN") for q in queries.captured_queries)
    assert not [q["sql"] for q in queries.captured_queries if _counts_whole_table(q["sql"], "documents_document")]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("model", "term", "index"),
    [
        ("institutions.Institution", "школа", "institution_short_name_trgm"),
        ("institutions.Institution", "7701", "institution_inn_prefix"),
        ("documents.Graduate", "ёлки", "graduate_last_name_trgm"),
        ("documents.Document", "555000", "document_number"),
    ],
)
def test_admin_searches_use_their_indexes_on_postgres(rf, operator, model, term, index):
    from django.apps import apps

    model = apps.get_model(model)
    request = rf.get("/")
    request.user = operator
    queryset, _ = admin.site._registry[model].get_search_results(request, model.objects.all(), term)
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan


def test_institution_autocomplete_answers_operators_by_name_and_inn(operator_client, school):
    url = reverse("admin:autocomplete")
    params = {"app_label": "institutions", "model_name": "membership", "field_name": "institution"}
    by_name = operator_client.get(url, params | {"term": "Алисы"}).json()["results"]
    assert [r["id"] for r in by_name] == [str(school.pk)]
    by_inn = operator_client.get(url, params | {"term": school.inn}).json()["results"]
    assert [r["id"] for r in by_inn] == [str(school.pk)]


def test_document_changelist_queries_do_not_grow_with_its_rows(operator_client, records):
    """Related columns come with the page, and no deferred field is loaded row by row."""
    url = _changelist(Document)

    def page(params):
        with CaptureQueriesContext(connection) as queries:
            response = operator_client.get(url, params)
        assert response.status_code == 200
        return response.context["cl"], [q["sql"] for q in queries.captured_queries]

    before = {key: page(params) for key, params in (("all", {}), ("issued", {"status__exact": "issued"}))}
    experiment = ExperimentFactory()
    for _ in range(6):
        other = GraduateFactory(institution=InstitutionFactory())
        DocumentFactory(graduate=other, experiment=experiment)
        DocumentFactory(graduate=other, status="issued", signature="x", signed_at=timezone.now())
    for key, params in (("all", {}), ("issued", {"status__exact": "issued"})):
        cl, sql = page(params)
        assert len(cl.result_list) > len(before[key][0].result_list)
        assert len(sql) == len(before[key][1]), sql
        (rows_sql,) = [q for q in sql if q.startswith("SELECT") and '"documents_document"."number"' in q]
        assert "signed_payload" not in rows_sql and "grades" not in rows_sql
