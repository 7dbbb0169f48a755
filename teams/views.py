"""Team pages that need only teams. A team's own page (its deployment history and audit
trail) composes other apps and lives in the page layer (``pages/team.py``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from teams.selectors import team_list as teams_of


@login_required
@require_GET
def team_list(request: HttpRequest) -> HttpResponse:
    teams = teams_of(user=request.user).annotate(
        member_count=Count("memberships", distinct=True),
        deployment_count=Count("deployments", distinct=True),
    )
    return render(request, "teams/team_list.html", {"teams": teams})
