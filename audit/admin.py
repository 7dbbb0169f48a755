"""The audit trail for staff: read-only (no add, change or delete, the model and the database
refuse them anyway), filtered and searched, exported as CSV."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from audit.models import AuditEntry
from gantry.admin_csv import CsvExportMixin


@admin.register(AuditEntry)
class AuditEntryAdmin(CsvExportMixin, admin.ModelAdmin):
    list_display = [
        "at",
        "actor_name",
        "team",
        "action",
        "object_type",
        "object_repr",
        "channel",
        "ip",
        "request_id",
    ]
    list_filter = [
        "action",
        "channel",
        ("team", admin.RelatedOnlyFieldListFilter),
        ("actor", admin.RelatedOnlyFieldListFilter),
        "at",
    ]
    list_select_related = ["team", "actor"]
    search_fields = ["actor_name", "object_repr", "object_id", "request_id"]
    date_hierarchy = "at"
    fields = [
        "at",
        "action",
        "actor",
        "actor_name",
        "team",
        "object_type",
        "object_id",
        "object_repr",
        "details",
        "channel",
        "ip",
        "request_id",
    ]
    readonly_fields = fields
    csv_columns = [
        ("id", "id"),
        ("at", "at"),
        ("action", "action"),
        ("actor", "actor_name"),
        ("team", "team.name"),
        ("object_type", "object_type"),
        ("object_id", "object_id"),
        ("object", "object_repr"),
        ("channel", "channel"),
        ("ip", "ip"),
        ("request_id", "request_id"),
        ("data", "data"),
    ]

    @admin.display(description="data")
    def details(self, entry: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(entry.data, indent=2, sort_keys=True))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
