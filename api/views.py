"""The REST API. Thin: the selectors scope every read to the caller's teams, the services make
every change and hold every rule, and ``api.errors`` turns their exceptions into answers."""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from api import serializers as s
from api.errors import spec_errors
from api.models import ApiToken
from api.selectors import token_is_active
from api.services import token_create, token_revoke
from audit.services import audit_denied_later, get_for_user_or_404
from deployer import events
from deployer import selectors as deploy_selectors
from deployer import services as deploy_services
from deployer.models import Deployment, Target
from deployer.stream import (
    StreamAccess,
    StreamRefused,
    last_event_id,
    session_stands,
    stream_open,
)
from designer import selectors as design_selectors
from designer.cost import Assumptions
from designer.diagram import render_png, render_svg
from designer.export import media_type, template_filename, template_text
from designer.models import Design, DesignVersion
from designer.plan import plan
from designer.preview import plan_document
from designer.services import SpecInvalid, design_create, design_delete, design_update
from designer.spec import validate_spec
from gantry.parsing import MAX_ID, IdConverter, IntegerInvalid, parse_id
from teams.models import Team
from teams.selectors import team_list

ERR = {
    401: OpenApiResponse(s.ErrorSerializer, description="Not logged in, or a bad token."),
    404: OpenApiResponse(
        s.ErrorSerializer, description="No such object in the caller's teams (never 403)."
    ),
}
BAD = {400: OpenApiResponse(s.ErrorSerializer, description="Invalid input, field by field.")}
THROTTLED = {429: OpenApiResponse(s.ErrorSerializer, description="Too many requests.")}
ID_REGEX = IdConverter.regex
#: One Server-Sent Event of a deployment's stream (OpenAPI 3.0: the schema is per event).
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["deployment"]},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's seq."},
        "data": {"type": "string", "description": "The event as JSON, shaped as in /events/."},
        "retry": {"type": "integer"},
    },
    "required": ["event", "data"],
}
ASSUMPTIONS = [f.name for f in fields(Assumptions)]


class _ScopedUserThrottle(UserRateThrottle):
    """Per-user rate of one costly action, read from settings at each request (so a change
    of ``REST_FRAMEWORK`` applies without a restart of the class)."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class DeployThrottle(_ScopedUserThrottle):
    scope = "deploy"


class DestroyThrottle(_ScopedUserThrottle):
    scope = "destroy"


class SvgRenderer(BaseRenderer):
    media_type = "image/svg+xml"
    format = "svg"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)  # only errors come through here


class PngRenderer(SvgRenderer):
    media_type = "image/png"
    format = "png"


class EventStreamRenderer(SvgRenderer):
    media_type = "text/event-stream"
    format = "sse"


class ExportNegotiation(BaseContentNegotiation):
    """Content negotiation of the export action. Its ``format`` query parameter names the
    export (``cloudformation``), not a DRF renderer, and the template itself is chosen by
    ``output`` or Accept in the view; what DRF renders there is only errors, always as JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = JSONRenderer()
        return renderer, renderer.media_type


#: Accept header media types that ask for YAML, with JSON's first: */* (or no Accept) is JSON.
_EXPORT_MEDIA_TYPES = {
    "application/json": "json",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "text/x-yaml": "yaml",
}


def _preferred_output(request: Request) -> str:
    preferred = request.get_preferred_type(list(_EXPORT_MEDIA_TYPES))
    return _EXPORT_MEDIA_TYPES.get(preferred or "", "json")


class AuditedLookupMixin:
    """``get_object`` through the caller-scoped queryset and ``get_for_user_or_404``: a miss
    on an object that exists in another team is audited and answered like a missing one."""

    def get_object(self):
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        obj = get_for_user_or_404(
            self.filter_queryset(self.get_queryset()),
            user=self.request.user,
            path=self.request.path,
            **{self.lookup_field: lookup},
        )
        self.check_object_permissions(self.request, obj)
        return obj


def _team_for(request: Request, team_id: int | None) -> Team:
    """The team a new object belongs to: the one named (if the caller is in it) or the
    caller's only team."""
    teams = team_list(user=request.user)
    if team_id is not None:
        team = teams.filter(pk=team_id).first()
        if team is None:
            audit_denied_later(
                user=request.user, model=Team, path=request.path, field="team", pk=team_id
            )
            raise ValidationError({"team": ["no team with this id among your teams"]})
        return team
    mine = list(Team.objects.filter(memberships__user=request.user)[:2])
    if len(mine) != 1:
        raise ValidationError(
            {"team": ["you are in several teams (or none); say which team with its id"]}
        )
    return mine[0]


SAVE_SCHEMA = {
    "request": s.DesignUpdateSerializer,
    "responses": {
        200: s.DesignSerializer,
        400: OpenApiResponse(s.SpecErrorSerializer, description="The spec is invalid."),
        **ERR,
    },
}


# --- teams -----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="The caller's teams (staff: all)", responses={200: s.TeamSerializer, **ERR}
    ),
    retrieve=extend_schema(summary="A team", responses={200: s.TeamSerializer, **ERR}),
)
class TeamViewSet(AuditedLookupMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's teams (every team for staff): the owners of designs, targets and deployments."""

    serializer_class = s.TeamSerializer
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        return team_list(user=self.request.user).order_by("name")


# --- designs ---------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Designs of the caller's teams", responses={200: s.DesignSerializer, **ERR}
    ),
    retrieve=extend_schema(summary="A design", responses={200: s.DesignSerializer, **ERR}),
)
class DesignViewSet(
    AuditedLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Designs: versioned specs of the pattern, each belonging to one team."""

    serializer_class = s.DesignSerializer
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        return (
            design_selectors.design_list(user=self.request.user)
            .select_related("created_by")
            .order_by("team__name", "name", "pk")
        )

    @extend_schema(
        summary="Create a design (version 1)",
        request=s.DesignCreateSerializer,
        responses={
            201: s.DesignSerializer,
            400: OpenApiResponse(s.SpecErrorSerializer, description="The spec is invalid."),
            401: ERR[401],
        },
    )
    def create(self, request: Request) -> Response:
        body = s.DesignCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        team = _team_for(request, body.validated_data.get("team"))
        design = design_create(team=team, user=request.user, spec_data=body.validated_data["spec"])
        data = s.DesignSerializer(design, context={"request": request}).data
        return Response(data, status=201, headers={"Location": data["links"]["self"]})

    @extend_schema(summary="Save a new version of a design", **SAVE_SCHEMA)
    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        design = self.get_object()
        body = s.DesignUpdateSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        if "spec" in body.validated_data:
            design = design_update(
                design=design, user=request.user, spec_data=body.validated_data["spec"]
            )
        return Response(s.DesignSerializer(design, context={"request": request}).data)

    @extend_schema(
        summary="Save a new version (the whole spec, as PUT); without `spec` nothing changes",
        **SAVE_SCHEMA,
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    @extend_schema(
        summary="Delete a design",
        description="Refused (409) while a deployment of it may still hold AWS resources; "
        "destroy that deployment first. Past deployments keep their history.",
        responses={
            204: None,
            409: OpenApiResponse(
                s.ConflictSerializer, description="A deployment still holds resources."
            ),
            **ERR,
        },
    )
    def destroy(self, request: Request, pk: str) -> Response:
        design_delete(design=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Validate a spec without saving it",
        request=s.ValidateRequestSerializer,
        responses={200: s.ValidateResponseSerializer, 400: BAD[400], 401: ERR[401]},
    )
    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        body = s.ValidateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = validate_spec(body.validated_data["spec"])
        return Response(
            {
                "valid": result.valid,
                "errors": spec_errors(result.errors),
                "warnings": spec_errors(result.warnings),
                "issues": [i.to_json() for i in result.errors],
                "warning_issues": [i.to_json() for i in result.warnings],
                "spec": result.spec.to_json() if result.valid and result.spec else None,
            }
        )

    @extend_schema(
        summary="The resource plan, route tables, security-group rules and monthly cost",
        parameters=[
            OpenApiParameter(
                name,
                # Negative is refused; past the upper bound a value is clamped, not refused.
                {"type": "number", "minimum": 0},
                description=f"Cost assumption {name} (see the design page); at least 0.",
            )
            for name in ASSUMPTIONS
        ],
        responses={200: s.PlanSerializer, **BAD, **ERR},
    )
    @action(detail=True, methods=["get"])
    def plan(self, request: Request, pk: str) -> Response:
        design = self.get_object()
        provided = {k: v for k, v in request.query_params.items() if k in ASSUMPTIONS}
        assumptions, issues = Assumptions.from_mapping(provided)
        if issues:
            raise SpecInvalid(issues)
        result = validate_spec(design.spec)
        if result.spec is None:  # saved designs are valid; a rule may have tightened since
            raise SpecInvalid(result.errors)
        return Response(plan_document(spec=result.spec, assumptions=assumptions))

    @extend_schema(
        summary="Every saved version of a design, newest first",
        responses={200: s.DesignVersionSerializer(many=True), **ERR},
    )
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str) -> Response:
        design = self.get_object()
        page = self.paginate_queryset(design_selectors.design_version_list(design=design))
        return self.get_paginated_response(s.DesignVersionSerializer(page, many=True).data)

    @extend_schema(
        summary="A design version as a CloudFormation template (YAML or JSON)",
        description="The template builds what a Gantry deployment of that version builds; "
        "cfn-lint and checkov pass it. `format=cloudformation` is required. The template is "
        "YAML when `output=yaml`, or without `output` when the Accept header prefers "
        "application/yaml (or application/x-yaml, text/yaml); JSON otherwise. Its Metadata "
        "says what CloudFormation builds differently from Gantry's deployer.",
        parameters=[s.ExportQuerySerializer],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            # The same template either way; a YAML document is an object too.
            (200, "application/yaml"): OpenApiTypes.OBJECT,
            400: OpenApiResponse(
                s.SpecErrorSerializer,
                description="Bad parameters (field by field), or the version's spec no longer "
                "validates.",
            ),
            **ERR,
        },
    )
    @action(detail=True, methods=["get"], content_negotiation_class=ExportNegotiation)
    def export(self, request: Request, pk: str) -> HttpResponse:
        design = self.get_object()
        query = s.ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = query.validated_data.get("version")
        try:
            template = design_selectors.design_version_template(design=design, version=version)
        except DesignVersion.DoesNotExist:
            raise ValidationError(
                {"version": [f"{design.name} has versions 1 to {design.version}"]}
            ) from None
        output = query.validated_data.get("output") or _preferred_output(request)
        response = HttpResponse(
            template_text(template, output), content_type=f"{media_type(output)}; charset=utf-8"
        )
        filename = template_filename(
            design=design.name,
            version=design.version if version is None else version,
            output=output,
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def get_renderers(self):
        if self.action == "diagram_svg":
            return [JSONRenderer(), SvgRenderer()]
        if self.action == "diagram_png":
            return [JSONRenderer(), PngRenderer()]
        return super().get_renderers()

    def _diagram(self, fmt: str) -> HttpResponse:
        design = self.get_object()
        result = validate_spec(design.spec)
        if result.spec is None:
            raise SpecInvalid(result.errors)
        graph = plan(result.spec)
        if fmt == "svg":
            response = HttpResponse(render_svg(graph), content_type="image/svg+xml")
        else:
            response = HttpResponse(render_png(graph), content_type="image/png")
        response["Content-Disposition"] = (
            f'inline; filename="{design.name}-v{design.version}.{fmt}"'
        )
        return response

    @extend_schema(
        summary="The design's diagram as SVG (icons embedded)",
        responses={(200, "image/svg+xml"): OpenApiTypes.BINARY, **ERR},
    )
    def diagram_svg(self, request: Request, pk: str) -> HttpResponse:
        return self._diagram("svg")

    @extend_schema(
        summary="The design's diagram as PNG",
        responses={(200, "image/png"): OpenApiTypes.BINARY, **ERR},
    )
    def diagram_png(self, request: Request, pk: str) -> HttpResponse:
        return self._diagram("png")


# --- deployments -----------------------------------------------------------------------------


def design_and_target(request: Request, data: dict[str, Any]) -> tuple[Design, Target]:
    """The design and target a request names, in the caller's teams (another team's id is
    a field error, audited like a lookup by id)."""
    design = design_selectors.design_list(user=request.user).filter(pk=data["design"]).first()
    if design is None:
        audit_denied_later(
            user=request.user,
            model=Design,
            path=request.path,
            field="design",
            pk=data["design"],
        )
        raise ValidationError({"design": ["no design with this id among your teams' designs"]})
    if "target" in data:
        target = (
            deploy_selectors.target_list(user=request.user)
            .filter(pk=data["target"], team=design.team)
            .first()
        )
        if target is None:
            audit_denied_later(
                user=request.user,
                model=Target,
                path=request.path,
                field="target",
                pk=data["target"],
            )
            raise ValidationError({"target": ["no target with this id in the design's team"]})
    else:
        target = deploy_services.target_sandbox_ensure(team=design.team)
    return design, target


def started_response(
    request: Request, started: deploy_services.Started, *, replayed: bool = False
) -> Response:
    """The answer to a deploy or an executed change set: the deployment, the run it started,
    what it changes (200 when nothing: already at that version; else 202)."""
    deployment = deploy_selectors.with_progress_counts(
        deploy_selectors.deployment_list(user=request.user)
    ).get(pk=started.deployment.pk)
    body = {
        **s.DeploymentDetailSerializer(deployment, context={"request": request}).data,
        "run": started.run.number if started.run else None,
        "created": started.created,
        "changes": started.change_set.to_json()["changes"],
    }
    headers = {"Location": body["links"]["self"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if started.run is None:
        body["message"] = "Nothing to change: the deployment is already at this version."
        return Response(body, status=200, headers=headers)
    return Response(body, status=202, headers=headers)


@extend_schema_view(
    list=extend_schema(
        summary="Deployments of the caller's teams, newest first",
        parameters=[s.DeploymentFilterSerializer],
        responses={200: s.DeploymentSerializer, **BAD, 401: ERR[401]},
    ),
    retrieve=extend_schema(
        summary="A deployment with every resource's state and physical id",
        responses={200: s.DeploymentDetailSerializer, **ERR},
    ),
)
class DeploymentViewSet(
    AuditedLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Deployments of designs to targets, with their resources and numbered events."""

    lookup_value_regex = ID_REGEX

    def get_serializer_class(self):
        return s.DeploymentDetailSerializer if self.action == "retrieve" else s.DeploymentSerializer

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.action == "create":
            throttles.append(DeployThrottle())
        elif self.action == "destroy_resources":
            throttles.append(DestroyThrottle())
        return throttles

    def get_queryset(self):
        qs = deploy_selectors.with_progress_counts(
            deploy_selectors.deployment_list(user=self.request.user)
        )
        if self.action == "list":
            qs = self._filtered(qs)
        return qs.order_by("-created_at", "-pk")

    def _filtered(self, qs):
        query = s.DeploymentFilterSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        f = query.validated_data
        if "team" in f:
            team_id = parse_id(f["team"])
            qs = (
                qs.filter(team_id=team_id)
                if team_id is not None
                else qs.filter(team__slug=f["team"])
            )
        if "design" in f:
            qs = qs.filter(design_id=f["design"])
        if f.get("status"):
            qs = qs.filter(status__in=sorted(f["status"]))
        if "requested_by" in f:
            qs = qs.filter(requested_by__username=f["requested_by"])
        if "created_after" in f:
            qs = qs.filter(created_at__gte=f["created_after"])
        if "created_before" in f:
            qs = qs.filter(created_at__lte=f["created_before"])
        return qs

    def get_renderers(self):
        if self.action == "stream":
            return [JSONRenderer(), EventStreamRenderer()]
        return super().get_renderers()

    def _body(self, deployment: Deployment) -> dict[str, Any]:
        """The detail answer for a deployment a service just changed (read afresh)."""
        deployment = self.get_queryset().get(pk=deployment.pk)
        return s.DeploymentDetailSerializer(deployment, context={"request": self.request}).data

    @extend_schema(
        summary="Deploy a design, or change its live deployment in place",
        description="A design with no live deployment on the target gets a new one. One that "
        "has a live deployment there gets that deployment changed in place: the change set "
        "between what is live and the design version is applied as a run of the deployment "
        "(its id stays; `run` and `changes` say what is done). Answers 202 at once; follow it "
        "with the events endpoints, or 200 when there is nothing to change. A change set that "
        "interrupts traffic needs `allow_interruption` (400 otherwise, naming what it "
        "interrupts); one AWS would refuse, or that would lose the API credential, is a 422 "
        "with the reasons. Review a change set first with `POST /api/change-sets/`. With an "
        "`Idempotency-Key` header a retried request returns the same deployment and run.",
        request=s.DeploymentCreateSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Any unique string up to 255 characters, one per intended deployment.",
            )
        ],
        responses={
            200: s.DeploymentDetailSerializer,
            202: s.DeploymentDetailSerializer,
            400: OpenApiResponse(
                s.SpecErrorSerializer,
                description="Invalid input, or a change set that interrupts traffic without "
                "allow_interruption.",
            ),
            401: ERR[401],
            409: OpenApiResponse(
                s.ConflictSerializer, description="The deployment has a run in progress."
            ),
            422: OpenApiResponse(
                s.ErrorSerializer,
                description="The change set is refused (reasons given), or the Idempotency-Key "
                "was used for another request.",
            ),
            **THROTTLED,
        },
    )
    def create(self, request: Request) -> Response:
        body = s.DeploymentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 255:
            raise ValidationError({"Idempotency-Key": ["at most 255 characters"]})
        data = body.validated_data
        if key:
            earlier = deploy_services.deployment_by_idempotency_key(user=request.user, key=key)
            if earlier is not None:
                return self._replay(earlier, data)
        design, target = design_and_target(request, data)
        started = deploy_services.deployment_apply(
            design=design,
            target=target,
            user=request.user,
            keep_on_failure=data["keep_on_failure"],
            allow_interruption=data["allow_interruption"],
            version=data.get("version"),
            idempotency_key=key,
        )
        if key and started.deployment.design_id != design.pk:
            # A concurrent request with the same key won the race for another design.
            return self._replay(started, data)
        return started_response(request, started)

    def _replay(self, earlier: deploy_services.Started, data: dict[str, Any]) -> Response:
        deployment = earlier.deployment
        if deployment.design_id != data["design"] or (
            "target" in data and deployment.target_id != data["target"]
        ):
            return Response(
                {
                    "message": "This Idempotency-Key was already used for a different "
                    f"request (deployment #{deployment.pk}); use a new key for a new deployment."
                },
                status=422,
            )
        return started_response(self.request, earlier, replayed=True)

    @extend_schema(
        summary="The deployment's runs (create, each update, destroy), newest first",
        responses={200: s.RunSerializer(many=True), **ERR},
    )
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, pk: str) -> Response:
        deployment = self.get_object()
        page = self.paginate_queryset(deploy_selectors.deployment_runs(deployment))
        return self.get_paginated_response(s.RunSerializer(page, many=True).data)

    @extend_schema(
        summary="The deployment's drift",
        description="GET: what the last drift check found (`status` empty when never "
        "checked). POST: check now: every live resource is read from AWS and compared with "
        "what was applied (security groups and route tables whole); answers when done. "
        "Deploying the design's live version again repairs drift in place.",
        request=None,
        responses={
            200: s.DriftSerializer,
            409: OpenApiResponse(s.ErrorSerializer, description="A run is in progress."),
            503: OpenApiResponse(
                s.ErrorSerializer,
                description="AWS could not be read (POST): nothing was recorded; Retry-After.",
            ),
            **ERR,
        },
    )
    @action(detail=True, methods=["get", "post"])
    def drift(self, request: Request, pk: str) -> Response:
        deployment = self.get_object()
        if request.method == "POST":
            deploy_services.deployment_drift_check(deployment=deployment, user=request.user)
            deployment.refresh_from_db()
        return Response(deploy_selectors.deployment_drift(deployment))

    @extend_schema(
        summary="The deployment's events after a number (JSON)",
        parameters=[s.EventQuerySerializer],
        responses={200: s.EventPageSerializer, **BAD, **ERR},
    )
    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk: str) -> Response:
        deployment = self.get_object()
        query = s.EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        page = events.events_after(deployment, after, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return Response(
            {
                "events": s.EventSerializer(page, many=True).data,
                "last_seq": page[-1].seq if page else after,
                "more": more,
                "finished": deployment.status in Deployment.TERMINAL,
            }
        )

    @extend_schema(
        summary="The deployment's events, live (Server-Sent Events)",
        description="`text/event-stream`: each event has `id: <seq>` and a JSON `data` line "
        "shaped like the JSON events. Reconnect with `Last-Event-ID` (browsers do it "
        "themselves) or `?after=N` to resume without losing or repeating any. The stream ends "
        "after the event that puts the deployment in a terminal status; for a finished "
        "deployment with nothing after the given event the answer is 204 at once. Each user "
        "may hold `GANTRY_STREAMS_PER_USER` streams at a time (429 beyond), and a stream ends "
        "within seconds of its token being revoked or its user leaving the team.",
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                description="Resume after this event.",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                OpenApiParameter.HEADER,
                description="Resume after this event (what EventSource sends on a reconnect); "
                "wins over `after`.",
            ),
        ],
        responses={
            (200, "text/event-stream"): SSE_EVENT,
            204: OpenApiResponse(description="Finished; nothing follows the given event."),
            **BAD,
            **ERR,
            **THROTTLED,
        },
    )
    def stream(self, request: Request, pk: str):
        deployment = self.get_object()
        try:
            after = last_event_id(request)
        except IntegerInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        if isinstance(request.auth, ApiToken):
            stands = functools.partial(token_is_active, token_id=request.auth.pk)
        else:
            stands = session_stands(request.session.session_key or "")
        try:
            return stream_open(
                deployment=deployment,
                after=after,
                access=StreamAccess(user_id=request.user.pk, credential_stands=stands),
            )
        except StreamRefused as exc:
            if exc.status == 204:
                return Response(status=status.HTTP_204_NO_CONTENT)
            if exc.status == 429:
                raise Throttled(wait=exc.retry_after, detail=str(exc)) from None
            raise ValidationError({"after": [str(exc)]}) from None

    @extend_schema(
        summary="Cancel a queued or deploying deployment (it then rolls back)",
        request=None,
        responses={
            202: s.DeploymentDetailSerializer,
            409: OpenApiResponse(s.ErrorSerializer, description="Not cancellable now."),
            **ERR,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        deployment = deploy_services.deployment_cancel(
            deployment=self.get_object(), user=request.user
        )
        return Response(self._body(deployment), status=202)

    @extend_schema(
        summary="Destroy everything the deployment made, in reverse order",
        request=None,
        responses={
            202: s.DeploymentDetailSerializer,
            409: OpenApiResponse(s.ErrorSerializer, description="Not destroyable now."),
            **ERR,
            **THROTTLED,
        },
    )
    @action(detail=True, methods=["post"], url_path="destroy", url_name="destroy")
    def destroy_resources(self, request: Request, pk: str) -> Response:
        deployment = deploy_services.deployment_destroy(
            deployment=self.get_object(), user=request.user
        )
        return Response(self._body(deployment), status=202)


# --- change sets -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Change sets of the caller's teams' deployments, newest first",
        responses={200: s.ChangeSetSerializer(many=True), **ERR},
    ),
    retrieve=extend_schema(
        summary="A change set: what applying a design version to a live deployment does",
        responses={200: s.ChangeSetSerializer, **ERR},
    ),
)
class ChangeSetViewSet(
    AuditedLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Change sets: a design version reviewed against its live deployment (per logical id add,
    modify, replace or remove; per property before, after and whether it forces replacement),
    then executed as an update run. One made before the deployment moved on (a run, a drift
    check) can no longer be executed: 409, make a new one."""

    serializer_class = s.ChangeSetSerializer
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        return deploy_selectors.change_set_list(user=self.request.user).order_by("-created_at")

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.action == "execute":
            throttles.append(DeployThrottle())
        return throttles

    @extend_schema(
        summary="Make a change set for a design version and its live deployment on a target",
        request=s.ChangeSetCreateSerializer,
        responses={
            201: s.ChangeSetSerializer,
            400: BAD[400],
            409: OpenApiResponse(
                s.ErrorSerializer, description="The design has no live deployment there."
            ),
            **ERR,
        },
    )
    def create(self, request: Request) -> Response:
        body = s.ChangeSetCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        design, target = design_and_target(request, body.validated_data)
        change_set = deploy_services.change_set_create(
            design=design,
            target=target,
            user=request.user,
            version=body.validated_data.get("version"),
        )
        data = s.ChangeSetSerializer(change_set, context={"request": request}).data
        return Response(data, status=201, headers={"Location": data["links"]["self"]})

    @extend_schema(
        summary="Apply the change set (an update run of its deployment)",
        request=s.ChangeSetExecuteSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Any unique string up to 255 characters, one per intended run.",
            )
        ],
        responses={
            200: s.DeploymentDetailSerializer,
            202: s.DeploymentDetailSerializer,
            400: OpenApiResponse(
                s.ErrorSerializer,
                description="It interrupts traffic and allow_interruption is not true.",
            ),
            409: OpenApiResponse(
                s.ErrorSerializer,
                description="The deployment moved on since it was made, has a run in "
                "progress, or it was executed already.",
            ),
            422: OpenApiResponse(s.ErrorSerializer, description="It is refused."),
            **ERR,
            **THROTTLED,
        },
    )
    @action(detail=True, methods=["post"])
    def execute(self, request: Request, pk: str) -> Response:
        change_set = self.get_object()
        body = s.ChangeSetExecuteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 255:
            raise ValidationError({"Idempotency-Key": ["at most 255 characters"]})
        if key:
            earlier = deploy_services.deployment_by_idempotency_key(user=request.user, key=key)
            if earlier is not None:
                return started_response(request, earlier, replayed=True)
        started = deploy_services.change_set_execute(
            change_set=change_set,
            user=request.user,
            idempotency_key=key,
            **body.validated_data,
        )
        return started_response(request, started)


# --- targets ---------------------------------------------------------------------------------


TARGET_ERRS = {
    400: BAD[400],
    403: OpenApiResponse(s.ErrorSerializer, description="Only the team's admins manage targets."),
}


@extend_schema_view(
    list=extend_schema(
        summary="Targets of the caller's teams", responses={200: s.TargetSerializer, **ERR}
    ),
    retrieve=extend_schema(
        summary="A target (never its external id)", responses={200: s.TargetSerializer, **ERR}
    ),
)
class TargetViewSet(AuditedLookupMixin, viewsets.ModelViewSet):
    """Where a team deploys: the sandbox, or an AWS account through a role Gantry assumes."""

    serializer_class = s.TargetSerializer
    lookup_value_regex = ID_REGEX
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return deploy_selectors.target_list(user=self.request.user).order_by("team__name", "name")

    @extend_schema(
        summary="Add a target (team admins)",
        responses={201: s.TargetSerializer, **TARGET_ERRS, 401: ERR[401]},
    )
    def create(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        team = _team_for(request, data.get("team_id"))
        target = deploy_services.target_create(
            team=team,
            user=request.user,
            name=data["name"],
            kind=data.get("kind", Target.Kind.SANDBOX),
            region=data.get("region", "us-east-1"),
            role_arn=data.get("role_arn", ""),
            external_id=data.get("external_id", ""),
        )
        out = self.get_serializer(target).data
        return Response(out, status=201, headers={"Location": f"/api/targets/{target.pk}/"})

    @extend_schema(
        summary="Change a target (team admins)",
        responses={200: s.TargetSerializer, **TARGET_ERRS, **ERR},
    )
    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        target = self.get_object()
        body = self.get_serializer(target, data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        data.pop("team_id", None)
        external_id = data.pop("external_id", None)
        target = deploy_services.target_update(
            target=target, user=request.user, external_id=external_id, **data
        )
        return Response(self.get_serializer(target).data)

    @extend_schema(
        summary="Change some of a target's fields (team admins)",
        responses={200: s.TargetSerializer, **TARGET_ERRS, **ERR},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    @extend_schema(
        summary="Delete a target that no deployment used (team admins)",
        responses={
            204: None,
            403: TARGET_ERRS[403],
            409: OpenApiResponse(s.ErrorSerializer, description="Deployments used it."),
            **ERR,
        },
    )
    def destroy(self, request: Request, pk: str) -> Response:
        deploy_services.target_delete(target=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tokens ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="The caller's API tokens (never their keys)",
        responses={200: s.TokenSerializer, **ERR},
    ),
    retrieve=extend_schema(
        summary="One of the caller's tokens", responses={200: s.TokenSerializer, **ERR}
    ),
)
class TokenViewSet(
    AuditedLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own API tokens (never their keys, which are shown once)."""

    serializer_class = s.TokenSerializer
    lookup_value_regex = ID_REGEX

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user).order_by("-created_at", "-pk")

    @extend_schema(
        summary="Make a token; its key is in this answer only",
        request=s.TokenCreateSerializer,
        responses={
            201: s.TokenCreatedSerializer,
            **BAD,
            401: ERR[401],
            409: OpenApiResponse(
                s.ErrorSerializer, description="The caller already holds 20 active tokens."
            ),
        },
    )
    def create(self, request: Request) -> Response:
        body = s.TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        name = body.validated_data["name"]
        token, key = token_create(user=request.user, name=name)
        data = s.TokenSerializer(token).data
        return Response({**data, "key": key}, status=201)

    @extend_schema(summary="Revoke a token", request=None, responses={204: None, **ERR})
    def destroy(self, request: Request, pk: str) -> Response:
        token_revoke(token=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
