"""Keyset (cursor) pagination, newest first: no COUNT(*), constant cost per page at any table size.

The cursor encodes the last row's created_at (plus an offset for ties), so each page is an index
range scan on (owner, -created_at, -id). Page size: ?page_size=, default K8SDM_PAGE_SIZE; above K8SDM_MAX_PAGE_SIZE is a 400.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination, _positive_int

from k8sdm.api.errors import InvalidInput


class NewestFirstPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    cursor_query_description = "Opaque cursor from the `next` or `previous` link of a page."
    page_size_query_description = "Results per page (default and maximum are set by the server)."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            try:
                size = _positive_int(raw, strict=True)
                if size > settings.K8SDM_MAX_PAGE_SIZE:
                    raise ValueError(raw)
                return size
            except (KeyError, ValueError):
                raise InvalidInput(
                    "page_size must be a positive integer.",
                    fields={"page_size": [f"must be an integer from 1 to {settings.K8SDM_MAX_PAGE_SIZE}"]},
                ) from None
        return settings.K8SDM_PAGE_SIZE

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise InvalidInput("The cursor is invalid.", fields={"cursor": ["invalid cursor"]}) from None

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["schema"] = {"type": "integer", "minimum": 1, "maximum": settings.K8SDM_MAX_PAGE_SIZE}
        return params
