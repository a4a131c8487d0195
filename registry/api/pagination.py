"""Cursor pagination: no COUNT(*), and a deep page costs what the first one does.

The cursor carries the last id seen, so each page is `WHERE id < :cursor ORDER BY
id DESC LIMIT n`, served by the (institution, -id) index however deep it is.
"""

from rest_framework.pagination import CursorPagination


class NewestFirstCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
