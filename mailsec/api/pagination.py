from rest_framework.pagination import CursorPagination


class Cursor(CursorPagination):
    """Cursor pages: stable while rows are added (no page shifts), and a fixed cost however far
    a client reads (no OFFSET)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"
