"""Reads of designs, always scoped to the teams the user belongs to (staff see all)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from designer.models import Design, DesignVersion
from teams.selectors import team_list


def design_list(*, user: AbstractBaseUser) -> QuerySet[Design]:
    return Design.objects.filter(team__in=team_list(user=user)).select_related("team", "updated_by")


def design_get(*, user: AbstractBaseUser, pk: int) -> Design:
    """The design, or Http404 when it does not exist or belongs to a team the user is not in.

    A 404 rather than a 403 so that another team's design ids do not leak.
    """
    return get_object_or_404(design_list(user=user), pk=pk)


def design_version_list(*, design: Design) -> QuerySet[DesignVersion]:
    return design.versions.select_related("created_by").order_by("-version")


def design_version_get(*, design: Design, version: int) -> DesignVersion:
    return get_object_or_404(design.versions, version=version)
