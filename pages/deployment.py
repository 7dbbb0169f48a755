"""The deployment page: the deployer's records, each resource's badge (``pages/states.py``),
the design's diagram coloured by those badges, and the event log.

Its status answer (``status.json``) and its diagram are what the page's script asks for as
events arrive. This is the place for whatever else the page will show of a live deployment
(its runs, drift, outputs): add it to :func:`deployment_page_context`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from deployer import selectors, services
from deployer.graphs import deployment_graph
from deployer.models import Deployment
from deployer.selectors import progress_done_state
from designer.diagram import render_svg
from gantry.human import duration
from pages.states import diagram_marks, display_state, page_vocabulary, phase_of

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


def deployment_page_context(deployment: Deployment) -> dict[str, Any]:
    status = page_status(deployment)
    return {
        "deployment": deployment,
        "progress": status,
        "rows": status["resources"],
        "svg": coloured_diagram(deployment, status["resources"]),
        # Up to the number the stream resumes after (data-last-seq), never past it: an
        # event saved while this page renders arrives once, over the stream.
        "events": list(deployment.events.filter(seq__lte=status["last_event_seq"]).order_by("seq")),
        "can_cancel": deployment.status in (Deployment.Status.QUEUED, Deployment.Status.DEPLOYING)
        and not deployment.cancel_requested,
        "can_destroy": deployment.status in services.DESTROYABLE,
        "vocabulary": {
            **page_vocabulary(),
            "statuses": dict(Deployment.Status.choices),
            "cancellable": [Deployment.Status.QUEUED, Deployment.Status.DEPLOYING],
            "destroyable": list(services.DESTROYABLE),
            "terminal": list(Deployment.TERMINAL),
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
