"""Staff views of deployments: read-only, since rows are the record of what happened."""

from django.contrib import admin

from deployer.models import Deployment, DeploymentEvent, ResourceRecord, Target


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "kind", "region", "endpoint_url", "created_at"]
    list_filter = ["kind", "team"]
    search_fields = ["name", "team__name"]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ResourceInline(ReadOnlyInline):
    model = ResourceRecord
    fields = ["logical_id", "type", "state", "physical_id", "attempts", "last_error", "ready_at"]
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    model = DeploymentEvent
    fields = ["seq", "at", "kind", "logical_id", "state", "message"]
    readonly_fields = fields


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "design",
        "team",
        "target",
        "status",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "team", "target", "created_at"]
    search_fields = ["design__name", "resources__physical_id", "requested_by__username"]
    date_hierarchy = "created_at"
    inlines = [ResourceInline, EventInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
