"""Reads of deployments and targets, scoped to the user's teams (staff see all)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from audit.services import get_for_user_or_404
from deployer.models import Deployment, Target
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


def deployment_progress(deployment: Deployment) -> dict:
    """A snapshot for the page and the CLI: counts, percent done, every resource's state."""
    records = list(deployment.resources.all())
    done_states = (
        {"ready"}
        if deployment.status in ("queued", "deploying", "succeeded", "failed")
        else {"deleted"}
    )
    done = sum(1 for r in records if r.state in done_states)
    return {
        "id": deployment.pk,
        "status": deployment.status,
        "status_display": deployment.get_status_display(),
        "reason": deployment.reason,
        "percent": round(100 * done / len(records)) if records else 0,
        "done": done,
        "total": len(records),
        "last_event_seq": deployment.last_event_seq,
        "started_at": deployment.started_at.isoformat() if deployment.started_at else None,
        "finished_at": deployment.finished_at.isoformat() if deployment.finished_at else None,
        "resources": [
            {
                "logical_id": r.logical_id,
                "type": r.type,
                "state": r.state,
                "physical_id": r.physical_id,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "waiting_reason": r.waiting_reason,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "ready_at": r.ready_at.isoformat() if r.ready_at else None,
                "delete_started_at": (
                    r.delete_started_at.isoformat() if r.delete_started_at else None
                ),
                "deleted_at": r.deleted_at.isoformat() if r.deleted_at else None,
            }
            for r in records
        ],
    }
