"""Staff views of deployments: read-only, since rows are the record of what happened.

Deployments, targets and their history change only through the services (the pages, the API
and the CLI), which check who may act and write the audit trail; the admin is for looking and
exporting.
"""

import logging

from django.contrib import admin
from django.db import models
from django.utils.html import format_html, format_html_join

from deployer.models import Deployment, DeploymentEvent, Installation, ResourceRecord, Target
from gantry.admin_csv import CsvExportMixin

logger = logging.getLogger(__name__)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Target)
class TargetAdmin(ReadOnlyAdmin):
    list_display = ["name", "team", "kind", "region", "endpoint_url", "created_at"]
    list_filter = ["kind", "team"]
    search_fields = ["name", "team__name"]
    exclude = ["external_id"]
    # Django 6's default now (Django 5.2 warns without it): a URL without a scheme is https.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        """A deployment's resources and events are part of its record: whoever may view the
        deployment sees them."""
        return self.admin_site.get_model_admin(self.parent_model).has_view_permission(request, obj)


class ResourceInline(ReadOnlyInline):
    model = ResourceRecord
    fields = ["logical_id", "type", "state", "physical_id", "attempts", "last_error", "ready_at"]
    readonly_fields = fields
    ordering = ["position"]


class EventInline(ReadOnlyInline):
    model = DeploymentEvent
    verbose_name = "event"
    verbose_name_plural = "event timeline"
    fields = ["seq", "at", "kind", "logical_id", "state", "message"]
    readonly_fields = fields
    ordering = ["seq"]


@admin.register(Deployment)
class DeploymentAdmin(CsvExportMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "design",
        "design_version",
        "team",
        "target",
        "status",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    list_filter = [
        "status",
        "team",
        ("requested_by", admin.RelatedOnlyFieldListFilter),
        ("target", admin.RelatedOnlyFieldListFilter),
        "started_at",
        "created_at",
    ]
    list_select_related = ["team", "design", "design__team", "target", "requested_by"]
    search_fields = [
        "design__name",
        "resources__physical_id",
        "requested_by__username",
        "=identity",
    ]
    date_hierarchy = "created_at"
    inlines = [ResourceInline, EventInline]
    csv_columns = [
        ("id", "id"),
        ("team", "team.name"),
        ("design", "design.name"),
        ("design_version", "design_version"),
        ("target", "target.name"),
        ("status", "status"),
        ("reason", "reason"),
        ("requested_by", "requested_by.username"),
        ("keep_on_failure", "keep_on_failure"),
        ("created_at", "created_at"),
        ("started_at", "started_at"),
        ("finished_at", "finished_at"),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(Installation)
class InstallationAdmin(ReadOnlyAdmin):
    """This installation's id (the ``gantry:installation`` tag on everything it creates) and
    what it left in its targets' accounts that no live deployment owns (``manage.py
    orphans``: the same list, and ``--delete`` to remove it)."""

    list_display = ["installation_id", "created_at"]
    fields = ["installation_id", "created_at", "orphaned_resources"]
    readonly_fields = fields

    @admin.display(description="Orphaned resources")
    def orphaned_resources(self, obj: Installation) -> str:
        from deployer.orphans import orphans_find

        try:
            orphans = orphans_find(targets=Target.objects.select_related("team"))
        except Exception as exc:  # noqa: BLE001 - an account that cannot be read is said so
            logger.warning("could not list orphaned resources", exc_info=True)
            return f"Could not look in every target's account: {type(exc).__name__}: {exc}"
        if not orphans:
            return "None: every resource carrying this installation's tag has a live owner."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td></tr>",
            (
                (
                    o.resource.type,
                    o.resource.physical_id,
                    o.resource.name,
                    o.resource.region,
                    ", ".join(o.account.targets),
                    o.reason,
                )
                for o in orphans
            ),
        )
        return format_html(
            "<p>{} resource(s). Remove them with <code>manage.py orphans --delete</code>.</p>"
            "<table><thead><tr><th>Type</th><th>Id</th><th>Name</th><th>Region</th>"
            "<th>Targets</th><th>Why it is an orphan</th></tr></thead><tbody>{}</tbody></table>",
            len(orphans),
            rows,
        )
