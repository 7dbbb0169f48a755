"""Writes of designs. Views, the API and the CLI call these; none writes a Design itself."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import A, audit_record
from designer.models import Design, DesignVersion
from designer.spec import Issue, validate_spec
from teams.models import Team
from teams.selectors import team_list


class SpecInvalid(ValidationError):
    """A spec failed validation; ``issues`` keeps each error's field and list index."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        messages: dict[str, list[str]] = {}
        for issue in issues:
            messages.setdefault(issue.field, []).append(issue.message)
        super().__init__(messages)


def _validated(spec_data: Any) -> dict[str, Any]:
    result = validate_spec(spec_data)
    if not result.valid or result.spec is None:
        raise SpecInvalid(result.errors)
    return result.spec.to_json()


def _name_taken() -> SpecInvalid:
    return SpecInvalid(
        [Issue("name", "a design with this name already exists in this team; pick another name")]
    )


@transaction.atomic
def design_create(*, team: Team, user: AbstractBaseUser, spec_data: Any) -> Design:
    """Validate and save a new design as version 1.

    Raises ValidationError keyed by spec field (``name`` when the team already has that name).
    """
    if not team_list(user=user).filter(pk=team.pk).exists():
        raise PermissionDenied("not a member of this team")
    spec = _validated(spec_data)
    if Design.objects.filter(team=team, name=spec["name"], deleted_at__isnull=True).exists():
        raise _name_taken()
    try:
        with transaction.atomic():
            design = Design.objects.create(
                team=team,
                name=spec["name"],
                spec=spec,
                version=1,
                created_by=user,
                updated_by=user,
            )
    except IntegrityError as exc:  # a concurrent save took the name first
        raise _name_taken() from exc
    DesignVersion.objects.create(design=design, version=1, spec=spec, created_by=user)
    audit_record(
        action=A.DESIGN_CREATED,
        actor=user,
        team=team,
        obj=design,
        data={"version": 1, "spec": spec},
    )
    return design


@transaction.atomic
def design_update(*, design: Design, user: AbstractBaseUser, spec_data: Any) -> Design:
    """Save a new version of a design; the previous versions stay as they were.

    Saving an identical spec makes no new version. The row is locked so that two concurrent
    saves get consecutive version numbers instead of colliding.
    """
    spec = _validated(spec_data)
    design = Design.objects.select_for_update().get(pk=design.pk)
    if spec == design.spec:
        return design
    if (
        spec["name"] != design.name
        and Design.objects.filter(
            team_id=design.team_id, name=spec["name"], deleted_at__isnull=True
        ).exists()
    ):
        raise _name_taken()
    before = design.spec
    design.version += 1
    design.name = spec["name"]
    design.spec = spec
    design.updated_by = user
    try:
        with transaction.atomic():
            design.save(update_fields=["version", "name", "spec", "updated_by", "updated_at"])
    except IntegrityError as exc:
        raise _name_taken() from exc
    DesignVersion.objects.create(design=design, version=design.version, spec=spec, created_by=user)
    audit_record(
        action=A.DESIGN_UPDATED,
        actor=user,
        team=design.team,
        obj=design,
        data={"before": before, "after": spec, "version": design.version},
    )
    return design


class DesignInUse(Exception):
    """The design still has a deployment whose resources may exist; ``deployment`` is it."""

    def __init__(self, deployment):
        self.deployment = deployment
        super().__init__(
            f"design {deployment.design.name} has deployment #{deployment.pk} "
            f"({deployment.get_status_display().lower()}) whose AWS resources may still exist; "
            f"destroy it first"
        )


#: Deployment statuses after which nothing of it is left in AWS.
_CLEAN_STATUSES = ("destroyed", "rolled_back", "cancelled")


@transaction.atomic
def design_delete(*, design: Design, user: AbstractBaseUser) -> None:
    """Delete a design. Refused while a deployment of it may still hold AWS resources (so no
    resource is orphaned from the design that explains it). The row and its versions are kept,
    hidden, for the history of past deployments; the name becomes free again."""
    design = Design.objects.select_for_update().get(pk=design.pk)
    if design.deleted_at is not None:
        return
    live = design.deployments.exclude(status__in=_CLEAN_STATUSES).order_by("-created_at").first()
    if live is not None:
        raise DesignInUse(live)
    design.deleted_at = timezone.now()
    design.save(update_fields=["deleted_at"])
    audit_record(
        action=A.DESIGN_DELETED,
        actor=user,
        team=design.team,
        obj=design,
        data={"name": design.name, "version": design.version, "spec": design.spec},
    )
