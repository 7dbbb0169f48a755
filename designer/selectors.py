"""Reads of designs, always scoped to the teams the user belongs to (staff see all)."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from audit.services import get_for_user_or_404
from designer.export import spec_template
from designer.models import Design, DesignVersion
from designer.services import SpecInvalid
from designer.spec import validate_spec
from teams.selectors import team_list


def design_list(*, user: AbstractBaseUser) -> QuerySet[Design]:
    return Design.objects.filter(
        team__in=team_list(user=user), deleted_at__isnull=True
    ).select_related("team", "updated_by")


def design_get(*, user: AbstractBaseUser, pk: int, path: str = "") -> Design:
    """The design, or Http404 when it does not exist or belongs to a team the user is not in.

    A 404 rather than a 403 so that another team's design ids do not leak; the attempt on
    another team's design is recorded in the audit trail with ``path``.
    """
    return get_for_user_or_404(design_list(user=user), user=user, path=path, pk=pk)


def design_version_list(*, design: Design) -> QuerySet[DesignVersion]:
    return design.versions.select_related("created_by").order_by("-version")


def design_version_get(*, design: Design, version: int) -> DesignVersion:
    return get_object_or_404(design.versions, version=version)


def design_version_template(*, design: Design, version: int | None = None) -> dict[str, Any]:
    """The CloudFormation template of one saved version of ``design`` (its current version by
    default), which the caller has already been allowed to see (``design_get``).

    Raises ``DesignVersion.DoesNotExist`` for a version the design does not have, and
    ``SpecInvalid`` when that version's spec no longer passes validation (a rule tightened
    since it was saved).
    """
    snapshot = design.versions.get(version=design.version if version is None else version)
    result = validate_spec(snapshot.spec)
    if result.spec is None:
        raise SpecInvalid(result.errors)
    return spec_template(result.spec, version=snapshot.version)
