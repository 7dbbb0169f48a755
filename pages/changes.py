"""What changing a live stack would do, before it is done: the design page's "Review changes"
(the change set of a saved version against its live deployment on a target: a table, the
diagram coloured per action, the monthly cost before and after) with its "Apply", and the
version history's diff between any two versions.

The change sets are the deployer's (``deployer.changes``), never recomputed here: the review
shows what ``deployment_apply`` will do, and Apply sends back the deployment's event number the
review was made at, so a stack that moved on meanwhile is reviewed again rather than changed
unseen.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployer import constants, services
from deployer.changes import ChangeSet, Live, change_set
from deployer.graphs import deployment_graph
from deployer.models import Deployment, Target
from deployer.selectors import target_list
from designer import selectors as design_selectors
from designer.cost import estimate_cost
from designer.diagram import render_svg
from designer.graph import ResourceGraph
from designer.models import Design
from designer.plan import plan
from designer.spec import Spec, validate_spec
from designer.wording import FIELD_LABELS
from gantry.parsing import IntegerInvalid, parse_id, parse_int
from pages.apply import APPLY_ERRORS, apply_error
from pages.states import CHANGE_BY_KEY, CHANGE_SIGNS, change_marks


def _shown(value: Any) -> str:
    """A property or spec value as one line of text."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def change_rows(changes: ChangeSet) -> list[dict[str, Any]]:
    """The change set's table: one row per resource, with its sign, words and properties."""
    rows = []
    for c in changes.changes:
        shown = CHANGE_BY_KEY.get(c.action)
        rows.append(
            {
                "change": c,
                "sign": CHANGE_SIGNS.get(c.action, "?"),
                "action_label": shown.label if shown else c.action,
                "properties": [
                    {
                        "name": p.name,
                        "before": _shown(p.before),
                        "after": _shown(p.after),
                        "replacement": p.replacement,
                    }
                    for p in c.properties
                ],
            }
        )
    return rows


def change_counts(changes: ChangeSet) -> list[dict[str, Any]]:
    """``2 to add, 1 to replace``: per action, how many, in the legend's order."""
    counts = []
    for key in ("add", "modify", "replace", "remove"):
        n = sum(1 for c in changes.changes if c.action == key)
        if n:
            counts.append({"key": key, "n": n, "label": CHANGE_BY_KEY[key].label.lower()})
    return counts


def change_diagram(graph: ResourceGraph, changes: ChangeSet) -> str:
    """The new graph's diagram, each changed resource in its action's colour."""
    return render_svg(graph, states=change_marks({c.logical_id: c.action for c in changes.changes}))


def cost_change(
    before: ResourceGraph | None, after: ResourceGraph, *, labels: tuple[str, str]
) -> dict[str, Any]:
    """The monthly cost before and after (the designer's estimate of each graph), with the
    columns' headings."""
    old = estimate_cost(before) if before is not None else None
    new = estimate_cost(after)
    result: dict[str, Any] = {
        "after": new,
        "before": old,
        "before_label": labels[0],
        "after_label": labels[1],
    }
    if old is not None:
        delta = round(new["total_monthly_usd"] - old["total_monthly_usd"], 2)
        result["delta"] = delta
        result["delta_abs"] = abs(delta)
    return result


def _version_spec(design: Design, version: int) -> dict[str, Any]:
    """A saved version's spec, or Http404 for a version the design does not have."""
    if version == design.version:
        return design.spec
    return design_selectors.design_version_get(design=design, version=version).spec


def _valid(spec_data: dict[str, Any]) -> Spec | None:
    return validate_spec(spec_data).spec


# --- the design page's live stacks ------------------------------------------------------------


def live_versions(*, design: Design) -> list[dict[str, Any]]:
    """Which version of the design is live on which target, and whether the saved version
    differs from it (then the design page offers "Review changes")."""
    from deployer.selectors import design_live_deployments

    return [
        {
            "deployment": d,
            "target": d.target,
            "version": d.design_version,
            "differs": d.spec != design.spec,
            "busy": d.status in Deployment.ACTIVE,
        }
        for d in design_live_deployments(design=design)
    ]


# --- Review changes and Apply -----------------------------------------------------------------


def _target(request: HttpRequest, design: Design, raw: str | None) -> Target:
    """One of the design's team's targets, or Http404 (not a number, not theirs)."""
    target_id = parse_id(raw)
    target = (
        target_list(user=request.user).filter(team=design.team, pk=target_id).first()
        if target_id is not None
        else None
    )
    if target is None:
        raise Http404("no such target")
    return target


def _version(design: Design, raw: str | None) -> int:
    if not raw:
        return design.version
    version = parse_id(raw)
    if version is None or not design.versions.filter(version=version).exists():
        raise Http404("no such version")
    return version


def review_context(*, design: Design, target: Target, version: int) -> dict[str, Any]:
    """The review of applying ``version`` of the design to its live deployment on ``target``."""
    live = services.deployment_live(design=design, target=target)
    spec = _valid(_version_spec(design, version))
    context: dict[str, Any] = {
        "design": design,
        "target": target,
        "version": version,
        "live": live,
        "spec_invalid": spec is None,
    }
    if live is None or spec is None:
        return context
    after = plan(spec)
    changes = services.change_set_for(deployment=live, spec=spec)
    context.update(
        {
            "changes": changes,
            "rows": change_rows(changes),
            "counts": change_counts(changes),
            "removed": [c for c in changes.changes if c.action == "remove"],
            "svg": change_diagram(after, changes),
            "cost": cost_change(
                deployment_graph(live),
                after,
                labels=(f"Live now (v{live.design_version})", f"After (v{version})"),
            ),
            "based_on_seq": live.last_event_seq,
            "busy": live.status in Deployment.ACTIVE,
            "can_apply": not changes.refused
            and not changes.empty
            and live.status in constants.UPDATABLE,
        }
    )
    return context


@login_required
@require_GET
def design_changes(request: HttpRequest, pk: int) -> HttpResponse:
    """Review changes: ``?target=<id>&version=<n>`` (the current version by default)."""
    design = design_selectors.design_get(user=request.user, pk=pk, path=request.path)
    target = _target(request, design, request.GET.get("target"))
    version = _version(design, request.GET.get("version"))
    context = review_context(design=design, target=target, version=version)
    return render(request, "designer/design_changes.html", context)


@login_required
@require_POST
def design_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply the reviewed change set: an update run of the live deployment. Refused (said on
    the review page, never an error page) when the change set is refused, interrupts traffic
    without the confirmation, or the deployment moved on since the review."""
    design = design_selectors.design_get(user=request.user, pk=pk, path=request.path)
    target = _target(request, design, request.POST.get("target"))
    version = _version(design, request.POST.get("version"))
    if services.deployment_live(design=design, target=target) is None:
        messages.error(request, f"{design.name} has no live deployment on {target.name}.")
        return redirect("designer:design_edit", pk=design.pk)
    try:
        based_on = parse_int(request.POST.get("based_on_seq"), field="based_on_seq")
    except IntegerInvalid:
        context = review_context(design=design, target=target, version=version)
        context["error"] = "Not applied: the form lost what was reviewed; review the changes again."
        return render(request, "designer/design_changes.html", context, status=400)
    try:
        started = services.deployment_apply(
            design=design,
            target=target,
            user=request.user,
            version=version,
            based_on_seq=based_on,
            allow_interruption=request.POST.get("allow_interruption") == "on",
            keep_on_failure=request.POST.get("keep_on_failure") == "on",
        )
    except APPLY_ERRORS as exc:
        status = 409 if not isinstance(exc, services.InterruptionNotConfirmed) else 400
        context = review_context(design=design, target=target, version=version)
        context["error"] = "Not applied: " + apply_error(exc)
        return render(request, "designer/design_changes.html", context, status=status)
    if started.run is None:
        messages.info(request, "Nothing to change: the live deployment is this version already.")
    else:
        messages.success(
            request,
            f"Applying v{version}: run {started.run.number} updates deployment "
            f"{started.deployment.pk} in place.",
        )
    return redirect("deployer:deployment_detail", pk=started.deployment.pk)


# --- the version history's diff ---------------------------------------------------------------


def spec_diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, str]]:
    """The spec fields that differ, in the form's words."""
    rows = []
    for name in sorted(
        set(before) | set(after),
        key=lambda n: list(FIELD_LABELS).index(n) if n in FIELD_LABELS else len(FIELD_LABELS),
    ):
        if before.get(name) != after.get(name):
            rows.append(
                {
                    "name": name,
                    "label": FIELD_LABELS.get(name, name),
                    "before": _shown(before.get(name)),
                    "after": _shown(after.get(name)),
                }
            )
    return rows


def graph_diff(before: Spec, after: Spec) -> ChangeSet:
    """What a live stack of ``before`` would go through to become ``after``: the deployer's
    change set between the two versions' graphs (no physical ids, no drift)."""
    old = plan(before)
    live = {node.logical_id: Live(node=node) for node in old}
    return change_set(live, plan(after), region=after.region, repair_drift=False)


@login_required
@require_GET
def design_version_diff(request: HttpRequest, pk: int) -> HttpResponse:
    """``?from=<n>&to=<m>``: the two versions' spec fields side by side, and what changes in
    the resources. A version that does not exist is the 404 page."""
    design = design_selectors.design_get(user=request.user, pk=pk, path=request.path)
    versions = list(design_selectors.design_version_list(design=design))
    newest = versions[0].version if versions else design.version
    first = _version(design, request.GET.get("from") or str(max(1, newest - 1)))
    second = _version(design, request.GET.get("to") or str(newest))
    before_data, after_data = _version_spec(design, first), _version_spec(design, second)
    before, after = _valid(before_data), _valid(after_data)
    context: dict[str, Any] = {
        "design": design,
        "versions": versions,
        "first": first,
        "second": second,
        "fields": spec_diff(before_data, after_data),
    }
    if before is not None and after is not None:
        changes = graph_diff(before, after)
        context.update(
            {
                "changes": changes,
                "rows": change_rows(changes),
                "counts": change_counts(changes),
                "cost": cost_change(plan(before), plan(after), labels=(f"v{first}", f"v{second}")),
            }
        )
    return render(request, "designer/design_version_diff.html", context)
