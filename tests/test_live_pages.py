"""The live-stack pages through Django's test client, on the real database: the design page's
live versions, Review changes and Apply, the version diff, and the deployment page's runs,
drift (Check drift now, Repair) and outputs; bad input and another team's objects answer a
404 or 400 page, never a 500.

No worker runs here: a deployment is played as succeeded (``finish_as_worker``). The drift
check reads AWS for real: the moto server behind the sandbox proxy.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from deployer import services
from deployer.models import Deployment, Run
from designer.services import design_create, design_update
from designer.spec import DEFAULT_SPEC
from tests.support import finish_as_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(team, member, settings):
    """A design whose v1 is live (succeeded) on the team's sandbox target; no worker runs."""
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"  # never contacted
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=member)
    deployment.resources.update(state="ready")
    for i, record in enumerate(deployment.resources.all()):
        record.physical_id = f"{record.logical_id.lower()}-{i}"
        record.save(update_fields=["physical_id"])
    Run.objects.filter(deployment=deployment).update(status="succeeded")
    finish_as_worker(deployment)
    return design, target, deployment


def new_version(design, member, **changes):
    return design_update(design=design, user=member, spec_data={**design.spec, **changes})


def text(response) -> str:
    """The page's words, tags removed and spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def review_url(design, target, version=None) -> str:
    url = reverse("designer:design_changes", args=[design.pk]) + f"?target={target.pk}"
    return url + (f"&version={version}" if version is not None else "")


# --- the design page and Review changes -------------------------------------------------------


def test_the_design_page_says_what_is_live_and_offers_a_review_when_it_differs(
    live, member, member_client
):
    design, target, deployment = live
    page = member_client.get(reverse("designer:design_edit", args=[design.pk]))
    assert "v1 is live on sandbox" in text(page)
    assert reverse("deployer:deployment_detail", args=[deployment.pk]) in page.content.decode()
    assert b"data-review-changes" not in page.content  # the saved version is the live one

    design = new_version(design, member, api_port=8443)
    page = member_client.get(reverse("designer:design_edit", args=[design.pk]))
    assert "the saved v2 differs" in text(page)
    assert review_url(design, target).replace("&", "&amp;") in page.content.decode()


def test_review_changes_shows_the_change_set_the_diagram_and_the_cost(live, member, member_client):
    design, target, deployment = live
    design = new_version(design, member, api_port=8443)
    page = member_client.get(review_url(design, target))
    assert page.status_code == 200
    html = page.content.decode()
    row = re.search(
        r'<tr data-logical-id="ApiFromLambdaIngress" data-action="(\w+)">(.*?)</tr>', html, re.S
    )
    assert row and row.group(1) == "replace"
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(2)))
    assert "-/+" in words and "443 → 8443" in words and "forces replacement" in words
    # The diagram draws each change in its action's words and colour; the legend names them.
    assert "change: replace" in html
    assert 'data-change="add"' in html and 'data-change="remove"' in html
    # The cost before and after, and the form that applies exactly what was reviewed.
    assert "data-cost-before" in html and "data-cost-after" in html
    assert f'name="based_on_seq" value="{deployment.last_event_seq}"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_apply_starts_an_update_run_of_the_same_deployment(live, member, member_client):
    design, target, deployment = live
    design = new_version(design, member, api_port=8443)
    deployment.refresh_from_db()
    response = member_client.post(
        reverse("designer:design_apply", args=[design.pk]),
        {
            "target": target.pk,
            "version": 2,
            "based_on_seq": deployment.last_event_seq,
            # The API instance is replaced (its user data sets the port at first boot).
            "allow_interruption": "on",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("deployer:deployment_detail", args=[deployment.pk])
    deployment.refresh_from_db()
    assert deployment.status == Deployment.Status.UPDATING
    run = deployment.runs.get(number=2)
    assert (run.operation, run.version_before, run.version_after) == ("update", 1, 2)
    assert Deployment.objects.filter(design=design).count() == 1

    page = member_client.get(response["Location"])
    runs = re.search(
        r'<tr data-run="2" data-operation="update"[^>]*>(.*?)</tr>', page.content.decode(), re.S
    )
    assert runs and "v1 → v2" in runs.group(1) and member.username in runs.group(1)


def test_apply_refusals_are_said_on_the_page(live, member, member_client):
    design, target, deployment = live
    deployment.refresh_from_db()
    apply = reverse("designer:design_apply", args=[design.pk])

    # A VPC range changed: the VPC is replaced, which interrupts traffic: confirm it first.
    design = new_version(
        design,
        member,
        vpc_cidr="10.1.0.0/16",
        public_subnet_cidrs=["10.1.0.0/24"],
        lambda_subnet_cidrs=["10.1.1.0/24"],
        api_subnet_cidrs=["10.1.2.0/24"],
    )
    review = member_client.get(review_url(design, target))
    assert b'name="allow_interruption"' in review.content
    form = {"target": target.pk, "version": 2, "based_on_seq": deployment.last_event_seq}
    refused = member_client.post(apply, form)
    assert refused.status_code == 400
    assert "Not applied: this change interrupts traffic" in text(refused)
    assert deployment.runs.count() == 1

    # Reviewed before the deployment moved on (a drift check, a run): review again.
    stale = member_client.post(
        apply, {**form, "based_on_seq": deployment.last_event_seq - 1, "allow_interruption": "on"}
    )
    assert stale.status_code == 409
    assert "has changed since these changes were reviewed" in text(stale)

    # The form lost its review: 400, in words.
    lost = member_client.post(apply, {"target": target.pk, "version": 2, "based_on_seq": "x"})
    assert lost.status_code == 400 and "review the changes again" in text(lost)

    # A region change is refused, with the reason; the page offers no Apply.
    design = new_version(design, member, region="eu-west-1")
    review = member_client.get(review_url(design, target))
    assert review.status_code == 200
    assert "This change set is refused" in text(review) and "stays in its region" in text(review)
    assert b'id="apply-form"' not in review.content
    refused = member_client.post(apply, {**form, "version": 3, "allow_interruption": "on"})
    assert refused.status_code == 409 and "the change set is refused" in text(refused)

    # A run in progress: busy, said in words.
    Deployment.objects.filter(pk=deployment.pk).update(status="updating")
    busy = member_client.post(apply, {**form, "allow_interruption": "on"})
    assert busy.status_code == 409 and "wait for it to finish" in text(busy)
    assert deployment.runs.count() == 1


def test_the_deploy_button_on_a_live_stack_sends_it_to_its_review_first(
    live, member, member_client
):
    design, target, deployment = live
    design = new_version(
        design, member, api_kind="alb", api_subnet_cidrs=["10.0.2.0/24", "10.0.3.0/24"]
    )
    response = member_client.post(
        reverse("deployer:deployment_create", args=[design.pk]), {"target": target.pk}
    )
    assert response.status_code == 302
    assert response["Location"] == review_url(design, target)
    page = member_client.get(response["Location"])
    assert "review what deploying the saved version changes" in text(page)
    assert b'name="allow_interruption"' in page.content
    assert Deployment.objects.get(pk=deployment.pk).runs.count() == 1  # nothing started


def test_bad_input_and_other_teams_get_a_404_or_400_page(
    live, member, member_client, outsider, other_team, client
):
    design, target, deployment = live
    new_version(design, member, api_port=8443)
    other = services.target_sandbox_ensure(team=other_team)
    base = reverse("designer:design_changes", args=[design.pk])
    for url in (
        base,  # no target
        base + "?target=abc",
        base + "?target=٣",
        base + f"?target={other.pk}",
        base + f"?target={target.pk}&version=99",
        base + f"?target={target.pk}&version=x",
        reverse("designer:design_version_diff", args=[design.pk]) + "?from=1&to=99",
        reverse("designer:design_version_diff", args=[design.pk]) + "?from=abc&to=2",
    ):
        response = member_client.get(url)
        assert response.status_code == 404, url
        assert b"Not found" in response.content, url
    apply = reverse("designer:design_apply", args=[design.pk])
    assert (
        member_client.post(apply, {"target": "x", "version": 2, "based_on_seq": 1}).status_code
        == 404
    )
    assert (
        member_client.post(
            apply, {"target": target.pk, "version": "99", "based_on_seq": 1}
        ).status_code
        == 404
    )
    assert member_client.get(apply).status_code == 405

    client.force_login(outsider)
    for url in (
        review_url(design, target),
        reverse("designer:design_version_diff", args=[design.pk]),
        reverse("deployer:deployment_detail", args=[deployment.pk]),
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        apply,
        reverse("deployer:deployment_drift_check", args=[deployment.pk]),
        reverse("deployer:deployment_repair", args=[deployment.pk]),
    ):
        assert (
            client.post(url, {"target": target.pk, "version": 2, "based_on_seq": 1}).status_code
            == 404
        ), url
    assert deployment.runs.count() == 1


def test_the_pages_post_only_with_a_csrf_token(live, member, client):
    from django.test import Client

    design, target, deployment = live
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    for url in (
        reverse("designer:design_apply", args=[design.pk]),
        reverse("deployer:deployment_drift_check", args=[deployment.pk]),
        reverse("deployer:deployment_repair", args=[deployment.pk]),
    ):
        assert strict.post(url, {"target": target.pk}).status_code == 403, url


# --- the version diff -------------------------------------------------------------------------


def test_the_diff_between_two_versions(live, member, member_client):
    design, target, _ = live
    design = new_version(design, member, api_port=8443)
    design = new_version(design, member, tags={"env": "prod"})
    versions = member_client.get(reverse("designer:design_versions", args=[design.pk]))
    assert b'id="compare-form"' in versions.content

    url = reverse("designer:design_version_diff", args=[design.pk])
    page = member_client.get(url + "?from=1&to=2")
    assert page.status_code == 200
    html = page.content.decode()
    field = re.search(r'<tr data-field="api_port">(.*?)</tr>', html, re.S)
    assert field and "443" in field.group(1) and "8443" in field.group(1)
    assert 'data-field="tags"' not in html
    assert re.search(r'data-logical-id="ApiFromLambdaIngress" data-action="replace"', html)

    # Any two, in either order; by default the last two.
    page = member_client.get(url + "?from=3&to=1")
    assert (
        'data-field="tags"' in page.content.decode()
        and 'data-field="api_port"' in page.content.decode()
    )
    page = member_client.get(url)
    assert "v2 → v3" in text(page) and 'data-field="api_port"' not in page.content.decode()
    same = member_client.get(url + "?from=2&to=2")
    assert same.status_code == 200 and b'id="no-field-changes"' in same.content


# --- the deployment page ----------------------------------------------------------------------


def test_the_deployment_page_lists_runs_outputs_and_the_drift_panel(live, member_client):
    design, target, deployment = live
    page = member_client.get(reverse("deployer:deployment_detail", args=[deployment.pk]))
    html = page.content.decode()
    assert re.search(r'<tr data-run="1" data-operation="create"', html)
    assert 'data-output="VpcId"' in html and "vpc-" in html
    assert "Not checked yet" in text(page) and 'id="drift-button"' in html
    assert 'id="repair-button"' not in html  # nothing drifted


def test_a_drift_check_that_cannot_read_aws_says_so(live, member_client):
    _, _, deployment = live  # its target points where nothing listens
    check = reverse("deployer:deployment_drift_check", args=[deployment.pk])
    response = member_client.post(check, follow=True)
    assert response.status_code == 200
    assert "Drift was not checked: AWS could not be read" in text(response)
    deployment.refresh_from_db()
    assert deployment.drift_status == ""


def test_drift_found_on_the_page_and_repaired_from_it(
    worker, team, member, member_client, moto_endpoint
):
    """A real deployment (worker, sandbox, moto); a world-open SSH rule added to SG-API by
    hand; Check drift now finds it, Repair puts it back."""
    from tests.support import aws
    from tests.test_deployer_e2e import wait_for

    design = design_create(team=team, user=member, spec_data={**DEFAULT_SPEC, "name": "drifter"})
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=member)
    deployment = wait_for(deployment, ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    group = deployment.resources.get(logical_id="ApiSecurityGroup").physical_id
    aws(moto_endpoint, "ec2").authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )

    check = reverse("deployer:deployment_drift_check", args=[deployment.pk])
    response = member_client.post(check, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Drifted: 1 resource changed outside Gantry (ApiSecurityGroup)" in text(response)
    row = re.search(
        r'<tr data-logical-id="ApiSecurityGroup" data-drift="modified">(.*?)</tr>', html, re.S
    )
    assert row and "0.0.0.0/0" in row.group(1)
    # Its badge, the diagram and the deployment list say drifted.
    assert re.search(
        r'<tr data-logical-id="ApiSecurityGroup"[^>]*>.*?data-state="drifted"', html, re.S
    )
    diagram = member_client.get(reverse("deployer:deployment_diagram", args=[deployment.pk]))
    assert b"state: drifted" in diagram.content
    listing = member_client.get(reverse("deployer:deployment_list"))
    assert b"data-drifted" in listing.content
    assert 'id="repair-button"' in html

    # Repair deploys the live version again: an update run of the same deployment.
    repair = reverse("deployer:deployment_repair", args=[deployment.pk])
    worker.pause()  # held, so the run is still in progress below
    response = member_client.post(repair, follow=True)
    assert "Repairing: run 2" in text(response)
    run = deployment.runs.get(number=2)
    assert run.operation == "update" and (run.version_before, run.version_after) == (1, 1)
    # While it runs: no drift check, no second repair, said in words.
    deployment.refresh_from_db()
    assert deployment.status == "updating"
    assert "Drift was not checked" in text(member_client.post(check, follow=True))
    assert "Not repaired" in text(member_client.post(repair, follow=True))
    worker.resume()
    deployment = wait_for(deployment, ("succeeded", "update_failed", "update_rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    response = member_client.post(check, follow=True)
    assert "In sync: every resource is as Gantry applied it." in text(response)
    assert deployment.runs.count() == 2
