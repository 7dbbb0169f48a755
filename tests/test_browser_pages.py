"""The pages a platform engineer reads all day, in a real browser at 1280 and 1920 pixels wide
(Debian's Chromium driven by Playwright, Gantry served by uvicorn as in production).

The deployments here are played by the test: it writes records and appends their events in a
transaction, as the engine's pass does, so each state can be held as long as a check needs
(the engine itself, with a worker and the sandbox, is in test_browser_journey.py).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser import expect_text, login, preview_up_to_date, requires_chromium
from tests.test_human import DURATIONS

pytestmark = [pytest.mark.django_db(transaction=True), requires_chromium]

WIDTHS = pytest.mark.parametrize("width", [1280, 1920], ids=["1280", "1920"])
HEIGHT = {1280: 800, 1920: 1080}

#: The rendered size of every text of a diagram, in CSS pixels: its font size times the scale
#: from the SVG's units to the screen (what a reader sees, whatever zooms it).
TEXT_SIZES = """sel => [...document.querySelectorAll(sel + ' svg text')]
    .filter(t => t.getBoundingClientRect().width > 0)
    .map(t => Math.round(parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a * 100) / 100)"""


def open_page(new_page, make_user, team, username: str, width: int, **options):
    make_user(username, team=team)
    page = new_page(width=width, height=HEIGHT[width], **options)
    login(page, username)
    return page


def drawn(page) -> None:
    """Wait until the diagram's latest view is on the screen: svg-pan-zoom applies a change of
    view at the next animation frame, so two frames later it is drawn."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def level(page, root: str) -> int:
    return int(page.locator(f"{root} [data-zoom-level]").inner_text().split()[0])


def started_deployment(team, user):
    """A saved design and its deployment, queued (no worker takes it)."""
    from deployer import services
    from designer.services import design_create
    from designer.spec import DEFAULT_SPEC

    design = design_create(team=team, user=user, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    return services.deployment_start(design=design, target=target, user=user)


def play(deployment, *, status=None, records=None, event=None):
    """What one engine pass writes: records, the deployment's status and one event."""
    from deployer import events
    from deployer.models import Deployment

    with transaction.atomic():
        dep = Deployment.objects.select_for_update().get(pk=deployment.pk)
        for logical_id, fields in (records or {}).items():
            dep.resources.filter(logical_id=logical_id).update(**fields)
        if status:
            dep.status = status
        if event:
            events.append(dep, **event)
        dep.save()


def play_state(deployment, logical_id: str, state: str, **fields) -> None:
    """A pass that moves one resource to ``state`` and says so."""
    play(
        deployment,
        records={logical_id: {"state": state, **fields}},
        event={
            "kind": "resource",
            "message": f"{logical_id}: {state}",
            "logical_id": logical_id,
            "state": state,
        },
    )


# --- the diagram --------------------------------------------------------------------------


@WIDTHS
def test_the_diagram_is_legible_and_zooms_and_pans_on_both_pages(new_page, make_user, team, width):
    page = open_page(new_page, make_user, team, f"zoomer{width}", width)
    page.goto("/designs/new/")
    preview_up_to_date(page)
    sizes = page.evaluate(TEXT_SIZES, "#preview")
    assert sizes and min(sizes) >= 11, sorted(sizes)[:5]
    root = "#preview [data-diagram]"
    assert level(page, root) >= 100
    start = level(page, root)

    # Buttons.
    page.locator(root).get_by_role("button", name="Zoom in").click()
    assert level(page, root) > start
    page.locator(root).get_by_role("button", name="Zoom out").click()
    page.locator(root).get_by_role("button", name="Zoom out").click()
    assert level(page, root) < start
    page.locator(root).get_by_role("button", name="Actual size").click()
    assert level(page, root) == start

    # The keyboard, on the focused diagram: + zooms, an arrow moves, 0 comes back.
    frame = page.locator("#diagram-frame")
    frame.focus()
    page.keyboard.press("+")
    assert level(page, root) > start
    page.keyboard.press("0")
    assert level(page, root) == start
    where = "() => document.querySelector('#diagram-frame svg text').getBoundingClientRect().x"
    # An arrow moves the picture in either default view: at reading size (a diagram wider than
    # its frame, panned to its top left) and the whole diagram fitted (one that fits, centred;
    # which of the two a width gets depends on the fonts' widths, so both are checked).
    for view in ("0", "F", "0"):
        page.keyboard.press(view)
        # svg-pan-zoom draws a new view at the next animation frame (the level's text is set at
        # once): measure the picture drawn, never the one before it.
        drawn(page)
        before = page.evaluate(where)
        page.keyboard.press("ArrowRight")
        # The picture moves left (the view goes right) at the next animation frame.
        page.wait_for_function(f"x => ({where})() < x - 30", arg=before)
    assert level(page, root) == start

    # The wheel over the diagram zooms it (a touchpad's pinch arrives as a wheel too).
    box = frame.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        f"() => parseInt(document.querySelector('{root} [data-zoom-level]').textContent) > {start}"
    )
    zoomed = level(page, root)

    # A drag moves it.
    drawn(page)
    before = page.evaluate(where)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 120, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    page.wait_for_function(f"x => ({where})() < x - 100", arg=before)

    # A touch screen's pinch: two fingers moving apart zoom in.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 2})
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def fingers(kind, spread):
        cdp.send(
            "Input.dispatchTouchEvent",
            {
                "type": kind,
                "touchPoints": []
                if kind == "touchEnd"
                else [{"x": cx - spread, "y": cy, "id": 1}, {"x": cx + spread, "y": cy, "id": 2}],
            },
        )

    fingers("touchStart", 40)
    for spread in (60, 80, 100, 120):
        fingers("touchMove", spread)
    fingers("touchEnd", 0)
    assert level(page, root) > zoomed * 1.5

    # The chosen view survives the next redraw of the preview.
    chosen = level(page, root)
    page.fill("#id_api_port", "8443")
    expect_text(page, "#preview svg text", "tcp/8443")
    assert level(page, root) == chosen

    # Full screen: the diagram takes the window; Esc gives it back.
    page.locator(root).get_by_role("button", name="Full screen").click()
    box = page.locator("#diagram-frame").bounding_box()
    assert box["width"] >= width - 40 and box["height"] >= HEIGHT[width] * 0.7
    page.keyboard.press("Escape")
    expect(page.locator(root)).not_to_have_class(re.compile("expanded"))
    assert page.locator("#diagram-frame").bounding_box()["height"] < HEIGHT[width] * 0.8

    # The deployment page: the same frame, labels as readable.
    deployment = started_deployment(team, page_user(team, f"zoomer{width}"))
    page.goto(f"/deployments/{deployment.pk}/")
    sizes = page.evaluate(TEXT_SIZES, "#deploy-diagram-view")
    assert sizes and min(sizes) >= 11, sorted(sizes)[:5]
    droot = "#deploy-diagram-view [data-diagram]"
    page.locator(droot).get_by_role("button", name="Zoom in").click()
    assert level(page, droot) > 100


def page_user(team, username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


# --- badges ---------------------------------------------------------------------------------

BADGES = """() => Object.fromEntries([...document.querySelectorAll('#resources tbody tr')]
    .map(tr => [tr.dataset.logicalId, tr.querySelector('.state-badge').textContent]))"""


def drawn_state(page, cluster_or_node: str) -> str | None:
    return page.evaluate(
        """id => {
            const g = [...document.querySelectorAll('#deploy-diagram g.node, #deploy-diagram g.cluster')]
                .find(g => (g.querySelector('title') || {}).textContent === id);
            const t = g && [...g.querySelectorAll('text')].map(t => t.textContent).find(t => t.startsWith('state: '));
            return t || null;
        }""",
        cluster_or_node,
    )


@WIDTHS
def test_badges_never_contradict_the_text_during_a_destroy(new_page, make_user, team, width):
    from pages.states import BY_KEY

    page = open_page(new_page, make_user, team, f"badger{width}", width)
    deployment = started_deployment(team, page_user(team, f"badger{width}"))
    now = timezone.now()
    deployment.resources.update(
        state="ready", started_at=now - timedelta(seconds=30), ready_at=now - timedelta(seconds=20)
    )
    play(
        deployment,
        status="succeeded",
        event={"kind": "status", "message": "All ready.", "state": "succeeded"},
    )
    play(
        deployment,
        status="destroying",
        event={"kind": "status", "message": "Destroying", "state": "destroying"},
    )
    page.goto(f"/deployments/{deployment.pk}/")
    page.wait_for_function("document.getElementById('stream-state').textContent === 'live'")
    # Nothing is deleted yet, and nothing is still "ready" as far as the page says: it waits.
    assert set(page.evaluate(BADGES).values()) == {"Waiting to delete"}
    assert drawn_state(page, "cluster_LambdaSubnet1") == "state: waiting to delete"

    # AWS refuses the subnet's deletion for now: the record stays ready, with a reason and
    # the time of the next look. The badge still says it waits; the countdown runs.
    reason = (
        "DependencyViolation: the subnet has dependencies and cannot be deleted: a deleted "
        "Lambda's network interfaces are still attached for several more minutes"
    )
    play(
        deployment,
        records={
            "LambdaSubnet1": {
                "waiting_reason": reason,
                "next_check_at": timezone.now() + timedelta(seconds=25),
                "delete_started_at": timezone.now(),
            }
        },
        event={
            "kind": "waiting",
            "message": f"Lambda subnet 1 (LambdaSubnet1): {reason} (retry in 25 s)",
            "logical_id": "LambdaSubnet1",
            "state": "ready",
        },
    )
    row = page.locator('#resources tr[data-logical-id="LambdaSubnet1"]')
    expect(row.locator(".reason")).to_have_text(reason)
    expect(row.locator(".state-badge")).to_have_text("Waiting to delete")
    expect(row.locator(".countdown")).to_have_text(re.compile(r"next check in \d+ s"))
    first = int(re.search(r"(\d+) s", row.locator(".countdown").inner_text()).group(1))
    page.wait_for_function(
        "n => parseInt(document.querySelector('tr[data-logical-id=\"LambdaSubnet1\"] .countdown')"
        ".textContent.match(/(\\d+) s/)[1]) < n",
        arg=first,
    )
    assert "retry in" not in row.locator(".why").inner_text()  # no frozen countdown

    # The long reason wraps inside its column; Time stays on the screen.
    time_header = page.locator("#resources thead th").last
    expect(time_header).to_have_text("Time")
    header = time_header.bounding_box()
    assert header["x"] + header["width"] <= width
    assert row.locator(".reason").bounding_box()["height"] > 30  # several lines
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # Its deletion goes on, then others: each badge follows, in the table and the diagram.
    badge = page.locator('tr[data-logical-id="LambdaFunction"] .state-badge')
    play_state(deployment, "LambdaFunction", "deleting", delete_started_at=timezone.now())
    expect(badge).to_have_text("Deleting")
    # The diagram draws the most urgent state of what a node stands for: deleting, here.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#deploy-diagram g.node')].some(g => "
        "(g.querySelector('title')||{}).textContent === 'LambdaFunction' && "
        "[...g.querySelectorAll('text')].some(t => t.textContent === 'state: deleting'))"
    )
    fills = page.evaluate(
        """() => [...document.querySelectorAll('#deploy-diagram g.node')]
            .filter(g => (g.querySelector('title')||{}).textContent === 'LambdaFunction')
            .flatMap(g => [...g.querySelectorAll('text')].map(t => t.getAttribute('fill')))"""
    )
    assert BY_KEY["deleting"].colour.lower() in {f.lower() for f in fills if f}
    play_state(deployment, "LambdaFunction", "deleted", deleted_at=timezone.now())
    expect(badge).to_have_text("Deleted")
    # Each badge wears its own colours, and the diagram draws the same state in the same colour.
    colours = page.evaluate(
        """() => [...document.querySelectorAll('#resources .state-badge')].map(b => [b.dataset.state,
              getComputedStyle(b).color, getComputedStyle(b).backgroundColor])"""
    )

    def rgb(hex_colour: str) -> str:
        r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return f"rgb({r}, {g}, {b})"

    for key, fg, bg in colours:
        assert (fg, bg) == (rgb(BY_KEY[key].colour), rgb(BY_KEY[key].background)), key
    # The legend names every badge the page can show.
    legend = page.locator(".state-legend .state-badge").all_inner_texts()
    assert "Waiting to delete" in legend and "Drifted" in legend and "Replacing" in legend


# --- after a reload -------------------------------------------------------------------------


@WIDTHS
def test_after_a_reload_the_page_says_what_it_said_live(new_page, make_user, team, width):
    from deployer.models import DeploymentEvent

    page = open_page(
        new_page, make_user, team, f"reloader{width}", width, timezone_id="Asia/Kolkata"
    )
    deployment = started_deployment(team, page_user(team, f"reloader{width}"))
    page.goto(f"/deployments/{deployment.pk}/")
    page.wait_for_function("document.getElementById('stream-state').textContent === 'live'")
    expect(page.locator("#status")).to_have_text("Queued")

    play(
        deployment,
        status="deploying",
        event={"kind": "status", "message": "Deployment started", "state": "deploying"},
    )
    expect(page.locator("#status")).to_have_text("Deploying")
    # One pass created the VPC and saw it ready: its events share that pass's time, but its
    # record says how long AWS took.
    now = timezone.now()
    play_state(
        deployment,
        "Vpc",
        "ready",
        physical_id="vpc-1",
        started_at=now - timedelta(seconds=92),
        ready_at=now,
    )
    vpc = page.locator('#resources tr[data-logical-id="Vpc"]')
    expect(vpc.locator(".state-badge")).to_have_text("Ready")
    expect(vpc.locator(".elapsed")).to_have_text("1 min 32 s")
    live_text = page.locator("#progress-text").inner_text()

    page.reload()
    expect(page.locator("#status")).to_have_text("Deploying")
    expect(vpc.locator(".elapsed")).to_have_text("1 min 32 s")
    expect(vpc.locator(".state-badge")).to_have_text("Ready")
    assert page.locator("#progress-text").inner_text() == live_text

    # Event times are the viewer's local time (here UTC+05:30), the UTC time on hover.
    event = DeploymentEvent.objects.get(deployment=deployment, seq=deployment.events.count())
    local = (event.at + timedelta(hours=5, minutes=30)).strftime("%H:%M:%S")
    shown = page.locator(f'#events li[data-seq="{event.seq}"] time')
    expect(shown).to_have_text(local)
    assert f"{event.at:%Y-%m-%d %H:%M:%S} UTC" in shown.get_attribute("title")
    expect(page.locator("[data-time-zone]")).to_have_text(re.compile(r"^Asia/(Kolkata|Calcutta)$"))

    # The page's script formats durations as the server does.
    said = page.evaluate(
        "xs => xs.map(x => window.GantryHuman.duration(x))", [s for s, _ in DURATIONS]
    )
    assert said == [text for _, text in DURATIONS]


# --- the design form ------------------------------------------------------------------------


@WIDTHS
def test_errors_are_in_the_forms_words_beside_the_choice_just_made(
    new_page, make_user, team, width
):
    page = open_page(new_page, make_user, team, f"worder{width}", width)
    page.goto("/designs/new/")
    preview_up_to_date(page)

    page.fill("#id_api_subnet_cidrs_0", "10.0.1.0/24")
    expect(page.locator("#err-api_subnet_cidrs-0")).to_contain_text(
        "overlaps the first Lambda subnet (10.0.1.0/24)"
    )
    page.fill("#id_api_subnet_cidrs_0", "10.0.2.0/24")
    expect(page.locator("#err-api_subnet_cidrs-0")).to_have_text("")

    # A NAT gateway per AZ with two Lambda subnets and one public subnet: said beside the
    # choice just made and at the public subnets.
    page.get_by_role("button", name="Add lambda subnet in another AZ").click()
    page.fill("#id_lambda_subnet_cidrs_1", "10.0.11.0/24")
    page.get_by_role("radio", name=re.compile("^One gateway per AZ")).check()
    for where in ("#err-nat", "#err-public_subnet_cidrs"):
        expect(page.locator(where)).to_contain_text(
            "NAT: one gateway per AZ puts a NAT gateway in each AZ"
        )
        expect(page.locator(where)).to_contain_text("or choose NAT: one gateway")
    expect(page.locator("#error-summary")).to_have_text("Fix 1 problem to save this design.")
    page.get_by_role("radio", name=re.compile("^One gateway internet")).check()
    expect(page.locator("#err-nat")).to_have_text("")

    # An internal ALB with one API subnet: beside the API choice and the API subnets.
    page.get_by_role("radio", name=re.compile("^Internal ALB")).check()
    for where in ("#err-api_kind", "#err-api_subnet_cidrs"):
        expect(page.locator(where)).to_contain_text("or choose Internal API: one EC2 instance")
    page.get_by_role("radio", name=re.compile("^One EC2 instance")).check()

    # A tag key with a character AWS refuses, named; sixty rows of one key, one message.
    page.get_by_role("button", name="Add a tag").click()
    page.locator('input[name="tag_key"]').last.fill("cost#centre")
    expect(page.locator("#err-tags-0")).to_contain_text("'#' is not allowed")
    page.evaluate(
        """() => {
            const add = document.querySelector('[data-add-row="tags"]');
            for (let i = 0; i < 59; i++) add.click();
            document.querySelectorAll('input[name="tag_key"]').forEach(el => { el.value = 'env'; });
            document.querySelectorAll('input[name="tag_value"]').forEach((el, i) => { el.value = 'v' + i; });
            document.querySelector('input[name="tag_key"]').dispatchEvent(new Event('input', {bubbles: true}));
        }"""
    )
    expect(page.locator("#error-summary")).to_have_text("Fix 1 problem to save this design.")
    messages = page.locator('fieldset[data-list="tags"] .field-error:not(:empty)')
    expect(messages).to_have_count(1)
    expect(messages).to_have_text("tag 'env' is given in 60 rows; keep one row per key")
    page.evaluate(
        "() => document.querySelectorAll('fieldset[data-list=\"tags\"] li.row').forEach(li => li.remove())"
    )

    # Arabic-Indic digits are not a port; a capped cost assumption says so; costs read as money.
    page.fill("#id_api_port", "٤٤٣")
    expect(page.locator("#err-api_port")).to_have_text(
        "'٤٤٣' is not a port number; give a whole number from 1 to 65535, e.g. 443"
    )
    page.fill("#id_api_port", "443")
    page.locator("details.assumptions summary").click()
    page.fill("#id_nat_gb_per_month", "1e308")
    expect(page.locator("#note-nat_gb_per_month")).to_have_text(
        "1e308 is outside what the estimate allows; it uses the largest value, 1,000,000"
    )
    preview_up_to_date(page)
    nat_cost = page.locator('[data-cost-item="NatGateway1"] td.num').inner_text()
    assert re.fullmatch(r"\d{1,3}(,\d{3})+\.\d{2}", nat_cost), nat_cost


# --- Gantry's own 404 -------------------------------------------------------------------------


@WIDTHS
@pytest.mark.debug_server
def test_a_missing_or_forbidden_link_is_gantrys_404_with_debug_on(
    new_page, make_user, team, other_team, width
):
    owner = make_user(f"owner{width}", team=other_team)
    deployment = started_deployment(other_team, owner)
    page = open_page(new_page, make_user, team, f"lost{width}", width)
    for url in (
        "/designs/no/such/page/",
        f"/deployments/{deployment.pk}/",
        f"/designs/{deployment.design.pk}/",
    ):
        response = page.goto(url)
        assert response.status == 404, url
        expect(page.locator("h1")).to_have_text("Not found")
        text = page.locator("body").inner_text()
        assert "URLconf" not in text and "api/schema" not in text and "Traceback" not in text
        expect(
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Designs")
        ).to_be_visible()
