"""Reads of deployments and targets, scoped to the user's teams (staff see all)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, Count, F, Q, QuerySet, When

from audit.services import get_for_user_or_404
from deployer import constants
from deployer.models import Deployment, ResourceRecord, Run, Target
from teams.selectors import team_list


def deployment_list(*, user: AbstractBaseUser) -> QuerySet[Deployment]:
    return Deployment.objects.filter(team__in=team_list(user=user)).select_related(
        "team", "design", "target", "requested_by"
    )


def deployment_get(*, user: AbstractBaseUser, pk: int, path: str = "") -> Deployment:
    """The deployment, or Http404 for a team the user is not in (never confirm it exists; the
    attempt is recorded in the audit trail with ``path``)."""
    return get_for_user_or_404(deployment_list(user=user), user=user, path=path, pk=pk)


def target_list(*, user: AbstractBaseUser) -> QuerySet[Target]:
    return Target.objects.filter(team__in=team_list(user=user)).select_related("team")


def shown_records(records: list[ResourceRecord]) -> list[ResourceRecord]:
    """The records a deployment's page and progress show: what is live, and what the run in
    progress (or the last one, when it left the stack gone) acts on; a predecessor deleted by
    an earlier run is history (its events say so)."""
    acting = [r for r in records if r.action]
    return [r for r in records if r.is_live or r in acting]


def progress_counts(records: list[ResourceRecord]) -> tuple[int, int]:
    """(done, total): of the records the run acts on, those it is done with; with no run
    acting, the live records that are ready."""
    acting = [r for r in records if r.action]
    if acting:
        return sum(1 for r in acting if r.settled), len(acting)
    live = [r for r in records if r.is_live]
    return sum(1 for r in live if r.state == ResourceRecord.State.READY), len(live)


def progress_done_state(status: str) -> str:
    """The resource state that counts as done for a deployment in ``status`` (the bar's
    words: "ready" while building, "deleted" while deleting)."""
    return "ready" if status in constants.BUILDING or status in UPDATING else "deleted"


UPDATING = (constants.D.UPDATING, constants.D.UPDATE_ROLLED_BACK, constants.D.UPDATE_FAILED)


def with_progress_counts(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """Annotate ``n_done`` and ``n_total`` (see :func:`progress_counts`) in the query, so a
    list of deployments costs no query per deployment."""
    acting = ~Q(resources__action="")
    live = ~Q(resources__action="delete") & ~Q(resources__state="deleted")
    return deployments.annotate(
        n_acting=Count("resources", filter=acting),
        n_acting_done=Count("resources", filter=acting & Q(resources__settled=True)),
        n_live=Count("resources", filter=live),
        n_live_ready=Count("resources", filter=live & Q(resources__state="ready")),
    ).annotate(
        n_total=Case(When(n_acting__gt=0, then=F("n_acting")), default=F("n_live")),
        n_done=Case(When(n_acting__gt=0, then=F("n_acting_done")), default=F("n_live_ready")),
    )


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def deployment_progress(deployment: Deployment) -> dict:
    """A snapshot for the page and the CLI: counts, percent done, every shown resource's state
    and what the run does to it.

    ``last_event_seq`` is the deployment's as it was read before the resources, so the
    resources are at least that recent: a page that has seen later events knows this snapshot
    may be older than what it shows. ``next_check_at`` is when the reconciler looks at a
    waiting resource again (the page counts down to it).
    """
    records = shown_records(list(deployment.resources.all()))
    done, total = progress_counts(records)
    run = deployment.current_run
    return {
        "id": deployment.pk,
        "status": deployment.status,
        "status_display": deployment.get_status_display(),
        "reason": deployment.reason,
        "percent": round(100 * done / total) if total else 0,
        "done": done,
        "total": total,
        "last_event_seq": deployment.last_event_seq,
        "started_at": _iso(deployment.started_at),
        "finished_at": _iso(deployment.finished_at),
        "run": run_json(run) if run else None,
        "drift_status": deployment.drift_status,
        "drift_checked_at": _iso(deployment.drift_checked_at),
        "resources": [
            {
                "logical_id": r.logical_id,
                "type": r.type,
                "label": (r.node.get("meta") or {}).get("label") or r.logical_id,
                "generation": r.generation,
                "live": r.is_live,
                "state": r.state,
                "action": r.action,
                "settled": r.settled,
                "physical_id": r.physical_id,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "waiting_reason": r.waiting_reason,
                "next_check_at": _iso(r.next_check_at),
                "started_at": _iso(r.started_at),
                "ready_at": _iso(r.ready_at),
                "delete_started_at": _iso(r.delete_started_at),
                "deleted_at": _iso(r.deleted_at),
                "drift": r.drift,
                "drift_differences": r.drift_differences,
                "drift_checked_at": _iso(r.drift_checked_at),
            }
            for r in records
        ],
    }


def run_json(run: Run) -> dict[str, Any]:
    return {
        "number": run.number,
        "operation": run.operation,
        "status": run.status,
        "reason": run.reason,
        "requested_by": run.requested_by.get_username() if run.requested_by_id else "",
        "version_before": run.version_before,
        "version_after": run.version_after,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "changes": len((run.change_set or {}).get("changes", [])),
    }


def deployment_runs(deployment: Deployment) -> QuerySet[Run]:
    """The deployment's runs, newest first."""
    return deployment.runs.select_related("requested_by").order_by("-number")


def design_live_deployments(*, design: Any) -> QuerySet[Deployment]:
    """The design's live deployments (one per target): which version is live where."""
    return (
        Deployment.objects.filter(design=design)
        .exclude(status__in=constants.GONE)
        .select_related("target", "current_run")
        .order_by("target__name")
    )


#: The stack's outputs: the names the CloudFormation export gives them, from the records.
def deployment_outputs(deployment: Deployment) -> list[dict[str, str]]:
    """What the stack's users need: the API's address, the function's name and ARN, the
    secret's ARN, the VPC and security groups (what the export lists as Outputs)."""
    live = {r.logical_id: r for r in deployment.resources.all() if r.is_live and r.physical_id}
    port = (deployment.spec or {}).get("api_port")
    outputs: list[dict[str, str]] = []

    def add(name: str, value: str | None, description: str) -> None:
        if value:
            outputs.append({"name": name, "value": str(value), "description": description})

    add("VpcId", getattr(live.get("Vpc"), "physical_id", None), "The VPC")
    api = live.get("ApiLoadBalancer") or live.get("ApiInstance")
    host = None
    if api is not None:
        host = api.attributes.get("DNSName") or api.attributes.get("PrivateDnsName")
    add("ApiUrl", f"https://{host}:{port}/" if host and port else None, "The internal API")
    function = live.get("LambdaFunction")
    add("FunctionName", getattr(function, "physical_id", None), "The Lambda function")
    add("FunctionArn", function.attributes.get("Arn") if function else None, "Its ARN")
    add("SecretArn", getattr(live.get("ApiSecret"), "physical_id", None), "The API credential")
    for lid, record in live.items():
        if record.type == "AWS::EC2::SecurityGroup":
            label = (record.node.get("meta") or {}).get("label") or lid
            add(f"{lid}Id", record.physical_id, label)
    return outputs


def deployment_drift(deployment: Deployment) -> dict[str, Any]:
    """What the last drift check found, per live resource."""
    records = [r for r in deployment.resources.all() if r.is_live]
    return {
        "id": deployment.pk,
        "status": deployment.drift_status,
        "checked_at": _iso(deployment.drift_checked_at),
        "resources": [
            {
                "logical_id": r.logical_id,
                "type": r.type,
                "drift": r.drift,
                "differences": r.drift_differences or [],
            }
            for r in records
        ],
    }


def change_set_list(*, user: AbstractBaseUser) -> QuerySet:
    """Change sets of the user's teams' deployments."""
    from deployer.models import ChangeSet

    return ChangeSet.objects.filter(deployment__team__in=team_list(user=user)).select_related(
        "deployment", "executed_run"
    )
