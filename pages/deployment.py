"""The deployment page: the deployer's records, each resource's badge (``pages/states.py``),
the design's diagram coloured by those badges, the event log, and what a live stack adds: its
runs, its drift (with "Check drift now" and "Repair") and the stack's outputs.

Its status answer (``status.json``) and its diagram are what the page's script asks for as
events arrive. Whatever else the page shows of a live deployment goes in
:func:`deployment_page_context`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from deployer import constants, selectors, services
from deployer.graphs import deployment_graph
from deployer.models import Deployment
from deployer.selectors import progress_done_state
from designer.diagram import render_svg
from gantry.human import duration
from pages.apply import APPLY_ERRORS, apply_error
from pages.states import DRIFTED, diagram_marks, display_state, page_vocabulary, phase_of

logger = logging.getLogger(__name__)

#: Bump when the coloured diagram's drawing changes, so no cached picture of the old one shows.
DIAGRAM_VERSION = "2"
#: How many names a waiting resource's reason lists before "and N more".
_NAMES_SHOWN = 3


def _names(ids: list[str]) -> str:
    shown = ids[:_NAMES_SHOWN]
    text = ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0]
    return text + (f" and {len(ids) - len(shown)} more" if len(ids) > len(shown) else "")


def _after(blocking: list[str], state: str) -> str:
    """``after Vpc and LambdaRole are ready``, or "" when nothing blocks."""
    if not blocking:
        return ""
    return f"after {_names(blocking)} {'is' if len(blocking) == 1 else 'are'} {state}"


def resource_rows(deployment: Deployment, progress: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource as its row shows it: badge, why it waits, and its own times.

    A row's time is the record's (ready - started, or deleted - delete started), never an
    event's: one pass can create a resource and see it ready, and both events carry that
    pass's time. Why a resource waits: its record's reason (AWS's answer), its error when it
    failed, or else the resources it waits for (what it depends on, while being created;
    what depends on it, while being deleted).
    """
    graph = deployment_graph(deployment)
    states = {r["logical_id"]: r["state"] for r in progress["resources"]}
    dependents: dict[str, list[str]] = {n.logical_id: [] for n in graph}
    for node in graph:
        for dep in node.depends_on:
            dependents.setdefault(dep, []).append(node.logical_id)
    rows = []
    for r in progress["resources"]:
        lid = r["logical_id"]
        node = graph.nodes.get(lid)
        deleting = r["state"] in ("deleting", "deleted")
        shown = display_state(
            state=r["state"],
            status=deployment.status,
            delete_started=bool(r["delete_started_at"]),
            drift=r["drift"],
        )
        reason = r["last_error"] if r["state"] == "failed" else r["waiting_reason"]
        if not reason and shown.key == "waiting_to_delete":
            reason = _after(
                [d for d in dependents.get(lid, []) if states.get(d) != "deleted"], "deleted"
            )
        if not reason and shown.key == "waiting_to_create" and node is not None:
            reason = _after([d for d in node.depends_on if states.get(d) != "ready"], "ready")
        started = r["delete_started_at"] if deleting else r["started_at"]
        ended = r["deleted_at"] if deleting else r["ready_at"]
        elapsed = None
        if started and ended:
            elapsed = (
                datetime.fromisoformat(ended) - datetime.fromisoformat(started)
            ).total_seconds()
        rows.append(
            {
                **r,
                "label": (node.meta.get("label") if node else None) or lid,
                "display": shown.key,
                "display_label": shown.label,
                "reason": reason,
                "started": started,
                "ended": ended,
                "elapsed": duration(elapsed) if elapsed is not None else "",
                # The countdown is shown only for a reason the reconciler will look at again.
                "next_check_at": r["next_check_at"] if r["waiting_reason"] else None,
            }
        )
    return rows


def page_status(deployment: Deployment) -> dict[str, Any]:
    """The page's status answer: the deployer's progress, each row as the page shows it, and
    the server's clock (countdowns are counted against it, not the browser's)."""
    progress = selectors.deployment_progress(deployment)
    return {
        **progress,
        "phase": phase_of(deployment.status),
        "done_state": progress_done_state(deployment.status),
        "resources": resource_rows(deployment, progress),
        "now": timezone.now().isoformat(),
    }


def coloured_diagram(deployment: Deployment, rows: list[dict[str, Any]]) -> str:
    """The design's diagram with every resource in its badge's colour (cached per picture)."""
    states = {r["logical_id"]: r["display"] for r in rows}
    key = (
        f"deploy-diagram:{DIAGRAM_VERSION}:"
        + hashlib.sha256(json.dumps([deployment.pk, states], sort_keys=True).encode()).hexdigest()
    )
    svg = cache.get(key)
    if svg is None:
        svg = render_svg(deployment_graph(deployment), states=diagram_marks(states))
        cache.set(key, svg, 3600)
    return svg


def drift_context(deployment: Deployment) -> dict[str, Any]:
    """The drift panel: the last check's status and time, and every resource it found changed
    or deleted outside Gantry with its differences (property, what Gantry applied, what AWS
    has)."""
    drift = selectors.deployment_drift(deployment)
    drifted = [r for r in drift["resources"] if r["drift"] in DRIFTED]
    live = deployment.status not in Deployment.ACTIVE and deployment.status not in constants.GONE
    return {
        "status": deployment.drift_status,
        "status_display": deployment.get_drift_status_display(),
        "checked_at": deployment.drift_checked_at,
        "drifted": drifted,
        "can_check": live,
        "can_repair": live
        and deployment.status in constants.UPDATABLE
        and deployment.drift_status == constants.DriftStatus.DRIFTED,
    }


def deployment_page_context(deployment: Deployment) -> dict[str, Any]:
    status = page_status(deployment)
    return {
        "runs": list(selectors.deployment_runs(deployment)),
        "drift": drift_context(deployment),
        "outputs": selectors.deployment_outputs(deployment),
        "deployment": deployment,
        "progress": status,
        "rows": status["resources"],
        "svg": coloured_diagram(deployment, status["resources"]),
        # Up to the number the stream resumes after (data-last-seq), never past it: an
        # event saved while this page renders arrives once, over the stream.
        "events": list(deployment.events.filter(seq__lte=status["last_event_seq"]).order_by("seq")),
        "can_cancel": deployment.status in constants.CANCELLABLE
        and not deployment.cancel_requested,
        "can_destroy": deployment.status in services.DESTROYABLE,
        "vocabulary": {
            **page_vocabulary(),
            "statuses": dict(Deployment.Status.choices),
            "cancellable": list(constants.CANCELLABLE),
            "destroyable": list(services.DESTROYABLE),
            "terminal": list(Deployment.TERMINAL),
            "run_statuses": dict(constants.RunStatus.choices),
        },
    }


@login_required
@require_GET
def deployment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk, path=request.path)
    return render(request, "deployer/deployment_detail.html", deployment_page_context(deployment))


@login_required
@require_GET
def deployment_status(request: HttpRequest, pk: int) -> JsonResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk, path=request.path)
    return JsonResponse(page_status(deployment))


@login_required
@require_GET
def deployment_diagram(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk, path=request.path)
    rows = resource_rows(deployment, selectors.deployment_progress(deployment))
    return HttpResponse(coloured_diagram(deployment, rows), content_type="image/svg+xml")


@login_required
@require_POST
def deployment_drift_check(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Check drift now": read every live resource from AWS and compare (a few seconds)."""
    deployment = selectors.deployment_get(user=request.user, pk=pk, path=request.path)
    try:
        report = services.deployment_drift_check(deployment=deployment, user=request.user)
    except services.DeploymentBusy as exc:
        messages.error(request, f"Drift was not checked: {exc}.")
    except services.AwsUnreadable as exc:
        # AWS unreachable, throttling past the retries, credentials refused: said, not a 500.
        messages.error(request, f"Drift was not checked: {exc}. Try again later.")
    else:
        drifted = report.drifted
        if drifted:
            names = ", ".join(f.logical_id for f in drifted)
            messages.warning(
                request,
                f"Drifted: {len(drifted)} resource{'s' if len(drifted) != 1 else ''} changed "
                f"outside Gantry ({names}). Repair puts back what Gantry applied.",
            )
        else:
            messages.success(request, "In sync: every resource is as Gantry applied it.")
    return redirect("deployer:deployment_detail", pk=pk)


@login_required
@require_POST
def deployment_repair(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Repair": deploy the live version again, which puts back what drifted (an update run)."""
    deployment = selectors.deployment_get(user=request.user, pk=pk, path=request.path)
    try:
        started = services.deployment_apply(
            design=deployment.design,
            target=deployment.target,
            user=request.user,
            version=deployment.design_version,
            allow_interruption=request.POST.get("allow_interruption") == "on",
        )
    except APPLY_ERRORS as exc:
        messages.error(request, "Not repaired: " + apply_error(exc))
    else:
        if started.run is None:
            messages.info(request, "Nothing to repair: the stack is as Gantry applied it.")
        else:
            messages.info(request, f"Repairing: run {started.run.number} puts back what drifted.")
    return redirect("deployer:deployment_detail", pk=pk)
