"""Request fields that read exactly what the OpenAPI schema says they take.

DRF's own fields are lenient: an ``IntegerField`` reads ``"12"``, ``12.0`` and ``"١٢"``, a
``CharField`` turns ``0`` into ``"0"``, a ``BooleanField`` takes ``"yes"`` and ``1``. The schema
promises an integer, a string, a boolean, so a client that sends anything else is told so
(400, field by field) instead of having its request silently reinterpreted. Query strings are
text by nature: there an integer is read by :mod:`gantry.parsing`, the one rule for integers
from a client.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gantry.parsing import MAX_ID, IntegerInvalid, parse_int


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer in a body; with ``query=True`` ASCII digits in a query string."""

    default_error_messages = {"invalid": "must be a whole number (a JSON integer)."}

    def __init__(self, *, query: bool = False, **kwargs: Any):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        self.query = query
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if self.query:
            if not isinstance(data, str):
                self.fail("invalid")
            try:
                return parse_int(data, field=self.field_name or "value")
            except IntegerInvalid as exc:
                raise serializers.ValidationError(exc.message) from None
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, float) and data.is_integer() and abs(data) <= MAX_ID:
            return int(data)  # JSON Schema's "integer" includes 1.0
        if not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string (DRF would turn ``0`` or ``false`` into text)."""

    default_error_messages = {"invalid": "must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField):
    """A JSON string matching the pattern (the schema publishes the pattern)."""

    default_error_messages = {"not_a_string": "must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """``true`` or ``false`` (DRF also reads ``"yes"``, ``"on"``, ``1``...)."""

    default_error_messages = {"invalid": "must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, given as a string."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "Spec v1: name, region, vpc_cidr, public_subnet_cidrs, "
        "lambda_subnet_cidrs, api_subnet_cidrs, api_port, nat, api_kind, tags. Its rules "
        "(CIDR arithmetic, overlaps, names unique in the team) are checked by the server: a "
        "spec that breaks one is a 400 naming the field.",
    }
)
class SpecField(serializers.JSONField):
    """A spec: a JSON object (its fields are checked by ``designer.spec.validate_spec``)."""

    default_error_messages = {"not_object": "must be a JSON object (spec v1)."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            self.fail("not_object")
        return super().to_internal_value(data)
