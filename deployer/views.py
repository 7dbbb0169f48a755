"""Deployment actions (start, cancel, destroy), the list of deployments and the live event
stream. Thin: services and selectors do the work. The deployment's own page (badges, the
coloured diagram, the event log) composes the designer too and lives in the page layer
(``pages/deployment.py``)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from deployer import selectors, services
from deployer.models import Deployment
from deployer.stream import (
    StreamAccess,
    StreamRefused,
    last_event_id,
    session_stands,
    stream_open,
)
from designer import selectors as design_selectors
from designer.services import SpecInvalid
from gantry.parsing import IntegerInvalid, parse_id


@login_required
@require_POST
def deployment_create(request: HttpRequest, design_pk: int) -> HttpResponse:
    design = design_selectors.design_get(user=request.user, pk=design_pk, path=request.path)
    targets = selectors.target_list(user=request.user).filter(team=design.team)
    if request.POST.get("target"):
        target_id = parse_id(request.POST["target"])
        target = targets.filter(pk=target_id).first() if target_id is not None else None
        if target is None:
            # Never fall back silently: the user chose somewhere else to deploy.
            messages.error(request, "That target is not one of this design's team's targets.")
            return redirect("designer:design_edit", pk=design.pk)
    else:
        target = services.target_sandbox_ensure(team=design.team)
    live = services.deployment_live(design=design, target=target)
    if live is not None and live.status not in Deployment.ACTIVE:
        # A live stack changes with its change set reviewed first: the review page shows it
        # and applies it (the API and the CLI have --dry-run and change sets for the same).
        messages.info(
            request,
            f"v{live.design_version} is live on {target.name} (deployment {live.pk}): review "
            "what deploying the saved version changes, then apply it.",
        )
        return redirect(
            reverse("designer:design_changes", args=[design.pk]) + f"?target={target.pk}"
        )
    try:
        started = services.deployment_apply(
            design=design,
            target=target,
            user=request.user,
            keep_on_failure=request.POST.get("keep_on_failure") == "on",
        )
    except services.DeploymentConflict as exc:
        messages.error(request, f"{exc}. Open it to follow or cancel it.")
        return redirect("deployer:deployment_detail", pk=exc.active.pk)
    except (services.ChangeSetRefused, services.InterruptionNotConfirmed) as exc:
        # A live stack's change that needs a look first: its review page says why, and
        # applies it from there (with the confirmation an interruption needs).
        messages.error(request, f"Not deployed: {exc}")
        return redirect(
            reverse("designer:design_changes", args=[design.pk]) + f"?target={target.pk}"
        )
    except services.InvalidTransition as exc:
        messages.error(request, f"Not deployed: {exc}.")
        return redirect("designer:design_edit", pk=design.pk)
    except SpecInvalid:
        messages.error(request, "The saved design does not validate; fix and save it first.")
        return redirect("designer:design_edit", pk=design.pk)
    if started.run is None:
        messages.info(request, "Nothing to change: the live deployment is this version already.")
    return redirect("deployer:deployment_detail", pk=started.deployment.pk)


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
@require_POST
def deployment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk, path=request.path)
    try:
        services.deployment_cancel(deployment=deployment, user=request.user)
        messages.info(request, "Cancelling: what was created is being removed.")
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("deployer:deployment_detail", pk=pk)


@login_required
@require_POST
def deployment_destroy(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = selectors.deployment_get(user=request.user, pk=pk, path=request.path)
    if request.POST.get("confirm") != deployment.design.name:
        messages.error(request, "Type the design's name to confirm the destroy.")
        return redirect("deployer:deployment_detail", pk=pk)
    try:
        services.deployment_destroy(deployment=deployment, user=request.user)
        messages.info(request, "Destroying: resources are deleted in reverse order.")
    except (services.InvalidTransition, services.DeploymentConflict) as exc:
        messages.error(request, str(exc))
    return redirect("deployer:deployment_detail", pk=pk)


async def deployment_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The deployment's live events (``deployer.stream``); only its team's members may open
    it."""

    def plain(text: str, status: int) -> HttpResponse:
        return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")

    user = await request.auser()
    if not user.is_authenticated:
        return plain("log in to follow this deployment", 401)
    try:
        deployment = await sync_to_async(selectors.deployment_get)(
            user=user, pk=pk, path=request.path
        )
        after = last_event_id(request)
        access = StreamAccess(
            user_id=user.pk, credential_stands=session_stands(request.session.session_key or "")
        )
        return await sync_to_async(stream_open)(deployment=deployment, after=after, access=access)
    except Http404:
        return plain("no such deployment", 404)
    except IntegerInvalid as exc:
        return plain(f"{exc.field}: {exc.message}", 400)
    except StreamRefused as exc:
        if exc.status == 204:
            return HttpResponse(status=204)
        response = plain(str(exc), exc.status)
        if exc.retry_after:
            response["Retry-After"] = str(exc.retry_after)
        return response
