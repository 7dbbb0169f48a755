"""Writes of deployments. Views, the API, the CLI and the tasks call these."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from audit.services import A, audit_record
from deployer import constants, events, runs
from deployer.changes import ChangeSet, change_set, live_of
from deployer.constants import RunStatus
from deployer.drift import DriftReport, drift_read, drift_status_of
from deployer.models import ChangeSet as ChangeSetRecord
from deployer.models import Deployment, Installation, ResourceRecord, Run, Target
from designer.models import Design
from designer.plan import plan
from designer.regions import REGION_AZ_LETTERS
from designer.services import SpecInvalid
from designer.spec import Spec, validate_spec
from teams.models import Team
from teams.selectors import team_is_admin

logger = logging.getLogger(__name__)

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


class ChangeSetRefused(Exception):
    """AWS would refuse the change, or it would lose data (the API credential); ``reasons``
    say why, ``change_set`` is what was computed."""

    def __init__(self, change_set: ChangeSet):
        self.change_set = change_set
        self.reasons = list(change_set.refused)
        super().__init__("the change set is refused: " + " ".join(self.reasons))


class InterruptionNotConfirmed(Exception):
    """The change set interrupts traffic or replaces what holds data; applying it needs an
    explicit confirmation (the page's, the API's ``allow_interruption``, the CLI's
    ``--allow-interruption``)."""

    def __init__(self, change_set: ChangeSet):
        self.change_set = change_set
        self.changes = change_set.interruptions
        names = "; ".join(f"{c.logical_id} ({c.action}): {c.interrupts}" for c in self.changes)
        super().__init__(
            f"applying this version interrupts traffic: {names}. Confirm it to go ahead."
        )


class ChangeSetStale(Exception):
    """The deployment has moved on since the change set was made (a run, a drift check)."""


@dataclass
class Started:
    """What a deploy request did: the deployment (new, or the live one changed in place), the
    run it started (None when there was nothing to change), and the change set applied."""

    deployment: Deployment
    run: Run | None
    change_set: ChangeSet
    created: bool


def deployment_live(*, design: Design, target: Target) -> Deployment | None:
    """The design's live deployment on the target (a live stack: one per design and target
    until it is destroyed), the newest if an older Gantry left several."""
    return (
        Deployment.objects.filter(design=design, target=target)
        .exclude(status__in=constants.GONE)
        .order_by("-created_at")
        .first()
    )


def _spec_of(design: Design, version: int | None) -> tuple[Spec, int]:
    if version is None or version == design.version:
        spec_data, number = design.spec, design.version
    else:
        stored = design.versions.filter(version=version).first()
        if stored is None:
            raise InvalidTransition(f"design {design.name} has no version {version}")
        spec_data, number = stored.spec, version
    result = validate_spec(spec_data)
    if result.spec is None:
        raise SpecInvalid(result.errors)
    return result.spec, number


def change_set_preview(
    *, design: Design, target: Target, version: int | None = None
) -> tuple[Deployment | None, ChangeSet, int]:
    """What deploying the design version to the target would do, changing nothing: the live
    deployment it would change (None for a new one), the change set, the version."""
    spec, number = _spec_of(design, version)
    live = deployment_live(design=design, target=target)
    return live, change_set_for(deployment=live, spec=spec), number


def change_set_for(*, deployment: Deployment | None, spec: Spec) -> ChangeSet:
    """What applying ``spec`` to ``deployment`` (None: a new deployment) would do."""
    after = plan(spec)
    if deployment is None:
        return change_set({}, after, region=spec.region)
    return change_set(live_of(list(deployment.resources.all())), after, region=spec.region)


def deployment_start(**kwargs) -> Deployment:
    """:func:`deployment_apply`, answering with the deployment only."""
    return deployment_apply(**kwargs).deployment


def deployment_apply(
    *,
    design: Design,
    target: Target,
    user: AbstractBaseUser,
    keep_on_failure: bool = False,
    idempotency_key: str = "",
    allow_interruption: bool = False,
    version: int | None = None,
    based_on_seq: int | None = None,
) -> Started:
    """Deploy a design version to a target: a new live deployment, or, when the design has one
    on that target, its change set applied in place (same deployment, its history kept).

    Raises DeploymentConflict when the deployment is busy (the database allows one active per
    design, so two simultaneous requests give one run), ChangeSetRefused, InterruptionNot-
    Confirmed, and ChangeSetStale when ``based_on_seq`` (a reviewed change set's) is no longer
    the deployment's last event.
    """
    if target.team_id != design.team_id:
        raise InvalidTransition("the target belongs to another team")
    spec, number = _spec_of(design, version)
    if idempotency_key:
        earlier = deployment_by_idempotency_key(user=user, key=idempotency_key)
        if earlier is not None:
            return earlier
    live = deployment_live(design=design, target=target)
    if live is not None:
        return _deployment_update(
            deployment=live,
            design=design,
            spec=spec,
            version=number,
            user=user,
            keep_on_failure=keep_on_failure,
            idempotency_key=idempotency_key,
            allow_interruption=allow_interruption,
            based_on_seq=based_on_seq,
        )
    installation = Installation.current().installation_id
    graph = plan(spec)
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                team=design.team,
                design=design,
                design_version=number,
                spec=spec.to_json(),
                graph=graph.to_document(),
                installation=installation,
                target=target,
                requested_by=user,
                keep_on_failure=keep_on_failure,
                idempotency_key=idempotency_key,
            )
            run = Run.objects.create(
                deployment=deployment,
                number=1,
                operation=Run.Operation.CREATE,
                requested_by=user,
                version_after=number,
                spec_after=spec.to_json(),
                graph_after=deployment.graph,
                change_set=change_set({}, graph, region=spec.region).to_json(),
                keep_on_failure=keep_on_failure,
                idempotency_key=idempotency_key,
            )
            deployment.current_run = run
            deployment.save(update_fields=["current_run"])
            audit_record(
                action=A.DEPLOYMENT_REQUESTED,
                actor=user,
                team=design.team,
                obj=deployment,
                data={
                    "design_id": design.pk,
                    "design": design.name,
                    "design_version": number,
                    "target_id": target.pk,
                    "target": target.name,
                    "keep_on_failure": keep_on_failure,
                },
            )
            ResourceRecord.objects.bulk_create(runs.records_for_create(deployment, graph))
            events.append(
                deployment,
                kind="status",
                message=f"{user} requested a deployment of {design.name} v{number} "
                f"to {target.name} ({len(graph)} resources)",
                state=S.QUEUED,
            )
            deployment_kick(deployment)
    except IntegrityError:
        if idempotency_key:
            earlier = deployment_by_idempotency_key(user=user, key=idempotency_key)
            if earlier is not None:
                return earlier
        active = Deployment.objects.filter(design=design, status__in=Deployment.ACTIVE).first()
        if active is None:
            raise
        raise DeploymentConflict(active) from None
    return Started(deployment, run, ChangeSet.from_json(run.change_set), created=True)


def deployment_by_idempotency_key(*, user: AbstractBaseUser, key: str) -> Started | None:
    """What an earlier request with this Idempotency-Key started (a new deployment or a run)."""
    run = Run.objects.select_related("deployment").filter(requested_by=user, idempotency_key=key)
    found = run.first()
    if found is not None:
        return Started(
            found.deployment,
            found,
            ChangeSet.from_json(found.change_set),
            created=found.operation == Run.Operation.CREATE,
        )
    deployment = Deployment.objects.filter(requested_by=user, idempotency_key=key).first()
    if deployment is not None:
        return Started(deployment, deployment.current_run, ChangeSet(), created=True)
    return None


def _deployment_update(
    *,
    deployment: Deployment,
    design: Design,
    spec: Spec,
    version: int,
    user: AbstractBaseUser,
    keep_on_failure: bool,
    idempotency_key: str,
    allow_interruption: bool,
    based_on_seq: int | None,
) -> Started:
    after = plan(spec)
    try:
        with transaction.atomic():
            deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
            if deployment.status in Deployment.ACTIVE:
                raise DeploymentConflict(deployment)
            if deployment.status not in constants.UPDATABLE:
                raise InvalidTransition(
                    f"a {deployment.get_status_display().lower()} deployment cannot be changed; "
                    "destroy it first"
                )
            if based_on_seq is not None and based_on_seq != deployment.last_event_seq:
                raise ChangeSetStale(
                    f"deployment #{deployment.pk} has changed since the change set was made "
                    "(a run or a drift check); make a new change set"
                )
            records = list(deployment.resources.select_for_update())
            changes = change_set(live_of(records), after, region=spec.region)
            if changes.refused:
                raise ChangeSetRefused(changes)
            if changes.empty:
                return Started(deployment, None, changes, created=False)
            if changes.interruptions and not allow_interruption:
                raise InterruptionNotConfirmed(changes)
            number = (deployment.runs.aggregate(n=Max("number"))["n"] or 0) + 1
            run = Run.objects.create(
                deployment=deployment,
                number=number,
                operation=Run.Operation.UPDATE,
                status=RunStatus.IN_PROGRESS,
                requested_by=user,
                version_before=deployment.design_version,
                version_after=version,
                spec_before=deployment.spec,
                spec_after=spec.to_json(),
                graph_before=deployment.graph,
                graph_after=after.to_document(),
                change_set=changes.to_json(),
                keep_on_failure=keep_on_failure,
                allow_interruption=allow_interruption,
                idempotency_key=idempotency_key,
                started_at=timezone.now(),
            )
            changed, new = runs.mark_update(deployment, records, changes, after)
            for record in changed:
                record.save(update_fields=[*runs.MARK_FIELDS, "position"])
            ResourceRecord.objects.bulk_create(new)
            deployment.status = S.UPDATING
            deployment.reason = ""
            deployment.finished_at = None
            deployment.keep_on_failure = keep_on_failure
            deployment.cancel_requested = False
            deployment.current_run = run
            deployment.save(
                update_fields=[
                    "status",
                    "reason",
                    "finished_at",
                    "keep_on_failure",
                    "cancel_requested",
                    "current_run",
                ]
            )
            counts = Counter(c.action for c in changes.changes)
            summary = ", ".join(f"{n} to {action}" for action, n in sorted(counts.items()))
            events.append(
                deployment,
                kind="status",
                message=f"{user} requested an update of {design.name} from "
                f"v{run.version_before} to v{version} ({summary})",
                state=S.UPDATING,
                data={"run": run.number},
            )
            audit_record(
                action=A.DEPLOYMENT_UPDATE_REQUESTED,
                actor=user,
                team=deployment.team,
                obj=deployment,
                data={
                    "run": run.number,
                    "version_before": run.version_before,
                    "version_after": version,
                    "changes": dict(counts),
                    "allow_interruption": allow_interruption,
                },
            )
            deployment_kick(deployment)
    except IntegrityError:
        if idempotency_key:
            earlier = deployment_by_idempotency_key(user=user, key=idempotency_key)
            if earlier is not None:
                return earlier
        raise
    return Started(deployment, run, changes, created=False)


class NoLiveDeployment(InvalidTransition):
    """A change set is reviewed against a live deployment; the design has none there."""


@transaction.atomic
def change_set_create(
    *, design: Design, target: Target, user: AbstractBaseUser, version: int | None = None
) -> ChangeSetRecord:
    """A change set kept for review (the API's change-set resource): what applying the design
    version to its live deployment on the target would do, as that deployment is now."""
    if target.team_id != design.team_id:
        raise InvalidTransition("the target belongs to another team")
    live, changes, number = change_set_preview(design=design, target=target, version=version)
    if live is None:
        raise NoLiveDeployment(
            f"design {design.name} has no live deployment on {target.name}; deploy it to make "
            "one (POST /api/deployments/)"
        )
    return ChangeSetRecord.objects.create(
        deployment=live,
        design_version=number,
        based_on_seq=live.last_event_seq,
        body=changes.to_json(),
        created_by=user,
    )


def change_set_execute(
    *,
    change_set: ChangeSetRecord,
    user: AbstractBaseUser,
    keep_on_failure: bool = False,
    allow_interruption: bool = False,
    idempotency_key: str = "",
) -> Started:
    """Apply a reviewed change set. Raises ChangeSetStale when the deployment has moved on
    since it was made (a run, a drift check: the change set would no longer be what was
    reviewed), InvalidTransition when it was executed already."""
    if change_set.executed_run_id:
        raise InvalidTransition(
            f"change set {change_set.pk} was executed already, as run "
            f"{change_set.executed_run.number}"
        )
    deployment = change_set.deployment
    started = deployment_apply(
        design=deployment.design,
        target=deployment.target,
        user=user,
        version=change_set.design_version,
        based_on_seq=change_set.based_on_seq,
        keep_on_failure=keep_on_failure,
        allow_interruption=allow_interruption,
        idempotency_key=idempotency_key,
    )
    if started.run is not None:
        ChangeSetRecord.objects.filter(pk=change_set.pk, executed_run__isnull=True).update(
            executed_run=started.run
        )
    return started


@transaction.atomic
def deployment_cancel(*, deployment: Deployment, user: AbstractBaseUser) -> Deployment:
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if deployment.status not in constants.CANCELLABLE:
        raise InvalidTransition(
            f"only a queued, deploying or updating deployment can be cancelled; this one is "
            f"{deployment.get_status_display().lower()}"
        )
    if not deployment.cancel_requested:
        deployment.cancel_requested = True
        deployment.save(update_fields=["cancel_requested"])
        events.append(
            deployment,
            kind="status",
            message=f"{user} cancelled the {'update' if deployment.status == S.UPDATING else 'deployment'}",
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


DESTROYABLE = constants.DESTROYABLE


@transaction.atomic
def deployment_destroy(*, deployment: Deployment, user: AbstractBaseUser) -> Deployment:
    """Delete everything the deployment made, in reverse order (a run of its own)."""
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
    deployment.cancel_requested = False
    try:
        with transaction.atomic():
            deployment.save(update_fields=["status", "reason", "finished_at", "cancel_requested"])
    except IntegrityError:
        active = Deployment.objects.filter(
            design=deployment.design, status__in=Deployment.ACTIVE
        ).first()
        raise DeploymentConflict(active) from None
    number = (deployment.runs.aggregate(n=Max("number"))["n"] or 0) + 1
    run = Run.objects.create(
        deployment=deployment,
        number=number,
        operation=Run.Operation.DESTROY,
        status=RunStatus.IN_PROGRESS,
        requested_by=user,
        version_before=deployment.design_version,
        spec_before=deployment.spec,
        graph_before=deployment.graph,
        started_at=timezone.now(),
    )
    deployment.current_run = run
    deployment.save(update_fields=["current_run"])
    # Failed records are retried as deletes; their record of the failure stays in the events.
    for record in runs.mark_destroy(list(deployment.resources.all())):
        record.save(update_fields=runs.MARK_FIELDS)
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
        data={"previous_status": previous_status, "run": number},
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


# --- drift -----------------------------------------------------------------------------------


class DeploymentBusy(Exception):
    """A run is in progress: what AWS reports mid-run says nothing about drift."""


class AwsUnreadable(Exception):
    """AWS could not be read (unreachable, throttling past the retries, credentials or the
    role refused): nothing was recorded; try again later."""


def deployment_drift_check(
    *, deployment: Deployment, user: AbstractBaseUser | None = None
) -> DriftReport:
    """Read every live resource of the deployment and compare it with what was applied; record
    the outcome on the records and the deployment. A change of drift status is an event and,
    when drift is found, an audit entry. Raises DeploymentBusy while a run is in progress."""
    from deployer.engine import context_for

    deployment = Deployment.objects.select_related("target").get(pk=deployment.pk)
    if deployment.status in Deployment.ACTIVE or deployment.status in constants.GONE:
        raise DeploymentBusy(
            f"deployment #{deployment.pk} is {deployment.get_status_display().lower()}; "
            "drift is checked on a live deployment with no run in progress"
        )
    seq = deployment.last_event_seq
    # Outside any transaction: the reads take seconds, and nothing here holds a lock meanwhile.
    try:
        report = drift_read(list(deployment.resources.all()), context_for(deployment))
    except (BotoCoreError, ClientError) as exc:
        logger.warning("drift check of deployment %s could not read AWS: %s", deployment.pk, exc)
        raise AwsUnreadable(f"AWS could not be read ({exc}); nothing was recorded") from exc
    now = timezone.now()
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if deployment.status in Deployment.ACTIVE or deployment.last_event_seq != seq:
            # A run started (or ended) while AWS was read: this view is already old.
            raise DeploymentBusy(f"deployment #{deployment.pk} changed while it was read")
        found = {f.logical_id: f for f in report.resources}
        records = list(deployment.resources.all())
        # Whether what is found differs from what the last check found: a deployment that stays
        # drifted the same way is not announced again at every check.
        news = False
        for record in records:
            finding = found.get(record.logical_id)
            if finding is None or not record.is_live:
                continue
            differences = [d.to_json() for d in finding.differences]
            news = news or (record.drift, record.drift_differences) != (
                finding.drift,
                differences,
            )
            record.drift = finding.drift
            record.drift_differences = differences
            record.drift_checked_at = now
            record.save(update_fields=["drift", "drift_differences", "drift_checked_at"])
        before = deployment.drift_status
        deployment.drift_status = drift_status_of(records)
        deployment.drift_checked_at = now
        deployment.save(update_fields=["drift_status", "drift_checked_at"])
        if deployment.drift_status == constants.DriftStatus.DRIFTED:
            summary = "; ".join(
                f"{f.logical_id} {f.drift}"
                + (f" ({', '.join(d.property for d in f.differences)})" if f.differences else "")
                for f in report.drifted
            )
            if before != deployment.drift_status or news:
                events.append(
                    deployment,
                    kind="drift",
                    message=f"Drift found: {summary}. Deploying the design again puts it back.",
                    state=deployment.status,
                    data=report.to_json(),
                )
                audit_record(
                    action=A.DEPLOYMENT_DRIFTED,
                    actor=user,
                    actor_name="" if user else "drift check",
                    team=deployment.team,
                    obj=deployment,
                    data=report.to_json(),
                )
        elif before == constants.DriftStatus.DRIFTED:
            events.append(
                deployment,
                kind="drift",
                message="In sync: every resource is as Gantry applied it.",
                state=deployment.status,
            )
    return report


def deployments_drift_due(*, interval: float) -> list[int]:
    """Live deployments with no run in progress whose last drift check is older than
    ``interval`` seconds (or that were never checked)."""
    cutoff = timezone.now() - timedelta(seconds=interval)
    return list(
        Deployment.objects.exclude(status__in=[*Deployment.ACTIVE, *constants.GONE])
        .filter(Q(drift_checked_at__isnull=True) | Q(drift_checked_at__lt=cutoff))
        .values_list("pk", flat=True)
    )
