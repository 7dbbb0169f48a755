"""CSV export for admin changelists: the selected rows (an admin action) or every row the
current filters and search match (the changelist's "Export CSV" link).

Rows are streamed, so a long history is written as it is read instead of being built in
memory. A cell that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is prefixed with a quote: an audit entry's object name or a
failed login's username is typed by whoever caused it, and must not run when a reviewer opens
the file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: A column: its header and either a dotted attribute path ("design.name") or a function of
#: the row.
Column = tuple[str, str | Callable[[Any], Any]]


def csv_cell(value: Any) -> Any:
    """One value as a safe CSV cell: numbers stay numbers, times are ISO 8601 in UTC,
    structures are JSON, text that could start a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime):
        value = (value.astimezone(UTC) if timezone.is_aware(value) else value).isoformat()
    elif isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer to stream."""

    def write(self, value: str) -> str:
        return value


def csv_response(
    filename: str, columns: list[Column], rows: Iterable[Any]
) -> StreamingHttpResponse:
    """A streaming CSV attachment: a header line, then one line per row."""
    writer = csv.writer(_Echo())

    def value(row: Any, accessor: str | Callable[[Any], Any]) -> Any:
        if callable(accessor):
            return accessor(row)
        for part in accessor.split("."):
            row = getattr(row, part, None) if row is not None else None
        return row

    def lines() -> Iterator[str]:
        yield writer.writerow([header for header, _ in columns])
        for row in rows:
            yield writer.writerow([csv_cell(value(row, accessor)) for _, accessor in columns])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CsvExportMixin:
    """For a ModelAdmin: ``csv_columns`` lists what a row exports. Adds the "Export selected
    as CSV" action and an ``export.csv`` view that the changelist links to with its current
    query string; both need only the view permission."""

    csv_columns: list[Column] = []
    change_list_template = "admin/csv_export_change_list.html"
    actions = ["export_selected_csv"]

    def csv_filename(self) -> str:
        return f"{self.opts.model_name}-{timezone.now():%Y%m%d-%H%M%S}.csv"

    def csv_rows(self, queryset: QuerySet) -> Iterable[Model]:
        return queryset.iterator(chunk_size=1000)

    @admin.action(
        description="Export selected %(verbose_name_plural)s as CSV", permissions=["view"]
    )
    def export_selected_csv(self, request: HttpRequest, queryset: QuerySet):
        return csv_response(self.csv_filename(), self.csv_columns, self.csv_rows(queryset))

    def export_filtered_csv(self, request: HttpRequest):
        """Everything the changelist shows under the same filters, search and ordering, on
        every page of it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            changelist_url = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
                current_app=self.admin_site.name,
            )
            return HttpResponseRedirect(changelist_url + "?e=1")
        return csv_response(
            self.csv_filename(), self.csv_columns, self.csv_rows(changelist.queryset)
        )

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_export_csv"
        return [
            path("export.csv", self.admin_site.admin_view(self.export_filtered_csv), name=name),
            *super().get_urls(),
        ]
