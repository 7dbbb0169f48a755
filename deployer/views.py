"""Deployment pages and the live event stream. Thin: services and selectors do the work."""

from __future__ import annotations

import hashlib
import json

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployer import engine, events, selectors, services
from deployer.models import Deployment
from designer import selectors as design_selectors
from designer.diagram import render_svg
from designer.services import SpecInvalid

#: A quiet stream sends a comment this often (and re-reads the database for missed events).
KEEPALIVE_SECONDS = 15


@login_required
@require_POST
def deployment_create(request: HttpRequest, design_pk: int) -> HttpResponse:
    design = design_selectors.design_get(user=request.user, pk=design_pk)
    targets = selectors.target_list(user=request.user).filter(team=design.team)
    target_id = request.POST.get("target", "")
    target = targets.filter(pk=target_id).first() if target_id.isdigit() else None
    if target is None:
        target = services.target_sandbox_ensure(team=design.team)
    try:
        deployment = services.deployment_start(
            design=design,
            target=target,
            user=request.user,
            keep_on_failure=request.POST.get("keep_on_failure") == "on",
        )
    except services.DeploymentConflict as exc:
        messages.error(request, f"{exc}. Open it to follow or cancel it.")
        return redirect("deployer:deployment_detail", pk=exc.active.pk)
    except SpecInvalid:
        messages.error(request, "The saved design does not validate; fix and save it first.")
        return redirect("designer:design_edit", pk=design.pk)
    return redirect("deployer:deployment_detail", pk=deployment.pk)


@login_required
@require_GET
def deployment_list(request: HttpRequest) -> HttpResponse:
    deployments = selectors.deployment_list(user=request.user)
    status = request.GET.get("status", "")
    if status in Deployment.Status.values:
        deployments = deployments.filter(status=status)
    return render(
        request,
        "deployer/deployment_list.html",
        {"deployments": deployments[:200], "statuses": Deployment.Status.choices, "status": status},
    )


@login_required
@require_GET
def deployment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk)
    progress = selectors.deployment_progress(deployment)
    graph = engine.graph_for(deployment)
    labels = {n.logical_id: n.meta.get("label", n.logical_id) for n in graph}
    for row in progress["resources"]:
        row["label"] = labels.get(row["logical_id"], row["logical_id"])
    return render(
        request,
        "deployer/deployment_detail.html",
        {
            "deployment": deployment,
            "progress": progress,
            "svg": _diagram(deployment, progress),
            "events": list(deployment.events.order_by("seq")),
            "can_cancel": deployment.status
            in (Deployment.Status.QUEUED, Deployment.Status.DEPLOYING)
            and not deployment.cancel_requested,
            "can_destroy": deployment.status in services.DESTROYABLE,
        },
    )


def _diagram(deployment: Deployment, progress: dict) -> str:
    states = {r["logical_id"]: r["state"] for r in progress["resources"]}
    key = (
        "deploy-diagram:"
        + hashlib.sha256(json.dumps([deployment.pk, states], sort_keys=True).encode()).hexdigest()
    )
    svg = cache.get(key)
    if svg is None:
        svg = render_svg(engine.graph_for(deployment), states=states)
        cache.set(key, svg, 3600)
    return svg


@login_required
@require_GET
def deployment_status(request: HttpRequest, pk: int) -> JsonResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk)
    return JsonResponse(selectors.deployment_progress(deployment))


@login_required
@require_GET
def deployment_diagram(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk)
    progress = selectors.deployment_progress(deployment)
    return HttpResponse(_diagram(deployment, progress), content_type="image/svg+xml")


@login_required
@require_POST
def deployment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk)
    try:
        services.deployment_cancel(deployment=deployment, user=request.user)
        messages.info(request, "Cancelling: what was created is being removed.")
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("deployer:deployment_detail", pk=pk)


@login_required
@require_POST
def deployment_destroy(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk)
    if request.POST.get("confirm") != deployment.design.name:
        messages.error(request, "Type the design's name to confirm the destroy.")
        return redirect("deployer:deployment_detail", pk=pk)
    try:
        services.deployment_destroy(deployment=deployment, user=request.user)
        messages.info(request, "Destroying: resources are deleted in reverse order.")
    except (services.InvalidTransition, services.DeploymentConflict) as exc:
        messages.error(request, str(exc))
    return redirect("deployer:deployment_detail", pk=pk)


def _sse(event: dict) -> bytes:
    return f"id: {event['seq']}\nevent: deployment\ndata: {json.dumps(event)}\n\n".encode()


async def deployment_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Server-Sent Events: every event after ``Last-Event-ID`` (or ``?after=N``) from the
    database, then live ones from Redis, each exactly once and in order. Only members of the
    deployment's team may open it."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse(
            "log in to follow this deployment", status=401, content_type="text/plain"
        )
    try:
        deployment = await sync_to_async(selectors.deployment_get)(user=user, pk=pk)
    except Http404:
        return HttpResponse("no such deployment", status=404, content_type="text/plain")
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    after = int(raw) if raw.isdigit() else 0

    async def stream():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        pubsub = client.pubsub()
        last = after
        try:
            # Subscribe before reading the backlog so nothing falls between the two.
            await pubsub.subscribe(events.channel(deployment.pk))
            yield b"retry: 1000\n\n"
            backlog = await sync_to_async(events.events_after)(deployment, last)
            finished = False
            for event in backlog:
                last = event.seq
                yield _sse(event.to_json())
                finished = finished or (
                    event.kind == "status" and event.state in Deployment.TERMINAL
                )
            while not finished:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=KEEPALIVE_SECONDS
                )
                if message is None:
                    # Quiet: a comment keeps proxies from closing the stream, and a look at the
                    # database catches anything whose publish was lost.
                    yield b": keepalive\n\n"
                    for event in await sync_to_async(events.events_after)(deployment, last):
                        last = event.seq
                        yield _sse(event.to_json())
                        finished = finished or (
                            event.kind == "status" and event.state in Deployment.TERMINAL
                        )
                    continue
                data = json.loads(message["data"])
                if data["seq"] <= last:
                    continue
                if data["seq"] > last + 1:  # a gap: fill it from the database, in order
                    for event in await sync_to_async(events.events_after)(deployment, last):
                        if event.seq >= data["seq"]:
                            break
                        last = event.seq
                        yield _sse(event.to_json())
                last = data["seq"]
                yield _sse(data)
                finished = data["kind"] == "status" and data["state"] in Deployment.TERMINAL
        finally:
            await pubsub.aclose()
            await client.aclose()

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
