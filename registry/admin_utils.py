"""Admin changelists that stay fast on a million rows.

Django's changelist counts its rows exactly on every page (`SELECT COUNT(*)`),
which on PostgreSQL reads the whole table or index: seconds on a million
documents. `EstimatedCountPaginator` counts exactly only up to a bound and beyond
it uses the planner's estimate (pg_class.reltuples unfiltered, EXPLAIN filtered).
SQLite, the embedded demo, always counts exactly: its tables are small.
`LargeTableChangeList` loads only the columns a page shows (`list_columns`), so a
page of documents does not carry their signed payloads along.
"""

import json

from django.contrib.admin.options import ShowFacets
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """A paginator whose count is exact up to `exact_count_limit`, estimated beyond.

    The bounded count is `SELECT COUNT(*) FROM (… LIMIT n+1)`: it stops after n+1
    rows whatever the table's size. Only when it hits the bound does the planner's
    estimate stand in; the last pages may then be empty or missing, the price of not
    scanning the table.
    """

    exact_count_limit = 1_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return queryset.count()
        bounded = queryset.order_by()[: self.exact_count_limit + 1].count()
        if bounded <= self.exact_count_limit:
            return bounded
        return max(self._estimate(queryset, connection), bounded)

    def _estimate(self, queryset, connection) -> int:
        query = queryset.query
        with connection.cursor() as cursor:
            if not query.where and not query.distinct:
                # Unfiltered: the table's row estimate kept by VACUUM/ANALYZE. -1 means
                # never analysed; EXPLAIN below still estimates from the table's size.
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
                if row and row[0] >= 0:
                    return int(row[0])
            sql, params = queryset.order_by().query.sql_with_params()
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])


class LargeTableChangeList(ChangeList):
    """A changelist whose page loads only its ModelAdmin's `list_columns`."""

    def get_results(self, request):
        super().get_results(request)
        columns = getattr(self.model_admin, "list_columns", None)
        if columns:
            self.result_list = self.result_list.only(*columns)


class LargeTableAdminMixin:
    """For a ModelAdmin over a table that grows to millions of rows.

    No exact total ("N total" next to the search box), no facet counts (each is a
    COUNT over the table), and the estimating paginator.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    # The fields a changelist page loads (`QuerySet.only`), or None for whole rows.
    # Only the page shown is narrowed: actions and the change form get whole rows.
    list_columns: list[str] | None = None

    def get_changelist(self, request, **kwargs):
        return LargeTableChangeList


class ReadOnlyAdminMixin:
    """A ModelAdmin that only shows: nothing is added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
