"""Writes of deployments. Views, the API, the CLI and the tasks call these."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployer import events
from deployer.models import Deployment, ResourceRecord, Target
from designer.models import Design
from designer.plan import plan
from designer.services import SpecInvalid
from designer.spec import validate_spec
from teams.models import Team

S = Deployment.Status
SANDBOX_TARGET_NAME = "sandbox"


class DeploymentConflict(Exception):
    """The design already has an active deployment; ``active`` is it."""

    def __init__(self, active: Deployment):
        self.active = active
        super().__init__(
            f"design {active.design.name} already has an active deployment "
            f"(#{active.pk}, {active.get_status_display().lower()})"
        )


class InvalidTransition(Exception):
    """The deployment is not in a state that allows the request."""


def sandbox_endpoint() -> str:
    return getattr(settings, "GANTRY_SANDBOX_ENDPOINT", "") or os.environ.get(
        "AWS_ENDPOINT_URL", ""
    )


@transaction.atomic
def target_sandbox_ensure(*, team: Team) -> Target:
    """The team's sandbox target, pointing at the local emulator."""
    target, created = Target.objects.get_or_create(
        team=team,
        name=SANDBOX_TARGET_NAME,
        defaults={"kind": Target.Kind.SANDBOX, "endpoint_url": sandbox_endpoint()},
    )
    if not created and target.kind == Target.Kind.SANDBOX and not target.endpoint_url:
        target.endpoint_url = sandbox_endpoint()
        target.save(update_fields=["endpoint_url"])
    return target


def deployment_kick(deployment: Deployment) -> None:
    """Give the deployment a fresh run token and enqueue a pass after commit. Every older
    message then finds a stale token and does nothing."""
    from deployer.tasks import schedule

    deployment.run_token = uuid.uuid4().hex
    deployment.next_run_at = timezone.now()
    Deployment.objects.filter(pk=deployment.pk).update(
        run_token=deployment.run_token, next_run_at=deployment.next_run_at
    )
    schedule(deployment.pk, deployment.run_token, 0)


def deployment_start(
    *,
    design: Design,
    target: Target,
    user: AbstractBaseUser,
    keep_on_failure: bool = False,
) -> Deployment:
    """Snapshot the design's spec, create a record per graph node and start the reconciler.

    Raises DeploymentConflict when the design already has an active deployment (the database
    enforces it, so two simultaneous requests give one deployment).
    """
    if target.team_id != design.team_id:
        raise InvalidTransition("the target belongs to another team")
    result = validate_spec(design.spec)
    if result.spec is None:
        raise SpecInvalid(result.errors)
    graph = plan(result.spec)
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                team=design.team,
                design=design,
                design_version=design.version,
                spec=result.spec.to_json(),
                target=target,
                requested_by=user,
                keep_on_failure=keep_on_failure,
            )
    except IntegrityError:
        active = Deployment.objects.filter(design=design, status__in=Deployment.ACTIVE).first()
        if active is None:
            raise
        raise DeploymentConflict(active) from None
    ResourceRecord.objects.bulk_create(
        ResourceRecord(
            deployment=deployment, logical_id=node.logical_id, type=node.type, position=i
        )
        for i, node in enumerate(graph.topological_order())
    )
    events.append(
        deployment,
        kind="status",
        message=f"{user} requested a deployment of {design.name} v{design.version} "
        f"to {target.name} ({len(graph)} resources)",
        state=S.QUEUED,
    )
    deployment_kick(deployment)
    return deployment


@transaction.atomic
def deployment_cancel(*, deployment: Deployment, user: AbstractBaseUser) -> Deployment:
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if deployment.status not in (S.QUEUED, S.DEPLOYING):
        raise InvalidTransition(
            f"only a queued or deploying deployment can be cancelled; this one is "
            f"{deployment.get_status_display().lower()}"
        )
    if not deployment.cancel_requested:
        deployment.cancel_requested = True
        deployment.save(update_fields=["cancel_requested"])
        events.append(
            deployment,
            kind="status",
            message=f"{user} cancelled the deployment",
            state=deployment.status,
        )
        deployment_kick(deployment)
    return deployment


DESTROYABLE = (S.SUCCEEDED, S.FAILED, S.DESTROY_FAILED)


@transaction.atomic
def deployment_destroy(*, deployment: Deployment, user: AbstractBaseUser) -> Deployment:
    """Delete everything the deployment made, in reverse order."""
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if deployment.status == S.DESTROYING:
        return deployment
    if deployment.status not in DESTROYABLE:
        raise InvalidTransition(
            f"a {deployment.get_status_display().lower()} deployment cannot be destroyed"
            + ("; cancel it first" if deployment.status in Deployment.ACTIVE else "")
        )
    deployment.status = S.DESTROYING
    deployment.reason = ""
    deployment.finished_at = None
    try:
        with transaction.atomic():
            deployment.save(update_fields=["status", "reason", "finished_at"])
    except IntegrityError:
        active = Deployment.objects.filter(
            design=deployment.design, status__in=Deployment.ACTIVE
        ).first()
        raise DeploymentConflict(active) from None
    # Failed nodes are retried as deletes; their record of the failure stays in the events.
    deployment.resources.filter(state=ResourceRecord.State.FAILED).update(
        next_check_at=None, attempts=0
    )
    events.append(
        deployment,
        kind="status",
        message=f"{user} started destroying the deployment",
        state=S.DESTROYING,
    )
    deployment_kick(deployment)
    return deployment


def deployments_reap(*, stale_after: float | None = None) -> list[int]:
    """Re-kick active deployments whose next pass is overdue (a worker died holding it, or the
    message was lost). Returns the ids kicked."""
    stale = stale_after if stale_after is not None else getattr(settings, "GANTRY_REAP_AFTER", 60)
    cutoff = timezone.now() - timedelta(seconds=stale)
    kicked = []
    for dep_id in Deployment.objects.filter(
        status__in=Deployment.ACTIVE, next_run_at__lt=cutoff
    ).values_list("pk", flat=True):
        with transaction.atomic():
            dep = Deployment.objects.select_for_update(skip_locked=True).filter(pk=dep_id).first()
            if dep is None or dep.status not in Deployment.ACTIVE or dep.next_run_at >= cutoff:
                continue
            events.append(
                dep,
                kind="reaper",
                message="No progress for a while; restarting the reconciler",
                state=dep.status,
            )
            deployment_kick(dep)
            kicked.append(dep_id)
    return kicked
