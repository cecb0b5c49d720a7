"""Keyset (cursor) pagination, newest first: no COUNT(*), constant cost per page at any table size.

The cursor encodes the last row's created_at (plus an offset for ties), so each page is an index
range scan on (owner, -created_at, -id). Page size: ?page_size=, default K8SDM_PAGE_SIZE; anything
but an integer from 1 to K8SDM_MAX_PAGE_SIZE is a 400.

A cursor comes back from the client, so it is decoded defensively: anything that is not a cursor
this server could have written (bad base64, a position that is not an aware timestamp, such as
`p=not-a-date` or `p=2020-13-45`) is a 400 naming `cursor`, never a query.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

from k8sdm.api.errors import InvalidInput

# What base64.b64encode writes (DRF's b64decode would skip any other character and decode the rest).
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class NewestFirstPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    cursor_query_description = "Opaque cursor from the `next` or `previous` link of a page."
    page_size_query_description = "Results per page (default and maximum are set by the server)."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return settings.K8SDM_PAGE_SIZE
        limit = settings.K8SDM_MAX_PAGE_SIZE
        # ASCII digits only: int() would also take "١٢" or " 12 ".
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= limit):
            raise InvalidInput(
                f"page_size must be an integer from 1 to {limit}.",
                fields={"page_size": [f"must be an integer from 1 to {limit}"]},
            )
        return int(raw)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        cursor = None
        if BASE64.fullmatch(encoded):
            try:
                cursor = super().decode_cursor(request)
            except exceptions.NotFound:  # DRF's answer to a cursor it cannot decode
                cursor = None
        if cursor is None or (cursor.position is not None and not self.position_valid(cursor.position)):
            raise InvalidInput(
                "The cursor is invalid: use the `next` or `previous` link of a page as it is.",
                fields={"cursor": ["not a cursor this server wrote"]},
            )
        return cursor

    def position_valid(self, position: str) -> bool:
        """Whether a decoded cursor's position is one this ordering writes (a created_at timestamp)."""
        return _is_aware_timestamp(position)

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["schema"] = {"type": "integer", "minimum": 1, "maximum": settings.K8SDM_MAX_PAGE_SIZE}
        return params


def _is_aware_timestamp(text: str) -> bool:
    try:
        value = parse_datetime(text)
    except ValueError:  # well-formed but impossible, e.g. 2020-13-45
        return False
    return value is not None and value.tzinfo is not None


class HighestNumberFirstPagination(NewestFirstPagination):
    """The same keyset pagination over a unique number, highest first (revisions)."""

    ordering = ("-number",)

    def position_valid(self, position: str) -> bool:
        return position.isascii() and position.isdigit() and len(position) <= 18  # fits a bigint
