"""A new user's whole journey in a real browser: design, deploy, watch, reload, destroy.

Debian's Chromium (Playwright) against Gantry served by uvicorn as in production, a real Celery
worker, Redis, and AWS as the moto server behind the sandbox proxy at a fast time scale.

Set GANTRY_SCREENSHOTS=docs to rewrite the README's three screenshots from this journey.
"""

from __future__ import annotations

import re
import time

import boto3
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser import (
    cost_total,
    diagram_texts,
    expect_text,
    login,
    preview_up_to_date,
    requires_chromium,
    screenshot,
)

pytestmark = [pytest.mark.django_db(transaction=True), requires_chromium]

#: Deploying and destroying at the sandbox's fast time scale takes seconds; this is the ceiling.
DEPLOY_TIMEOUT_MS = 120_000

ROWS = "#resources tbody tr"
EVENT_SEQS = "() => [...document.querySelectorAll('#events li')].map(li => Number(li.dataset.seq))"


def states(page) -> dict[str, str]:
    """Each row's badge (its state key: ``waiting_to_create``, ``ready``...)."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#resources tbody tr')]
              .map(tr => [tr.dataset.logicalId, tr.querySelector('.state-badge').dataset.state]))"""
    )


def wait_until_all(page, state: str, status: str) -> None:
    page.wait_for_function(
        """([state, status]) => {
            const badges = [...document.querySelectorAll('#resources .state-badge')];
            return badges.length > 0 && badges.every(b => b.dataset.state === state)
                && document.getElementById('status').textContent.trim().toLowerCase() === status;
        }""",
        arg=[state, status],
        timeout=DEPLOY_TIMEOUT_MS,
    )


def diagram_in_step(page) -> None:
    """Wait until the deployment's diagram shows every drawn resource in its row's state (the
    page redraws it, debounced, after resource events). An element that hosts others shows the
    most urgent state among them, naming the resource it comes from ("state: waiting to create
    (PublicRouteTable)"): that state is checked against the named resource's badge."""
    page.wait_for_function(
        """() => {
            const rows = Object.fromEntries([...document.querySelectorAll('#resources tbody tr')]
                .map(tr => [tr.dataset.logicalId,
                            tr.querySelector('.state-badge').textContent.toLowerCase()]));
            const drawn = [...document.querySelectorAll('#deploy-diagram g.node, #deploy-diagram g.cluster')]
                .map(g => {
                    const id = (g.querySelector('title') || {}).textContent?.replace(/^cluster_/, '');
                    const label = [...g.querySelectorAll('text')].map(t => t.textContent)
                        .find(t => t.startsWith('state: '));
                    const m = label && label.slice(7).match(/^(.+?)(?: \\((\\w+)\\))?$/);
                    return m ? [m[2] || id, m[1]] : null;
                })
                .filter(pair => pair && pair[0] in rows);
            return drawn.length > 0 && drawn.every(([id, state]) => rows[id] === state);
        }"""
    )


def drawn_states(page) -> set[str]:
    return set(
        page.locator("#deploy-diagram").evaluate(
            "d => [...d.querySelectorAll('text')].map(t => t.textContent)"
            ".filter(t => t.startsWith('state: ')).map(t => t.slice(7))"
        )
    )


def hold_worker(worker, deployment, *pages) -> None:
    """Pause the worker at a moment when every event it committed has reached the pages: a
    pause that fell between a commit and its publish is let go and tried again (the stream
    would only catch up at its keepalive re-read, after a quiet 15 s). A busy machine's pages
    can take a few seconds to draw what arrived, so each try waits 3 s before letting go."""
    for _ in range(20):
        worker.pause()
        deployment.refresh_from_db()
        try:
            for page in pages:
                page.wait_for_function(
                    "n => Math.max(0, ...[...document.querySelectorAll('#events li')]"
                    ".map(li => Number(li.dataset.seq))) >= n",
                    arg=deployment.last_event_seq,
                    timeout=3_000,
                )
            return
        except PlaywrightTimeoutError:
            worker.resume()
            time.sleep(0.05)
    pytest.fail("the pages never caught up with the committed events while the worker paused")


def times_match_records(page, deployment, *, deleting: bool = False) -> None:
    """Wait until each row's elapsed time is its record's: ready - started, or deleted -
    delete started, as gantry.human.duration writes it ("0.4 s", "1 min 32 s")."""
    from gantry.human import duration

    expected = {}
    for r in deployment.resources.all():
        start, end = (r.delete_started_at, r.deleted_at) if deleting else (r.started_at, r.ready_at)
        if start and end:
            expected[r.logical_id] = (end - start).total_seconds()
    assert len(expected) == deployment.resources.count()
    page.wait_for_function(
        """(expected) => Object.entries(expected).every(([id, text]) =>
            document.querySelector(`#resources tr[data-logical-id="${id}"] .elapsed`).textContent === text)""",
        arg={lid: duration(secs) for lid, secs in expected.items()},
    )


def assert_event_log_complete(page, deployment) -> list[int]:
    """The page's event log holds every event of the deployment once, in order: 1..last."""
    deployment.refresh_from_db()
    seqs = page.evaluate(EVENT_SEQS)
    assert seqs == list(range(1, deployment.last_event_seq + 1)), seqs
    return seqs


def test_a_new_user_designs_deploys_follows_and_destroys(
    new_page, start_worker, make_user, team, moto_endpoint
):
    from deployer.models import Deployment, ResourceRecord
    from designer.models import Design

    # It boots while the design is made. The test holds it twice for a second or two; a reaper
    # this patient leaves the event log as a user would see it.
    worker = start_worker(GANTRY_REAP_AFTER="30")
    make_user("newcomer", team=team)
    page = new_page()
    login(page, "newcomer")

    # The design form starts from the article's layout, and draws it.
    page.locator("#main").get_by_role("link", name="New design").click()  # the empty list says so
    page.wait_for_url(re.compile(r"/designs/new/$"))
    assert page.get_by_label("VPC CIDR").input_value() == "10.0.0.0/16"
    assert page.locator("#id_public_subnet_cidrs_0").input_value() == "10.0.0.0/24"
    assert page.locator("#id_lambda_subnet_cidrs_0").input_value() == "10.0.1.0/24"
    assert page.locator("#id_api_subnet_cidrs_0").input_value() == "10.0.2.0/24"
    assert page.get_by_label("API port").input_value() == "443"
    assert page.get_by_role("radio", name=re.compile("^One gateway internet")).is_checked()
    preview_up_to_date(page)
    drawn = diagram_texts(page)
    for label in (
        "VPC 10.0.0.0/16",
        "Public subnet 10.0.0.0/24",
        "Lambda subnet 10.0.1.0/24",
        "API subnet 10.0.2.0/24",
        "HTTPS tcp/443",
    ):
        assert label in drawn, (label, drawn)
    assert any("NAT gateway" in t for t in drawn)
    page.get_by_role("button", name="Save design").click()
    page.wait_for_url(re.compile(r"/designs/\d+/$"))
    assert "Saved" in page.locator(".messages").inner_text()
    design = Design.objects.get(team=team)
    deploy_button = page.get_by_role("button", name=re.compile("^Deploy saved version"))
    assert deploy_button.is_enabled()
    preview_up_to_date(page)
    svg_before, cost_before = page.locator("#preview svg").inner_html(), cost_total(page)

    # A Lambda subnet that overlaps the API subnet: the error appears next to the field it
    # names, announced, and nothing can be saved, deployed or downloaded.
    page.locator("#id_lambda_subnet_cidrs_0").fill("10.0.2.0/24")
    api_input = page.locator("#id_api_subnet_cidrs_0[aria-invalid='true']")
    api_input.wait_for()
    error = page.locator("#err-api_subnet_cidrs-0")
    assert "overlaps" in error.inner_text() and error.is_visible()
    assert "err-api_subnet_cidrs-0" in api_input.get_attribute("aria-describedby").split()
    assert error.get_attribute("role") == "alert"
    # Next to its field: in the same row as the input.
    assert error.evaluate(
        "(el) => el.closest('li') === document.getElementById('id_api_subnet_cidrs_0').closest('li')"
    )
    assert "Fix 1 problem" in page.locator("#error-summary").inner_text()
    assert deploy_button.is_disabled()
    assert page.get_by_role("button", name=re.compile("^Save as version")).is_disabled()
    assert page.get_by_role("button", name="Download PNG").is_disabled()
    assert "stale" in page.locator("#preview").get_attribute("class")

    # Fixed, and the Lambda spread over a second AZ: the diagram and the cost follow.
    page.locator("#id_lambda_subnet_cidrs_0").fill("10.0.3.0/24")
    page.wait_for_function("!document.querySelector('[data-deploy]').disabled")
    assert page.locator("[aria-invalid='true']").count() == 0
    assert page.locator(".field-error:not(:empty)").count() == 0
    page.get_by_role("button", name="Add lambda subnet in another AZ").click()
    new_row = page.locator("#id_lambda_subnet_cidrs_1")
    assert new_row.evaluate("el => el === document.activeElement")  # focus follows the new row
    assert "us-east-1b" in page.locator("label[for='id_lambda_subnet_cidrs_1']").inner_text()
    new_row.fill("10.0.4.0/24")
    expect_text(page, "#preview svg text", "Lambda subnet 10.0.4.0/24")
    preview_up_to_date(page)
    drawn = diagram_texts(page)
    assert "Lambda subnet 10.0.3.0/24" in drawn and "Lambda subnet 10.0.1.0/24" not in drawn
    assert page.locator("#preview svg").inner_html() != svg_before
    with_nat = cost_total(page)
    assert with_nat > cost_before  # the Secrets Manager endpoint now spans two AZs

    # No NAT: the cheaper design, and no NAT gateway in the picture.
    page.get_by_role("radio", name=re.compile("^None no internet")).check()
    page.wait_for_function(
        f"parseFloat(document.querySelector('[data-cost-total]').textContent) < {with_nat}"
    )
    preview_up_to_date(page)
    assert not any("NAT gateway" in t for t in diagram_texts(page))
    assert page.locator("[data-cost-item^='NatGateway']").count() == 0
    assert cost_total(page) < with_nat
    screenshot(page, "design-page")

    page.get_by_role("button", name="Save as version 2").click()
    page.wait_for_url(re.compile(rf"/designs/{design.pk}/$"))
    assert "Saved version 2" in page.locator(".messages").inner_text()
    design.refresh_from_db()
    assert design.version == 2
    assert design.spec["nat"] == "none"
    assert design.spec["lambda_subnet_cidrs"] == ["10.0.3.0/24", "10.0.4.0/24"]

    # Deploy. The worker is held while the page opens, so the page sees every resource come
    # up through its live stream.
    worker.pause()
    page.get_by_role("button", name="Deploy saved version v2").click()
    page.wait_for_url(re.compile(r"/deployments/\d+/$"))
    deployment = Deployment.objects.get(design=design)
    assert set(states(page).values()) == {"waiting_to_create"}
    assert page.locator("#progress").get_attribute("aria-valuenow") == "0"
    page.evaluate("window.__journeyMarker = 'never reloaded'")
    navigations = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.append(1))
    # A second tab on the same deployment: it will reload halfway.
    other_tab = new_page(context=page.context)
    other_tab.goto(f"/deployments/{deployment.pk}/")
    other_tab.wait_for_function("document.getElementById('stream-state').textContent === 'live'")
    page.wait_for_function("document.getElementById('stream-state').textContent === 'live'")
    worker.resume()

    # Halfway (the worker held again so it stays halfway): reload the second tab.
    other_tab.wait_for_function(
        "n => document.querySelectorAll('#resources .state-badge[data-state=ready]').length >= n",
        arg=deployment.resources.count() // 2,
        timeout=DEPLOY_TIMEOUT_MS,
    )
    hold_worker(worker, deployment, page, other_tab)
    try:
        ready = deployment.resources.filter(state=ResourceRecord.State.READY).count()
        assert 0 < ready < deployment.resources.count()
        for tab in (page, other_tab):
            assert_event_log_complete(tab, deployment)
            assert list(states(tab).values()).count("ready") == ready
        diagram_in_step(page)
        screenshot(
            page, "deployment-in-progress", full_page=False
        )  # status, progress, diagram, log
        live_status = other_tab.locator("#status").inner_text()
        other_tab.reload()
        resume_after = int(other_tab.locator("#deployment").get_attribute("data-last-seq"))
        assert assert_event_log_complete(other_tab, deployment)[-1] == resume_after
        assert list(states(other_tab).values()).count("ready") == ready
        # Written the same live and after a reload.
        assert other_tab.locator("#status").inner_text() == live_status == "Deploying"
    finally:
        worker.resume()

    # The first tab follows to the end without ever reloading.
    wait_until_all(page, "ready", "succeeded")
    progress = page.locator("#progress")
    assert progress.get_attribute("aria-valuenow") == "100"
    assert page.locator("#progress .bar").evaluate("el => el.style.width") == "100%"
    total = deployment.resources.count()
    assert (
        page.locator("#progress-text").inner_text() == f"{total} of {total} resources ready · 100%"
    )
    assert all(pid.strip() for pid in page.locator(f"{ROWS} .pid code").all_inner_texts())
    assert page.evaluate("window.__journeyMarker") == "never reloaded"
    assert navigations == []
    assert page.locator("#stream-state").inner_text() == "finished"
    assert page.locator("#destroy-form").is_visible()
    assert not page.locator("#cancel-form").is_visible()
    deployment.refresh_from_db()
    assert deployment.status == "succeeded", deployment.reason
    assert_event_log_complete(page, deployment)
    diagram_in_step(page)
    assert drawn_states(page) == {"ready"}
    times_match_records(page, deployment)

    # The reloaded tab resumed where it left off: nothing twice, nothing missing.
    wait_until_all(other_tab, "ready", "succeeded")
    seqs = assert_event_log_complete(other_tab, deployment)
    assert seqs[-1] > resume_after  # what came after the reload came over the stream
    screenshot(page, "deployment-finished", full_page=False)  # status, progress, diagram, log
    other_tab.close()
    assert page.evaluate("window.__journeyMarker") == "never reloaded"  # not even afterwards
    assert navigations == []

    # Destroy asks for the design's name, typed.
    page.get_by_label(re.compile("to destroy every resource")).fill("not-the-name")
    page.get_by_role("button", name="Destroy").click()
    expect_text(page, ".messages", "Type the design's name")
    deployment.refresh_from_db()
    assert deployment.status == "succeeded"
    page.get_by_label(re.compile("to destroy every resource")).fill(design.name)
    page.get_by_role("button", name="Destroy").click()
    page.wait_for_url(re.compile(rf"/deployments/{deployment.pk}/$"))
    expect_text(page, ".messages", "Destroying")
    wait_until_all(page, "deleted", "destroyed")
    diagram_in_step(page)
    assert drawn_states(page) == {"deleted"}
    times_match_records(page, deployment, deleting=True)
    assert (
        page.locator("#progress-text").inner_text()
        == f"{total} of {total} resources deleted · 100%"
    )
    assert not page.locator("#destroy-form").is_visible()
    deployment.refresh_from_db()
    assert deployment.status == "destroyed", deployment.reason
    assert set(deployment.resources.values_list("state", flat=True)) == {"deleted"}
    assert_event_log_complete(page, deployment)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_endpoint)
    tag = [{"Name": "tag:gantry:deployment", "Values": [deployment.tag]}]
    assert ec2.describe_vpcs(Filters=tag)["Vpcs"] == []
    assert ec2.describe_subnets(Filters=tag)["Subnets"] == []


def test_another_team_gets_404_for_the_design_and_its_deployment(
    new_page, worker_env, make_user, team, other_team
):
    from deployer import services
    from designer.services import design_create
    from designer.spec import DEFAULT_SPEC

    owner = make_user("owner", team=team)
    design = design_create(team=team, user=owner, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=owner)  # no worker
    make_user("snoop", team=other_team)
    page = new_page()
    login(page, "snoop")
    for url in (
        f"/designs/{design.pk}/",
        f"/designs/{design.pk}/versions/",
        f"/designs/{design.pk}/diagram.svg",
        f"/deployments/{deployment.pk}/",
        f"/deployments/{deployment.pk}/status.json",
        f"/deployments/{deployment.pk}/diagram.svg",
        f"/deployments/{deployment.pk}/events/stream",
    ):
        assert page.goto(url).status == 404, url
    page.goto("/designs/")
    assert design.name not in page.locator("main").inner_text()
    page.goto("/deployments/")
    assert f"/deployments/{deployment.pk}/" not in page.content()

    # The owner, for contrast, opens both.
    mine = new_page()
    login(mine, "owner")
    assert mine.goto(f"/designs/{design.pk}/").status == 200
    assert mine.goto(f"/deployments/{deployment.pk}/").status == 200


def test_an_older_diagram_answer_never_replaces_a_newer_one(new_page, make_user, team, settings):
    """Resource events redraw the deployment's diagram; when two requests are in flight and the
    server answers the newer first, the page keeps the newer picture. The worker is played by
    the test: it changes a record and appends its event, as the engine does."""
    from django.db import transaction

    from deployer import events, services
    from deployer.models import Deployment
    from designer.services import design_create
    from designer.spec import DEFAULT_SPEC

    user = make_user("watcher", team=team)
    design = design_create(team=team, user=user, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=user)
    page = new_page()
    login(page, "watcher")
    held = []

    def hold_the_first(route):
        if not held:
            held.append((route, route.fetch()))  # answered later, after the newer request
        else:
            route.continue_()

    page.route(re.compile(rf"/deployments/{deployment.pk}/diagram\.svg"), hold_the_first)
    page.goto(f"/deployments/{deployment.pk}/")
    page.wait_for_function("document.getElementById('stream-state').textContent === 'live'")

    def worker_sets(state: str) -> None:
        with transaction.atomic():
            dep = Deployment.objects.select_for_update().get(pk=deployment.pk)
            record = dep.resources.get(logical_id="LambdaLogGroup")
            record.state = state
            record.save(update_fields=["state"])
            events.append(
                dep, kind="resource", message=state, logical_id="LambdaLogGroup", state=state
            )
            dep.save(update_fields=["last_event_seq"])

    drawn_state = """() => [...document.querySelectorAll('#deploy-diagram g.node')]
        .filter(g => (g.querySelector('title') || {}).textContent === 'LambdaLogGroup')
        .flatMap(g => [...g.querySelectorAll('text')].map(t => t.textContent))
        .find(t => t.startsWith('state: '))"""
    worker_sets("creating")
    page.wait_for_function("() => document.querySelectorAll('#events li').length >= 2")
    page.wait_for_timeout(1_000)  # the page has asked for the diagram of "creating"
    assert len(held) == 1
    worker_sets("ready")
    page.wait_for_function(f"() => ({drawn_state})() === 'state: ready'")
    route, older = held[0]
    route.fulfill(response=older)  # the "creating" picture arrives last
    page.wait_for_timeout(500)
    assert page.evaluate(drawn_state) == "state: ready"
