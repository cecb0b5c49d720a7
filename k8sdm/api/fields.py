"""Strict serializer building blocks: JSON types are not coerced and unknown fields are refused.

DRF by default turns 3 into "3" for a CharField, "3" into 3 for an IntegerField, and silently
drops fields it does not know. An API that takes a deployment config must do none of that: an
unknown field is either a typo the user wants to hear about or an attempt at mass assignment
(status, user, resource_version, a raw pod spec).
"""

from __future__ import annotations

from rest_framework import serializers


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
    """Refuses any key it does not declare, naming it."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        unknown_errors = {name: ["Unknown field."] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown_errors and isinstance(exc.detail, dict):
                exc.detail.update(serializers.as_serializer_error(serializers.ValidationError(unknown_errors)))
            raise
        if unknown_errors:
            raise serializers.ValidationError(unknown_errors)
        return value
