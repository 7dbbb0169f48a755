"""Writes for teams and memberships."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.text import slugify

from teams.models import Membership, Team


@transaction.atomic
def team_ensure(*, name: str) -> Team:
    team, _ = Team.objects.get_or_create(name=name, defaults={"slug": slugify(name)})
    return team


@transaction.atomic
def membership_ensure(*, team: Team, user: AbstractBaseUser, role: str = "member") -> Membership:
    membership, created = Membership.objects.get_or_create(
        team=team, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def demo_setup(*, username: str, password: str, team_name: str) -> tuple[AbstractBaseUser, Team]:
    """Create (or reset) the demo user and team that `make run` prints the login for."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username)
    user.set_password(password)
    user.save()
    team = team_ensure(name=team_name)
    membership_ensure(team=team, user=user, role=Membership.Role.ADMIN)
    return user, team
