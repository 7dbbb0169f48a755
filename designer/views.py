"""Design pages. Thin: they reshape requests and call services, selectors and the preview."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from designer import selectors, services
from designer.cost import Assumptions
from designer.diagram import render_png, render_svg
from designer.forms import assumptions_from_form, spec_from_form
from designer.plan import plan
from designer.preview import design_preview
from designer.regions import REGION_AZ_LETTERS, REGIONS
from designer.spec import DEFAULT_SPEC, Issue, validate_spec
from gantry import strict_json
from gantry.parsing import parse_id
from teams.selectors import team_list

SCALARS = [
    (
        "name",
        "Name",
        "Lowercase letters, digits and hyphens, 3 to 40 characters, unique in the team.",
    ),
    ("region", "Region", "Subnets go to this region's Availability Zones in order."),
    ("vpc_cidr", "VPC CIDR", "An IPv4 range from /16 to /28, e.g. 10.0.0.0/16."),
    ("api_port", "API port", "The port the internal API listens on (1 to 65535)."),
]
LISTS = [
    (
        "public_subnet_cidrs",
        "Public subnets (for NAT gateways)",
        "Public",
        "One per AZ; they hold only the NAT gateways. Not needed when NAT is off.",
    ),
    (
        "lambda_subnet_cidrs",
        "Lambda subnets (private)",
        "Lambda",
        "One per AZ; the Lambda's network interfaces live here.",
    ),
    (
        "api_subnet_cidrs",
        "API subnets (private)",
        "API",
        "One per AZ; an ALB needs at least two.",
    ),
]
CHOICES = [
    (
        "nat",
        "Internet access for the Lambda",
        [
            ("none", "No NAT", "no internet; Secrets Manager through a VPC endpoint"),
            ("single", "One NAT gateway", "internet through one AZ"),
            ("per_az", "A NAT gateway per AZ", "survives the loss of an AZ; costs the most"),
        ],
    ),
    (
        "api_kind",
        "Internal API",
        [
            ("ec2", "One EC2 instance", "t3.micro in the first API subnet"),
            ("alb", "Internal ALB + Auto Scaling group", "spans the API subnets"),
        ],
    ),
]
ASSUMPTION_LABELS = {
    "nat_gb_per_month": "GB through the NAT per month",
    "lambda_requests_per_month": "Lambda requests per month",
    "lambda_avg_duration_ms": "Lambda average duration (ms)",
    "lambda_memory_mb": "Lambda memory (MB)",
    "endpoint_gb_per_month": "GB through the VPC endpoint per month",
    "alb_lcu": "ALB load (LCU)",
    "log_gb_per_month": "Log GB ingested per month",
    "secret_api_calls_per_month": "Secrets Manager calls per month",
}


def _assumption_names() -> list[str]:
    return [f.name for f in fields(Assumptions)]


def _issues_by(
    issues: list[Issue],
) -> tuple[dict[str, list[str]], dict[tuple[str, int], list[str]]]:
    flat: dict[str, list[str]] = {}
    indexed: dict[tuple[str, int], list[str]] = {}
    for issue in issues:
        if issue.index is None:
            flat.setdefault(issue.field, []).append(issue.message)
        else:
            indexed.setdefault((issue.field, issue.index), []).append(issue.message)
    return flat, indexed


def _editor_context(
    request: HttpRequest,
    *,
    spec: dict[str, Any],
    errors: list[Issue],
    design=None,
    assumptions: dict[str, str] | None = None,
    selected_team: int | None = None,
    loaded_version: int | None = None,
) -> dict[str, Any]:
    """Everything the editor template shows, for a spec that may be invalid or oddly typed."""
    flat, indexed = _issues_by(errors)
    region = spec.get("region") if spec.get("region") in REGION_AZ_LETTERS else "us-east-1"
    letters = REGION_AZ_LETTERS[region]

    def text(value: Any) -> str:
        return "" if value is None else value if isinstance(value, str) else json.dumps(value)

    lists = []
    for name, label, short, help_text in LISTS:
        values = spec.get(name) if isinstance(spec.get(name), list) else []
        if not values and name != "public_subnet_cidrs":
            values = [""]
        rows = [
            {
                "value": text(v),
                "errors": indexed.get((name, i), []),
                "az": f"{region}{letters[i]}" if i < len(letters) else f"(no AZ {i + 1})",
            }
            for i, v in enumerate(values)
        ]
        lists.append(
            {
                "name": name,
                "label": label,
                "short": short,
                "help": help_text,
                "rows": rows,
                "errors": flat.get(name, []),
            }
        )
    tags = spec.get("tags") if isinstance(spec.get("tags"), dict) else {}
    teams = list(team_list(user=request.user)) if design is None else []
    preview = design_preview(spec_data=spec, assumptions_data=assumptions)
    assumption_values = assumptions or {}
    defaults = Assumptions()
    return {
        "design": design,
        "teams": teams,
        "selected_team": selected_team or (teams[0].pk if teams else None),
        "scalars": [
            {
                "name": n,
                "label": lbl,
                "help": h,
                "value": text(spec.get(n)),
                "errors": flat.get(n, []),
            }
            for n, lbl, h in SCALARS
        ],
        "lists": lists,
        "choices": [
            {
                "name": n,
                "label": lbl,
                "value": spec.get(n),
                "errors": flat.get(n, []),
                "options": [{"value": v, "title": t, "help": h} for v, t, h in opts],
            }
            for n, lbl, opts in CHOICES
        ],
        "tags": [{"key": k, "value": text(v)} for k, v in tags.items()],
        "tag_errors": flat.get("tags", []),
        "errors": flat,
        "error_count": len(errors),
        "save_errors": [e.to_json() for e in errors],
        "regions": REGIONS,
        "region_azs": REGION_AZ_LETTERS,
        "warnings": preview["warnings"],
        "preview_html": preview["html"],
        "assumptions": [
            {
                "name": n,
                "label": ASSUMPTION_LABELS.get(n, n.replace("_", " ")),
                "value": assumption_values.get(n, getattr(defaults, n)),
            }
            for n in _assumption_names()
        ],
        "assumption_errors": preview["assumption_errors"],
        "loaded_version": loaded_version,
        **_deploy_context(request, design),
    }


def _deploy_context(request: HttpRequest, design) -> dict[str, Any]:
    """Targets and the active deployment, for a saved design's Deploy bar."""
    if design is None:
        return {}
    from deployer.models import Deployment
    from deployer.selectors import target_list

    return {
        "targets": list(target_list(user=request.user).filter(team=design.team)),
        "active_deployment": Deployment.objects.filter(
            design=design, status__in=Deployment.ACTIVE
        ).first(),
    }


def _render_editor(request: HttpRequest, status: int = 200, **kwargs: Any) -> HttpResponse:
    return render(
        request, "designer/design_edit.html", _editor_context(request, **kwargs), status=status
    )


def _suggest_name(user) -> str:
    taken = set(selectors.design_list(user=user).values_list("name", flat=True))
    base = DEFAULT_SPEC["name"]
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


@login_required
@require_GET
def design_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "designer/design_list.html", {"designs": selectors.design_list(user=request.user)}
    )


@login_required
@require_http_methods(["GET", "POST"])
def design_new(request: HttpRequest) -> HttpResponse:
    teams = team_list(user=request.user)
    if not teams.exists():
        messages.error(
            request, "You are not a member of any team yet; ask a Gantry admin to add you."
        )
        return redirect("designer:design_list")
    if request.method == "GET":
        spec = {**DEFAULT_SPEC, "name": _suggest_name(request.user)}
        return _render_editor(request, spec=spec, errors=[])
    spec, problems = spec_from_form(request.POST)
    assumptions = assumptions_from_form(request.POST, _assumption_names())
    team_id = parse_id(request.POST.get("team"))
    team = teams.filter(pk=team_id).first() if team_id is not None else None
    if team is None:
        problems.append(Issue("team", "choose one of your teams"))
    if not problems:
        try:
            design = services.design_create(team=team, user=request.user, spec_data=spec)
        except services.SpecInvalid as exc:
            problems.extend(exc.issues)
        else:
            messages.success(request, f"Saved {design.name} as version 1.")
            return redirect("designer:design_edit", pk=design.pk)
    return _render_editor(
        request,
        status=400,
        spec=spec,
        errors=problems,
        assumptions=assumptions,
        selected_team=team.pk if team else None,
    )


@login_required
@require_http_methods(["GET", "POST"])
def design_edit(request: HttpRequest, pk: int) -> HttpResponse:
    design = selectors.design_get(user=request.user, pk=pk, path=request.path)
    if request.method == "GET":
        if request.GET.get("version"):
            # Not a version number: no such version, the same 404 as a missing one.
            version = parse_id(request.GET["version"])
            if version is None:
                raise Http404("no such version")
            snapshot = selectors.design_version_get(design=design, version=version)
            return _render_editor(
                request,
                spec=snapshot.spec,
                errors=[],
                design=design,
                loaded_version=snapshot.version,
            )
        return _render_editor(request, spec=design.spec, errors=[], design=design)
    spec, problems = spec_from_form(request.POST)
    assumptions = assumptions_from_form(request.POST, _assumption_names())
    if not problems:
        previous = design.version
        try:
            design = services.design_update(design=design, user=request.user, spec_data=spec)
        except services.SpecInvalid as exc:
            problems.extend(exc.issues)
        else:
            if design.version == previous:
                messages.info(request, "Nothing changed; no new version was saved.")
            else:
                messages.success(
                    request,
                    f"Saved version {design.version}; version {previous} is kept in the history.",
                )
            return redirect("designer:design_edit", pk=design.pk)
    return _render_editor(
        request, status=400, spec=spec, errors=problems, design=design, assumptions=assumptions
    )


@login_required
@require_GET
def design_versions(request: HttpRequest, pk: int) -> HttpResponse:
    design = selectors.design_get(user=request.user, pk=pk, path=request.path)
    versions = list(selectors.design_version_list(design=design))
    for v in versions:
        v.spec_json = json.dumps(v.spec, indent=2, sort_keys=True)
    return render(
        request, "designer/design_versions.html", {"design": design, "versions": versions}
    )


def _json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse(
        {"valid": False, "errors": [{"field": "spec", "message": message}]}, status=status
    )


@login_required
@require_POST
def preview(request: HttpRequest) -> JsonResponse:
    """Validate and preview a spec: the page posts its form; automation may post JSON
    ``{"spec": {...}, "assumptions": {...}}``."""
    if request.content_type == "application/json":
        try:
            body = strict_json.loads(request.body.decode("utf-8") or "null")
        except UnicodeDecodeError:
            return _json_error("the request body is not UTF-8 text; send JSON", 400)
        except strict_json.JSONRejected as exc:
            return _json_error(f"the request body {exc}", 400)
        if not isinstance(body, dict) or "spec" not in body:
            return _json_error('send a JSON object {"spec": {...}, "assumptions": {...}}', 400)
        result = design_preview(spec_data=body["spec"], assumptions_data=body.get("assumptions"))
    else:
        spec, problems = spec_from_form(request.POST)
        assumptions = assumptions_from_form(request.POST, _assumption_names())
        result = design_preview(spec_data=spec, assumptions_data=assumptions, extra_errors=problems)
    return JsonResponse(result)


def _diagram_response(graph, fmt: str, name: str) -> HttpResponse:
    if fmt == "png":
        response = HttpResponse(render_png(graph), content_type="image/png")
    else:
        response = HttpResponse(render_svg(graph), content_type="image/svg+xml")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@login_required
@require_POST
def diagram_download(request: HttpRequest) -> HttpResponse:
    """The diagram of the form's current (unsaved) spec, as a file."""
    fmt = request.POST.get("format", "png")
    if fmt not in ("png", "svg"):
        return HttpResponse("format must be png or svg", status=400, content_type="text/plain")
    spec, problems = spec_from_form(request.POST)
    result = validate_spec(spec)
    if problems or not result.valid or result.spec is None:
        lines = [f"{i.field}: {i.message}" for i in [*problems, *result.errors]]
        return HttpResponse(
            "This design has errors; fix them and download again.\n\n" + "\n".join(lines),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    return _diagram_response(plan(result.spec), fmt, result.spec.name)


@login_required
@require_GET
def design_diagram(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    design = selectors.design_get(user=request.user, pk=pk, path=request.path)
    if fmt not in ("png", "svg"):
        raise Http404("diagrams come as .png or .svg")
    result = validate_spec(design.spec)
    if result.spec is None:  # a spec saved under older rules; say so instead of failing
        return HttpResponse(
            "This saved design no longer passes validation; open it in the editor to fix it.",
            status=409,
            content_type="text/plain",
        )
    return _diagram_response(plan(result.spec), fmt, design.name)
