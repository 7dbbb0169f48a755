"""Writes of deployments. Views, the API, the CLI and the tasks call these."""

from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import A, audit_record
from deployer import events
from deployer.graphs import deployment_graph, graph_document
from deployer.models import Deployment, Installation, ResourceRecord, Target
from designer.models import Design
from designer.regions import REGION_AZ_LETTERS
from designer.services import SpecInvalid
from designer.spec import validate_spec
from teams.models import Team
from teams.selectors import team_is_admin

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
    idempotency_key: str = "",
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
    installation = Installation.current().installation_id
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                team=design.team,
                design=design,
                design_version=design.version,
                spec=result.spec.to_json(),
                graph=graph_document(result.spec),
                installation=installation,
                target=target,
                requested_by=user,
                keep_on_failure=keep_on_failure,
                idempotency_key=idempotency_key,
            )
            audit_record(
                action=A.DEPLOYMENT_REQUESTED,
                actor=user,
                team=design.team,
                obj=deployment,
                data={
                    "design_id": design.pk,
                    "design": design.name,
                    "design_version": design.version,
                    "target_id": target.pk,
                    "target": target.name,
                    "keep_on_failure": keep_on_failure,
                },
            )
            graph = deployment_graph(deployment)
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
    except IntegrityError:
        if idempotency_key:
            earlier = Deployment.objects.filter(
                requested_by=user, idempotency_key=idempotency_key
            ).first()
            if earlier is not None:
                return earlier
        active = Deployment.objects.filter(design=design, status__in=Deployment.ACTIVE).first()
        if active is None:
            raise
        raise DeploymentConflict(active) from None
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
        audit_record(
            action=A.DEPLOYMENT_CANCELLED,
            actor=user,
            team=deployment.team,
            obj=deployment,
            data={"status": deployment.status},
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
    previous_status = deployment.status
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
    audit_record(
        action=A.DEPLOYMENT_DESTROYED,
        actor=user,
        team=deployment.team,
        obj=deployment,
        data={"previous_status": previous_status},
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


# --- targets ---------------------------------------------------------------------------------

_ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")


class TargetInUse(Exception):
    """The target has deployments; their history must keep naming where they went."""


def _require_admin(user: AbstractBaseUser, team: Team) -> None:
    if not team_is_admin(user=user, team=team):
        raise PermissionDenied("only the team's admins manage its targets")


def _validated_target(
    *,
    team: Team,
    name: str,
    kind: str,
    region: str,
    role_arn: str,
    external_id: str | None,
    exclude_pk: int | None = None,
) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    if not _TARGET_NAME.match(name or ""):
        errors["name"] = [
            "use 1 to 60 lowercase letters, digits and hyphens, starting with a letter or digit"
        ]
    elif Target.objects.filter(team=team, name=name).exclude(pk=exclude_pk).exists():
        errors["name"] = [f"the team already has a target named {name}; pick another name"]
    if kind not in Target.Kind.values:
        errors["kind"] = [f"must be one of {', '.join(Target.Kind.values)}"]
    if region not in REGION_AZ_LETTERS:
        errors["region"] = [f"{region!r} is not an AWS region Gantry knows, e.g. us-east-1"]
    if kind == Target.Kind.AWS:
        if not _ROLE_ARN.match(role_arn or ""):
            errors["role_arn"] = [
                "an AWS account target needs the ARN of the role Gantry assumes, "
                "e.g. arn:aws:iam::123456789012:role/gantry-deployer"
            ]
    elif role_arn:
        errors["role_arn"] = ["a sandbox target assumes no role; leave it empty"]
    if external_id and not _EXTERNAL_ID.match(external_id):
        errors["external_id"] = ["2 to 1224 characters: letters, digits and + = , . @ : / - _ only"]
    if errors:
        raise ValidationError(errors)
    return {"name": name, "kind": kind, "region": region, "role_arn": role_arn or ""}


@transaction.atomic
def target_create(
    *,
    team: Team,
    user: AbstractBaseUser,
    name: str,
    kind: str = Target.Kind.SANDBOX,
    region: str = "us-east-1",
    role_arn: str = "",
    external_id: str = "",
) -> Target:
    """A new target for the team (team admins only). A sandbox target always points at this
    installation's emulator: letting users choose the URL would let them send requests signed
    with the worker's credentials anywhere."""
    _require_admin(user, team)
    fields = _validated_target(
        team=team, name=name, kind=kind, region=region, role_arn=role_arn, external_id=external_id
    )
    target = Target.objects.create(
        team=team,
        external_id=external_id or "",
        endpoint_url=sandbox_endpoint() if kind == Target.Kind.SANDBOX else "",
        **fields,
    )
    audit_record(
        action=A.TARGET_CREATED,
        actor=user,
        team=team,
        obj=target,
        data={**fields, "external_id_set": bool(external_id)},
    )
    return target


@transaction.atomic
def target_update(
    *, target: Target, user: AbstractBaseUser, external_id: str | None = None, **changes: str
) -> Target:
    """Change a target's name, kind, region or role; ``external_id=None`` keeps the stored
    one, ``""`` clears it. Deployments already made keep their record of where they went."""
    _require_admin(user, target.team)
    target = Target.objects.select_for_update().get(pk=target.pk)
    before = {f: getattr(target, f) for f in ("name", "kind", "region", "role_arn")}
    merged = {**before, **{k: v for k, v in changes.items() if k in before}}
    fields = _validated_target(
        team=target.team, external_id=external_id, exclude_pk=target.pk, **merged
    )
    for field, value in fields.items():
        setattr(target, field, value)
    if external_id is not None:
        target.external_id = external_id
    target.endpoint_url = sandbox_endpoint() if target.kind == Target.Kind.SANDBOX else ""
    target.save()
    audit_record(
        action=A.TARGET_UPDATED,
        actor=user,
        team=target.team,
        obj=target,
        data={"before": before, "after": fields, "external_id_changed": external_id is not None},
    )
    return target


@transaction.atomic
def target_delete(*, target: Target, user: AbstractBaseUser) -> None:
    _require_admin(user, target.team)
    used = target.deployments.count()
    if used:
        raise TargetInUse(
            f"target {target.name} has {used} deployment(s) in its history and is kept for "
            f"them; create another target instead"
        )
    audit_record(
        action=A.TARGET_DELETED,
        actor=user,
        team=target.team,
        obj=target,
        data={"name": target.name, "kind": target.kind, "region": target.region},
    )
    target.delete()
