"""A team's page: its deployment history (the deployer's) and its recent audit entries (the
audit trail's), for its members, without admin rights."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.selectors import audit_entry_list, audit_entry_summary
from audit.services import get_for_user_or_404
from deployer.selectors import deployment_list
from gantry.parsing import parse_id
from teams.selectors import team_list as teams_of

#: Deployments per page of a team's history.
HISTORY_PAGE_SIZE = 50
#: How many of the team's latest audit entries its page shows.
RECENT_ENTRIES = 50


@login_required
@require_GET
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Members (and staff) only; anyone else gets the 404 of a team that does not exist, and
    the attempt is audited."""
    team = get_for_user_or_404(
        teams_of(user=request.user), user=request.user, path=request.path, slug=slug
    )
    history = Paginator(deployment_list(user=request.user).filter(team=team), HISTORY_PAGE_SIZE)
    # Anything but a page number shows the first page, as Paginator.get_page does.
    page = history.get_page(parse_id(request.GET.get("page")) or 1)
    entries = list(audit_entry_list(team=team)[:RECENT_ENTRIES])
    for entry in entries:
        entry.summary = audit_entry_summary(entry)
    return render(
        request,
        "teams/team_detail.html",
        {"team": team, "page": page, "entries": entries, "recent_entries": RECENT_ENTRIES},
    )
