from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages over large, growing collections; `?page_size=` up to 1,000."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 1000
