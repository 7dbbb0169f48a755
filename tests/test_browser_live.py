"""A live stack changed in place from the pages, in a real browser: a deployed design's API
port changed from 443 to 8443, the change set reviewed (table, coloured diagram, cost), applied,
and the update run followed to its end on the deployment page.

Debian's Chromium (Playwright) against Gantry served by uvicorn, a real Celery worker, Redis,
and AWS as the moto server behind the sandbox proxy at a fast time scale.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import diagram_texts, login, preview_up_to_date, requires_chromium, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), requires_chromium]

#: The sandbox's fast time scale makes a deploy or an update take seconds; this is the ceiling.
RUN_TIMEOUT_MS = 120_000


def test_change_the_port_of_a_deployed_design_review_apply_and_watch(
    new_page, worker, make_user, team, moto_endpoint
):
    from deployer import services
    from designer.services import design_create
    from designer.spec import DEFAULT_SPEC
    from tests.support import aws
    from tests.test_deployer_e2e import wait_for

    user = make_user("porter", team=team)
    design = design_create(team=team, user=user, spec_data={**DEFAULT_SPEC, "name": "porting"})
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=user)
    deployment = wait_for(deployment, ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    ingress_before = deployment.resources.get(logical_id="ApiFromLambdaIngress").physical_id

    page = new_page(width=1500, height=1000)
    login(page, "porter")
    page.goto(f"/designs/{design.pk}/")
    live = page.locator('[data-live-target="sandbox"]')
    expect(live).to_contain_text("v1 is live on sandbox")
    expect(live.get_by_role("link", name=f"deployment {deployment.pk}")).to_be_visible()
    expect(page.locator("[data-review-changes]")).to_have_count(0)

    # Change the port and save: the saved v2 differs from what is live.
    preview_up_to_date(page)
    page.fill("#id_api_port", "8443")
    preview_up_to_date(page)
    preview_cost = page.locator("[data-cost-total]").inner_text()
    page.locator("#save-button").click()
    expect(page.locator(".messages")).to_contain_text("Saved version 2")
    expect(live).to_contain_text("the saved v2 differs")

    # Review changes: the ingress rule is replaced (its port cannot change in place).
    page.get_by_role("link", name="Review changes").click()
    expect(page.locator("h1")).to_contain_text("review changes")
    row = page.locator('#changes tr[data-logical-id="ApiFromLambdaIngress"]')
    expect(row).to_have_attribute("data-action", "replace")
    expect(row).to_contain_text("-/+")
    expect(row.locator('[data-property="FromPort"]')).to_contain_text("443 → 8443")
    expect(row.locator('[data-property="FromPort"]')).to_contain_text("forces replacement")
    # The diagram draws each change in its action's words and colour, with a legend.
    drawn = diagram_texts(page, "#change-diagram svg")
    assert any(t.startswith("change: replace") for t in drawn), drawn
    expect(page.locator(".state-legend [data-change]")).to_have_count(4)
    # The monthly cost before and after: a port costs nothing, the total is the design's.
    expect(page.locator("[data-cost-after]")).to_have_text(preview_cost)
    expect(page.locator("[data-cost-before]")).to_have_text(preview_cost)
    expect(page.locator("[data-cost-delta]")).to_have_text("The same cost a month.")
    screenshot(page, "review-changes")

    # Apply: the change interrupts traffic (the API instance is replaced), so it asks first.
    expect(page.locator('#changes tr[data-logical-id="ApiInstance"]')).to_have_attribute(
        "data-action", "replace"
    )
    page.locator("#apply-button").click()
    expect(page.locator("#apply-error")).to_contain_text("interrupts traffic")
    page.get_by_label("Allow the interruption").check()
    page.locator("#apply-button").click()
    page.wait_for_url(re.compile(rf"/deployments/{deployment.pk}/$"))
    expect(page.locator(".messages")).to_contain_text("run 2 updates deployment")

    # Watch the run finish, live, on the same deployment's page.
    page.wait_for_function(
        "document.getElementById('status').dataset.status === 'succeeded'",
        timeout=RUN_TIMEOUT_MS,
    )
    expect(page.locator("#status")).to_have_text("Succeeded")
    # The runs list follows the run live, and says the same after a reload.
    run = page.locator('#runs tr[data-run="2"]')
    expect(run).to_have_attribute("data-run-status", "succeeded")
    expect(run.locator(".status")).to_have_text("Succeeded")
    page.reload()
    expect(run).to_have_attribute("data-operation", "update")
    expect(run).to_have_attribute("data-run-status", "succeeded")
    expect(run).to_contain_text("v1 → v2")
    expect(run).to_contain_text("porter")
    expect(page.locator('#runs tr[data-run="1"]')).to_have_attribute("data-operation", "create")
    expect(page.locator('[data-output="ApiUrl"]')).to_contain_text(":8443/")
    screenshot(page, "deployment-runs")

    # AWS has the new rule, not the old one; the design page says v2 is live.
    deployment.refresh_from_db()
    assert deployment.design_version == 2
    rule = deployment.resources.get(logical_id="ApiFromLambdaIngress", state="ready")
    assert rule.physical_id != ingress_before
    group = deployment.resources.get(logical_id="ApiSecurityGroup").physical_id
    perms = aws(moto_endpoint, "ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][
        0
    ]["IpPermissions"]
    assert {p.get("FromPort") for p in perms} == {8443}
    page.goto(f"/designs/{design.pk}/")
    expect(live).to_contain_text("v2 is live on sandbox")
    expect(live).to_contain_text("it is the saved version")
