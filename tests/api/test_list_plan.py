"""The list's queries are served by indexes, however deep the page (PostgreSQL plans).

Timing belongs to `make bench`; here the plan's shape is checked: with sequential
scans priced out, a query that has a fitting index uses it and needs no sort.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import issue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def list_sql(client, url) -> str:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    (sql,) = [q["sql"] for q in queries.captured_queries if 'FROM "documents_document"' in q["sql"]]
    return sql


def plan_of(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("query", ["", "status=issued", "kind=secondary_general_certificate"])
def test_first_and_deep_pages_walk_an_index_without_sorting(issuer, alice_actor, query):
    for n in range(3):
        issue(alice_actor, n)
    first = issuer.get(f"/api/v1/documents/?page_size=1&{query}").json()
    for url in (f"/api/v1/documents/?page_size=1&{query}", first["next"]):
        plan = plan_of(list_sql(issuer, url))
        main_plan = plan.split("SubPlan")[0]
        assert "Seq Scan on documents_document" not in plan, plan
        assert "Sort" not in main_plan, plan
        assert "Index Scan" in main_plan and "documents_document" in main_plan, plan
