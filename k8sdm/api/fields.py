"""Strict serializer building blocks: JSON types are not coerced and unknown fields are refused.

DRF by default turns 3 into "3" for a CharField, "3" into 3 for an IntegerField, and silently
drops fields it does not know. An API that takes a deployment config must do none of that: an
unknown field is either a typo the user wants to hear about or an attempt at mass assignment
(status, user, resource_version, a raw pod spec).
"""

from __future__ import annotations

import difflib
from datetime import datetime, timezone
from functools import cache

from django.urls import reverse
from rest_framework import serializers

# What reverse() leaves unquoted in a path segment.
URL_SAFE = "!$&'()*+,;=~:@"


@cache
def api_v1_prefix() -> str:
    """'/api/v1/' (or wherever the URLconf mounts it), resolved once."""
    return reverse("api-v1:request-list").removesuffix("requests/")


def iso(value: datetime | None) -> str | None:
    """A datetime as DRF renders it (ISO 8601, UTC as 'Z')."""
    if value is None:
        return None
    text = value.astimezone(timezone.utc).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def unknown_name(kind: str, name: str, choices) -> str:
    """'Unknown field.', or 'Unknown field; did you mean "replicas"?' when `name` looks like a typo."""
    close = []
    if len(name) <= 64:  # difflib is quadratic in the length; nobody mistypes 64 characters
        close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.7)
    return f'Unknown {kind}; did you mean "{close[0]}"?' if close else f"Unknown {kind}."


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"not_an_integer": "Must be an integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses any key it does not declare, naming it (and the field it was probably meant to be)."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        unknown_errors = {name: [unknown_name("field", name, self.fields)] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown_errors and isinstance(exc.detail, dict):
                exc.detail.update(serializers.as_serializer_error(serializers.ValidationError(unknown_errors)))
            raise
        if unknown_errors:
            raise serializers.ValidationError(unknown_errors)
        return value
