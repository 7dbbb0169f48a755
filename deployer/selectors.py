"""Reads of deployments and targets, scoped to the user's teams (staff see all)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

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


#: Statuses in which a deployment's progress counts resources ready; in the others (rolling
#: back, destroying, destroyed...) it counts resources deleted.
BUILDING_STATUSES = ("queued", "deploying", "succeeded", "failed")


def progress_done_state(status: str) -> str:
    """The resource state that counts as done for a deployment in ``status``."""
    return "ready" if status in BUILDING_STATUSES else "deleted"


def with_progress_counts(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """Annotate ``n_done`` and ``n_total`` (see :func:`progress_done_state`) in the query, so
    a list of deployments costs no query per deployment."""
    done = Q(status__in=BUILDING_STATUSES, resources__state="ready") | (
        ~Q(status__in=BUILDING_STATUSES) & Q(resources__state="deleted")
    )
    return deployments.annotate(n_total=Count("resources"), n_done=Count("resources", filter=done))


def deployment_progress(deployment: Deployment) -> dict:
    """A snapshot for the page and the CLI: counts, percent done, every resource's state.

    ``last_event_seq`` is the deployment's as it was read before the resources, so the
    resources are at least that recent: a page that has seen later events knows this snapshot
    may be older than what it shows. ``next_check_at`` is when the reconciler looks at a
    waiting resource again (the page counts down to it).
    """
    records = list(deployment.resources.all())
    done_state = progress_done_state(deployment.status)
    done = sum(1 for r in records if r.state == done_state)
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
                "next_check_at": r.next_check_at.isoformat() if r.next_check_at else None,
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
