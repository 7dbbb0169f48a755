"""The API's shapes. Serializers describe and check request shapes; every rule about specs,
deployments and targets stays in the services they call."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import (
    SpecField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictRegexField,
)
from api.models import TOKEN_NAME_PATTERN, ApiToken
from deployer.models import ChangeSet, Deployment, DeploymentEvent, ResourceRecord, Run, Target
from deployer.selectors import deployment_outputs, deployment_runs, shown_records
from designer.export import OUTPUT_FORMATS
from designer.models import Design, DesignVersion
from teams.models import Membership, Team

#: A team named in a query: its id or its slug (Django's slug characters).
TEAM_REF_PATTERN = r"^[-a-zA-Z0-9_]+$"
#: The largest design version the database holds (a positive integer column).
MAX_VERSION = 2**31 - 1


def _links(*names: str) -> dict[str, Any]:
    """The OpenAPI shape of a `links` object: each name a URL path."""
    return {"type": "object", "properties": {name: {"type": "string"} for name in names}}


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What went wrong, in a sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field-level problems: {field: [message, ...]}.",
    )


class IssueSerializer(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()
    index = serializers.IntegerField(required=False, help_text="The list item it is about.")
    key = serializers.CharField(required=False, help_text="The tag key it is about.")


class SpecErrorSerializer(ErrorSerializer):
    issues = IssueSerializer(
        many=True,
        required=False,
        help_text="For spec errors: the same errors with list index and tag key.",
    )


class DeploymentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField()


class ConflictSerializer(serializers.Serializer):
    message = serializers.CharField()
    active_deployment = DeploymentRefSerializer(required=False)
    deployment = DeploymentRefSerializer(required=False)


# --- teams -----------------------------------------------------------------------------------


class TeamSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(
        help_text="The caller's role in the team: member, admin, or staff (Gantry staff)."
    )

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "role", "created_at"]

    def get_role(self, team: Team) -> str:
        user = self.context["request"].user
        membership = Membership.objects.filter(team=team, user=user).first()
        if membership is not None:
            return membership.role
        return "staff"


# --- designs ---------------------------------------------------------------------------------


class DesignSerializer(serializers.ModelSerializer):
    team = serializers.PrimaryKeyRelatedField(read_only=True)
    team_slug = serializers.SlugRelatedField(source="team", slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    spec = serializers.JSONField(help_text="Spec v1, as DESIGN.md describes it.")
    links = serializers.SerializerMethodField()

    class Meta:
        model = Design
        fields = [
            "id",
            "team",
            "team_slug",
            "name",
            "version",
            "spec",
            "created_by",
            "updated_by",
            "created_at",
            "updated_at",
            "links",
        ]

    @extend_schema_field(_links("self", "plan", "diagram_svg", "diagram_png", "versions", "page"))
    def get_links(self, design: Design) -> dict[str, str]:
        base = f"/api/designs/{design.pk}/"
        return {
            "self": base,
            "plan": base + "plan/",
            "diagram_svg": base + "diagram.svg",
            "diagram_png": base + "diagram.png",
            "versions": base + "versions/",
            "page": f"/designs/{design.pk}/",
        }


class DesignCreateSerializer(serializers.Serializer):
    team = StrictIntegerField(
        required=False,
        help_text="The team that owns the design; may be left out when the caller is in one "
        "team only.",
    )
    spec = SpecField(help_text="Spec v1; `name` names the design.")


class DesignUpdateSerializer(serializers.Serializer):
    spec = SpecField(help_text="The whole new spec; a new version is saved.")


class DesignVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DesignVersion
        fields = ["version", "spec", "created_by", "created_at"]


class ValidateRequestSerializer(serializers.Serializer):
    spec = SpecField(help_text="A spec to check; nothing is saved.")


class ValidateResponseSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    warnings = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    issues = IssueSerializer(many=True, help_text="Errors, with list index and tag key.")
    warning_issues = IssueSerializer(many=True)
    spec = serializers.JSONField(
        allow_null=True, help_text="The spec with defaults filled in, when it is valid."
    )


class PlanSerializer(serializers.Serializer):
    resources = serializers.ListField(
        child=serializers.JSONField(), help_text="Graph nodes in creation order."
    )
    route_tables = serializers.JSONField()
    security_groups = serializers.JSONField()
    cost = serializers.JSONField(help_text="Monthly estimate in USD per resource, with totals.")


# --- targets ---------------------------------------------------------------------------------


class TargetSerializer(serializers.ModelSerializer):
    team = StrictIntegerField(
        source="team_id",
        required=False,
        help_text="The owning team; may be left out when the caller is in one team only.",
    )
    external_id = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=1224,
        help_text="Write-only: never returned. Leave out on update to keep the stored one.",
    )
    has_external_id = serializers.SerializerMethodField()
    endpoint_url = serializers.CharField(
        read_only=True, help_text="The emulator's URL for a sandbox target; empty for AWS."
    )
    role_arn = StrictCharField(required=False, allow_blank=True, max_length=2048)
    name = StrictCharField(max_length=60)
    kind = StrictChoiceField(choices=Target.Kind.choices, required=False)
    region = StrictCharField(max_length=30, required=False)

    class Meta:
        model = Target
        fields = [
            "id",
            "team",
            "name",
            "kind",
            "region",
            "role_arn",
            "external_id",
            "has_external_id",
            "endpoint_url",
            "created_at",
        ]
        read_only_fields = ["endpoint_url", "created_at"]

    def get_has_external_id(self, target: Target) -> bool:
        return bool(target.external_id)


# --- deployments -----------------------------------------------------------------------------


class ResourceSerializer(serializers.ModelSerializer):
    state = serializers.ChoiceField(choices=ResourceRecord.State.choices)

    class Meta:
        model = ResourceRecord
        fields = [
            "logical_id",
            "type",
            "generation",
            "state",
            "action",
            "physical_id",
            "attempts",
            "last_error",
            "waiting_reason",
            "started_at",
            "ready_at",
            "deleted_at",
            "drift",
            "drift_differences",
            "drift_checked_at",
        ]


class DeploymentSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=Deployment.Status.choices)
    design_name = serializers.CharField(source="design.name", read_only=True)
    target_name = serializers.CharField(source="target.name", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    tag = serializers.CharField(read_only=True, help_text="The gantry:deployment tag value.")
    progress = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "team",
            "design",
            "design_name",
            "design_version",
            "target",
            "target_name",
            "status",
            "reason",
            "keep_on_failure",
            "cancel_requested",
            "requested_by",
            "tag",
            "identity",
            "created_at",
            "started_at",
            "finished_at",
            "progress",
            "links",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "done": {"type": "integer"},
                "total": {"type": "integer"},
                "percent": {"type": "integer"},
            },
        }
    )
    def get_progress(self, deployment: Deployment) -> dict[str, int]:
        # n_done and n_total are annotated by deployer.selectors.with_progress_counts.
        done, total = deployment.n_done, deployment.n_total
        return {"done": done, "total": total, "percent": round(100 * done / total) if total else 0}

    @extend_schema_field(_links("self", "events", "stream", "cancel", "destroy", "page"))
    def get_links(self, deployment: Deployment) -> dict[str, str]:
        base = f"/api/deployments/{deployment.pk}/"
        return {
            "self": base,
            "events": base + "events/",
            "stream": base + "events/stream",
            "cancel": base + "cancel/",
            "destroy": base + "destroy/",
            "page": f"/deployments/{deployment.pk}/",
        }


class PropertyChangeSerializer(serializers.Serializer):
    name = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    replacement = serializers.BooleanField(
        help_text="This property's change forces a new resource."
    )


class ChangeSerializer(serializers.Serializer):
    logical_id = serializers.CharField()
    type = serializers.CharField()
    action = serializers.ChoiceField(choices=["add", "modify", "replace", "remove"])
    label = serializers.CharField()
    properties = PropertyChangeSerializer(many=True)
    reason = serializers.CharField()
    interrupts = serializers.CharField(help_text="What applying it interrupts (empty: nothing).")
    strategy = serializers.CharField()
    repair = serializers.BooleanField(help_text="It puts back what changed outside Gantry.")


class ChangeSetBodySerializer(serializers.Serializer):
    changes = ChangeSerializer(many=True)
    refused = serializers.ListField(
        child=serializers.CharField(), help_text="Why it cannot be applied (empty: it can)."
    )
    interruptions = serializers.ListField(child=serializers.DictField())


class RunSerializer(serializers.ModelSerializer):
    operation = serializers.ChoiceField(choices=Run.Operation.choices)
    status = serializers.ChoiceField(choices=Run.Status.choices)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    change_set = serializers.SerializerMethodField(
        help_text="The change set an update applied; null for a create or a destroy."
    )

    class Meta:
        model = Run
        fields = [
            "number",
            "operation",
            "status",
            "reason",
            "requested_by",
            "version_before",
            "version_after",
            "created_at",
            "started_at",
            "finished_at",
            "change_set",
        ]

    @extend_schema_field(ChangeSetBodySerializer(allow_null=True))
    def get_change_set(self, run: Run) -> dict[str, Any] | None:
        if not run.change_set:
            return None
        return ChangeSetBodySerializer(run.change_set).data


class OutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField()
    description = serializers.CharField()


class DeploymentDetailSerializer(DeploymentSerializer):
    resources = serializers.SerializerMethodField()
    spec = serializers.JSONField(read_only=True, help_text="The spec live now.")
    runs = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()

    class Meta(DeploymentSerializer.Meta):
        fields = [
            *DeploymentSerializer.Meta.fields,
            "drift_status",
            "drift_checked_at",
            "spec",
            "outputs",
            "runs",
            "resources",
        ]

    @extend_schema_field(ResourceSerializer(many=True))
    def get_resources(self, deployment: Deployment) -> list[dict[str, Any]]:
        return ResourceSerializer(shown_records(list(deployment.resources.all())), many=True).data

    @extend_schema_field(RunSerializer(many=True))
    def get_runs(self, deployment: Deployment) -> list[dict[str, Any]]:
        return RunSerializer(deployment_runs(deployment), many=True).data

    @extend_schema_field(OutputSerializer(many=True))
    def get_outputs(self, deployment: Deployment) -> list[dict[str, str]]:
        return deployment_outputs(deployment)


class DeploymentCreateSerializer(serializers.Serializer):
    design = StrictIntegerField(
        help_text="The design to deploy. When it has a live deployment on the target, that "
        "deployment is changed in place (its change set applied)."
    )
    target = StrictIntegerField(
        required=False, help_text="Where to deploy; the team's sandbox target when left out."
    )
    version = StrictIntegerField(
        required=False, min_value=1, help_text="The design version; its current one when left out."
    )
    keep_on_failure = StrictBooleanField(
        default=False,
        help_text="On failure leave the resources for debugging instead of rolling back.",
    )
    allow_interruption = StrictBooleanField(
        default=False,
        help_text="Apply a change set that interrupts traffic (a replaced VPC, subnet or API "
        "instance; NAT removed while the Lambda uses it). Without it such a change is a 400.",
    )


class ChangeSetCreateSerializer(serializers.Serializer):
    design = StrictIntegerField(help_text="The design whose version is reviewed.")
    target = StrictIntegerField(
        required=False, help_text="The target; the team's sandbox target when left out."
    )
    version = StrictIntegerField(
        required=False, min_value=1, help_text="The design version; its current one when left out."
    )


class ChangeSetExecuteSerializer(serializers.Serializer):
    keep_on_failure = StrictBooleanField(default=False)
    allow_interruption = StrictBooleanField(default=False)


class ChangeSetSerializer(serializers.ModelSerializer):
    deployment = serializers.PrimaryKeyRelatedField(read_only=True)
    design = serializers.IntegerField(source="deployment.design_id", read_only=True)
    status = serializers.SerializerMethodField()
    changes = serializers.SerializerMethodField()
    refused = serializers.SerializerMethodField()
    interruptions = serializers.SerializerMethodField()
    run = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = ChangeSet
        fields = [
            "id",
            "deployment",
            "design",
            "design_version",
            "based_on_seq",
            "status",
            "created_at",
            "changes",
            "refused",
            "interruptions",
            "run",
            "links",
        ]

    @extend_schema_field(
        serializers.ChoiceField(
            choices=["open", "executed", "stale", "refused", "empty"],
            help_text="open: may be executed; stale: the deployment moved on since (make a new "
            "one); executed: applied as the run named; refused: cannot be applied; empty: "
            "nothing to change.",
        )
    )
    def get_status(self, cs: ChangeSet) -> str:
        if cs.executed_run_id:
            return "executed"
        if cs.body.get("refused"):
            return "refused"
        if not cs.body.get("changes"):
            return "empty"
        if cs.deployment.last_event_seq != cs.based_on_seq:
            return "stale"
        return "open"

    @extend_schema_field(ChangeSerializer(many=True))
    def get_changes(self, cs: ChangeSet) -> list[dict[str, Any]]:
        return cs.body.get("changes", [])

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_refused(self, cs: ChangeSet) -> list[str]:
        return cs.body.get("refused", [])

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_interruptions(self, cs: ChangeSet) -> list[dict[str, Any]]:
        return cs.body.get("interruptions", [])

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_run(self, cs: ChangeSet) -> int | None:
        return cs.executed_run.number if cs.executed_run_id else None

    @extend_schema_field(_links("self", "execute", "deployment"))
    def get_links(self, cs: ChangeSet) -> dict[str, str]:
        base = f"/api/change-sets/{cs.pk}/"
        return {
            "self": base,
            "execute": base + "execute/",
            "deployment": f"/api/deployments/{cs.deployment_id}/",
        }


class DriftDifferenceSerializer(serializers.Serializer):
    property = serializers.CharField()
    expected = serializers.JSONField(allow_null=True)
    actual = serializers.JSONField(allow_null=True)


class DriftResourceSerializer(serializers.Serializer):
    logical_id = serializers.CharField()
    type = serializers.CharField()
    drift = serializers.ChoiceField(choices=["in_sync", "modified", "deleted", ""])
    differences = DriftDifferenceSerializer(many=True)


class DriftSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["in_sync", "drifted", ""])
    checked_at = serializers.DateTimeField(allow_null=True)
    resources = DriftResourceSerializer(many=True)


class QuerySerializer(serializers.Serializer):
    """Query parameters. DRF reads an empty one (``?team=``) as left out; the schema gives
    each a type that ``""`` is not, so it is an error here too."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors = {
            name: ["give a value, or leave the parameter out"]
            for name in self.fields
            if hasattr(data, "getlist") and "" in data.getlist(name)
        }
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class DeploymentFilterSerializer(QuerySerializer):
    team = serializers.RegexField(
        TEAM_REF_PATTERN, required=False, max_length=100, help_text="Team id or slug."
    )
    design = StrictIntegerField(query=True, required=False)
    status = serializers.MultipleChoiceField(choices=Deployment.Status.choices, required=False)
    requested_by = serializers.CharField(
        required=False, min_length=1, max_length=150, help_text="A username."
    )
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after > before:
            raise serializers.ValidationError(
                {"created_before": ["must not be earlier than created_after"]}
            )
        return attrs


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=["cloudformation"], help_text="What to export to: a CloudFormation template."
    )
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_VERSION,
        help_text="The design version to export (default: the current one).",
    )
    output = serializers.ChoiceField(
        choices=list(OUTPUT_FORMATS),
        required=False,
        help_text="yaml or json. Without it, the Accept header decides (application/yaml, "
        "application/x-yaml or text/yaml for YAML); JSON otherwise.",
    )


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeploymentEvent
        fields = ["seq", "at", "kind", "logical_id", "state", "message", "data"]


class EventPageSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    last_seq = serializers.IntegerField(help_text="Pass as ?after= to get the next page.")
    more = serializers.BooleanField(help_text="More events follow beyond this page.")
    finished = serializers.BooleanField(help_text="The deployment is in a terminal status.")


class EventQuerySerializer(QuerySerializer):
    after = StrictIntegerField(query=True, required=False, min_value=0, default=0)
    limit = StrictIntegerField(query=True, required=False, max_value=1000, default=500)


# --- tokens ----------------------------------------------------------------------------------


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "hint", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["hint", "created_at", "last_used_at", "revoked_at"]


class TokenCreateSerializer(serializers.Serializer):
    name = StrictRegexField(
        TOKEN_NAME_PATTERN,
        max_length=80,
        help_text="What the token is for: 1 to 80 characters, not only spaces, no control "
        "characters.",
    )


class TokenCreatedSerializer(TokenSerializer):
    key = serializers.CharField(
        read_only=True, help_text="Shown this once; Gantry keeps only a digest of it."
    )

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "key"]
