"""Reads scoped to what a user may see."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from teams.models import Team


def team_list(*, user: AbstractBaseUser) -> QuerySet[Team]:
    """The teams a user may act for: their own, or every team for staff."""
    if not user.is_authenticated:
        return Team.objects.none()
    if user.is_staff:
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user)


def team_is_admin(*, user: AbstractBaseUser, team: Team) -> bool:
    """Whether the user may manage the team's settings (its targets): a team admin, or staff."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    return team.memberships.filter(user=user, role="admin").exists()
