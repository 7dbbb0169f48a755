"""Page-number pagination whose ``page`` and ``page_size`` are read like every integer from a
client (:mod:`gantry.parsing`): a bad one is a 400 naming it, never silently the default."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from gantry.parsing import MAX_ID, IntegerInvalid, parse_int


def _query_int(request, name: str, *, maximum: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        if maximum is None:
            return parse_int(raw, field=name, minimum=1)
        return parse_int(raw, field=name, minimum=1, maximum=maximum)
    except IntegerInvalid as exc:
        raise ValidationError({exc.field: [exc.message]}) from None


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200
    #: Only numbers: the schema says ``page`` is an integer.
    last_page_strings = ()

    def get_page_size(self, request) -> int:
        size = _query_int(request, self.page_size_query_param, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def get_page_number(self, request, paginator) -> int:
        number = _query_int(request, self.page_query_param)
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            parameter["schema"]["maximum"] = MAX_ID
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
        return parameters
