"""The design page: the designer's editor and, for a saved design, what the deployer knows
about it (the Deploy bar: its team's targets and the deployment in progress; which version is
live on which target, with "Review changes" when the saved version differs, ``pages/changes.py``).

:func:`design_page_extras` is the one function that asks other apps about a design.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from deployer.models import Deployment
from deployer.selectors import target_list
from designer import selectors, services
from designer.editor import assumption_names, editor_context, suggest_name
from designer.forms import assumptions_from_form, spec_from_form
from designer.models import Design
from designer.spec import DEFAULT_SPEC, Issue
from gantry.parsing import parse_id
from pages.changes import live_versions
from teams.selectors import team_list


def design_page_extras(*, user: AbstractBaseUser, design: Design | None) -> dict[str, Any]:
    """What the design page shows beside the editor: the Deploy bar of a saved design."""
    if design is None:
        return {}
    return {
        "targets": list(target_list(user=user).filter(team=design.team)),
        "active_deployment": Deployment.objects.filter(
            design=design, status__in=Deployment.ACTIVE
        ).first(),
        "live_versions": live_versions(design=design),
    }


def _render(request: HttpRequest, status: int = 200, **kwargs: Any) -> HttpResponse:
    context = {
        **editor_context(user=request.user, **kwargs),
        **design_page_extras(user=request.user, design=kwargs.get("design")),
    }
    return render(request, "designer/design_edit.html", context, status=status)


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
        spec = {**DEFAULT_SPEC, "name": suggest_name(request.user)}
        return _render(request, spec=spec, errors=[])
    spec, problems = spec_from_form(request.POST)
    assumptions = assumptions_from_form(request.POST, assumption_names())
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
    return _render(
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
            return _render(
                request,
                spec=snapshot.spec,
                errors=[],
                design=design,
                loaded_version=snapshot.version,
            )
        return _render(request, spec=design.spec, errors=[], design=design)
    spec, problems = spec_from_form(request.POST)
    assumptions = assumptions_from_form(request.POST, assumption_names())
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
    return _render(
        request, status=400, spec=spec, errors=problems, design=design, assumptions=assumptions
    )
