"""Changelists over the tables that grow with the registry never count them exactly."""

import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from documents.models import Delivery, Document, Event, Graduate, ImportRejection
from documents.services import document_issue
from registry.admin_utils import EstimatedCountPaginator
from tests.conftest import login_to_admin
from tests.factories import DocumentFactory, GraduateFactory, UserFactory

# One row per document or more: millions in a year of full operation.
LARGE = [Document, Delivery, Event, Graduate, ImportRejection]


@pytest.mark.parametrize("model", LARGE, ids=lambda m: m.__name__)
def test_large_tables_use_the_estimating_changelist(model):
    model_admin = admin.site._registry[model]
    assert issubclass(model_admin.paginator, EstimatedCountPaginator)
    assert model_admin.show_full_result_count is False


@pytest.mark.postgres
@pytest.mark.parametrize("model", LARGE, ids=lambda m: m.__name__)
def test_large_changelists_run_no_unbounded_count_on_postgres(client, school, alice_actor, model):
    graduate = GraduateFactory(institution=school)
    document_issue(actor=alice_actor, document=DocumentFactory(graduate=graduate, number="55500000000009"))
    login_to_admin(client, UserFactory(username="root", is_staff=True, is_superuser=True))
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    table = model._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    unbounded = [
        q["sql"]
        for q in queries.captured_queries
        if re.search(r"COUNT\(", q["sql"], re.I) and f'"{table}"' in q["sql"] and "LIMIT" not in q["sql"].upper()
    ]
    assert unbounded == []


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("model", "params", "index"),
    [
        (Delivery, {"action__exact": "withdraw"}, "delivery_action_id"),
        (Delivery, {"state__exact": "failed"}, "delivery_state_id"),
        (Document, {"copy_mark__exact": "duplicate"}, "document_duplicate_id"),
        (Document, {"status__exact": "annulled"}, "document_status_id"),
    ],
)
def test_large_changelist_filters_have_their_index_on_postgres(rf, db, model, params, index):
    request = rf.get("/", params)
    request.user = UserFactory(username="root", is_staff=True, is_superuser=True)
    changelist = admin.site._registry[model].get_changelist_instance(request)
    sql, sql_params = changelist.get_queryset(request)[:100].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, sql_params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
