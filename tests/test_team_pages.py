"""A team's own pages: its deployment history and recent audit entries, for its members
(and staff) without admin rights."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from deployer import services as deployer_services
from deployer.models import Deployment
from designer.services import design_create, design_update
from designer.spec import DEFAULT_SPEC

pytestmark = pytest.mark.django_db

A = AuditEntry.Action


@pytest.fixture
def deployed(team, other_team, member, outsider, settings):
    """payments: ``web-api`` deployed at v1 (rolled back, so its stack is gone), edited,
    deployed at v2 (a new deployment, queued); search: ``secret-api`` deployed once."""
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"
    design = design_create(team=team, user=member, spec_data={**DEFAULT_SPEC, "name": "web-api"})
    target = deployer_services.target_sandbox_ensure(team=team)
    first = deployer_services.deployment_start(design=design, target=target, user=member)
    Deployment.objects.filter(pk=first.pk).update(status=Deployment.Status.ROLLED_BACK)
    design = design_update(
        design=design,
        user=member,
        spec_data={**DEFAULT_SPEC, "name": "web-api", "api_port": 8443},
    )
    second = deployer_services.deployment_start(design=design, target=target, user=member)
    theirs = deployer_services.deployment_start(
        design=design_create(
            team=other_team, user=outsider, spec_data={**DEFAULT_SPEC, "name": "secret-api"}
        ),
        target=deployer_services.target_sandbox_ensure(team=other_team),
        user=outsider,
    )
    return first, second, theirs


def test_the_nav_links_to_the_teams_page(member_client):
    page = member_client.get(reverse("designer:design_list")).content.decode()
    assert f'href="{reverse("teams:team_list")}"' in page


def test_team_list_shows_the_users_teams_and_staff_see_all(
    client, member_client, team, other_team, make_user
):
    page = member_client.get(reverse("teams:team_list"))
    assert page.status_code == 200
    assert [t.pk for t in page.context["teams"]] == [team.pk]
    assert reverse("teams:team_detail", args=[team.slug]) in page.content.decode()
    assert other_team.name not in page.content.decode()

    client.force_login(make_user("root", staff=True))
    staff_page = client.get(reverse("teams:team_list"))
    assert {t.pk for t in staff_page.context["teams"]} == {team.pk, other_team.pk}


def test_team_page_shows_the_whole_deployment_history_and_recent_entries(
    member_client, team, deployed
):
    first, second, theirs = deployed
    response = member_client.get(reverse("teams:team_detail", args=[team.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert [d.pk for d in response.context["page"].object_list] == [second.pk, first.pk]
    history = html[html.index('id="deployment-history"') : html.index('id="audit-heading"')]
    for deployment, version, status in ((first, "v1", "Rolled back"), (second, "v2", "Queued")):
        assert f'href="{reverse("deployer:deployment_detail", args=[deployment.pk])}"' in history
        assert version in history and status in history
    assert "web-api" in history and "sandbox" in history and "alice" in history
    assert "secret-api" not in html  # another team's deployment

    entries = response.context["entries"]
    assert {e.team_id for e in entries} == {team.pk}
    assert [e.action for e in entries] == [
        A.DEPLOYMENT_REQUESTED,
        A.DESIGN_UPDATED,
        A.DEPLOYMENT_REQUESTED,
        A.DESIGN_CREATED,
    ]
    activity = html[html.index('id="audit-entries"') :]
    assert "Design edited" in activity and "v2: changed api_port" in activity
    assert "web-api v2 to sandbox" in activity


def test_team_page_pages_through_a_long_history(member_client, team, member, deployed):
    first, _, _ = deployed
    Deployment.objects.bulk_create(
        Deployment(
            team=team,
            design=first.design,
            design_version=1,
            spec=first.spec,
            target=first.target,
            requested_by=member,
            status=Deployment.Status.DESTROYED,
        )
        for _ in range(50)
    )
    url = reverse("teams:team_detail", args=[team.slug])
    page1 = member_client.get(url)
    assert len(page1.context["page"].object_list) == 50
    assert 'href="?page=2"' in page1.content.decode()
    page2 = member_client.get(url, {"page": 2})
    assert len(page2.context["page"].object_list) == 2  # 52 in all


def test_team_page_is_404_to_others_and_the_attempt_is_recorded(
    client, member_client, team, other_team, outsider, deployed, make_user
):
    url = reverse("teams:team_detail", args=[other_team.slug])
    response = member_client.get(url)
    nothing = member_client.get(reverse("teams:team_detail", args=["no-such-team"]))
    assert response.status_code == nothing.status_code == 404
    assert response.content == nothing.content
    (entry,) = AuditEntry.objects.filter(action=A.ACCESS_DENIED)
    assert entry.team == other_team and entry.actor.username == "alice"
    assert entry.data == {"path": url} and entry.request_id == response["X-Request-ID"]
    assert entry.object_type == "team" and entry.object_id == str(other_team.pk)

    # search's members see that alice tried, on their own page.
    client.force_login(outsider)
    page = client.get(url)
    assert page.status_code == 200
    assert "Access denied" in page.content.decode() and f"refused {url}" in page.content.decode()

    client.force_login(make_user("root", staff=True))
    assert client.get(url).status_code == 200
    client.logout()
    assert client.get(url).status_code == 302  # to the login page
