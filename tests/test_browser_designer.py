"""The design page in a real browser (Debian's Chromium driven by Playwright), as a new user
takes it: the live preview, inline errors and the save, without a page reload.

Set GANTRY_SCREENSHOTS=docs to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason="Chromium is not installed (apt-get install chromium); CI always installs it",
    ),
]
# Playwright's sync API runs an event loop in this thread; the ORM calls below happen before and
# after browser steps, never concurrently, so Django's async-safety guard can be relaxed here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        viewport={"width": 1500, "height": 1100}, base_url=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def login(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/designs/$"))


def cost_total(page) -> float:
    return float(page.locator("[data-cost-total]").inner_text().replace(",", ""))


def test_design_page_live_preview_errors_and_save(page, make_user, team):
    from designer.models import Design

    make_user("newcomer", team=team)
    login(page, "newcomer", "pw-newcomer")
    page.goto("/designs/new/")
    svg = page.locator("#preview svg")
    assert svg.count() == 1
    expect_text(page, "[data-route-table='ApiRouteTable']", "10.0.2.0/24")
    page.wait_for_function(
        "document.getElementById('preview-status').textContent.includes('up to date')"
    )

    lambda_row = page.locator("#id_lambda_subnet_cidrs_0")
    lambda_row.fill("10.0.2.0/24")  # overlaps the API subnet
    error = page.locator(".field-error[data-error-for$='subnet_cidrs']:not(:empty)").first
    error.wait_for()
    assert "overlap" in error.inner_text()
    assert page.locator("#save-button").is_disabled()
    assert (
        lambda_row.get_attribute("aria-invalid") == "true"
        or page.locator("#id_api_subnet_cidrs_0[aria-invalid='true']").count()
    )

    lambda_row.fill("10.0.3.0/24")
    page.wait_for_function("!document.getElementById('save-button').disabled")
    expect_text(page, "[data-route-table^='LambdaRouteTable']", "10.0.3.0/24")
    assert page.locator(".field-error:not(:empty)").count() == 0

    with_nat = cost_total(page)
    assert "NAT" in svg.inner_html()
    page.get_by_role("radio", name=re.compile("No NAT")).check()
    page.wait_for_function(
        f"parseFloat(document.querySelector('[data-cost-total]').textContent) < {with_nat}"
    )
    assert "NatGateway" not in page.locator("#preview svg").inner_html()
    assert cost_total(page) < with_nat

    page.get_by_role("button", name="Add lambda subnet in another AZ").click()
    new_row = page.locator("#id_lambda_subnet_cidrs_1")
    assert new_row.evaluate("el => el === document.activeElement")  # focus follows the new row
    assert "us-east-1b" in page.locator("label[for='id_lambda_subnet_cidrs_1']").inner_text()
    new_row.fill("10.0.4.0/24")
    page.wait_for_function(
        "document.getElementById('preview-status').textContent.includes('up to date')"
    )
    expect_text(page, "[data-route-table^='LambdaRouteTable']", "10.0.4.0/24")

    if os.environ.get("GANTRY_SCREENSHOTS"):
        out = Path(os.environ["GANTRY_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / "design-page.png"), full_page=True)

    page.get_by_role("button", name="Save design").click()
    page.wait_for_url(re.compile(r"/designs/\d+/$"))
    assert "Saved" in page.locator(".messages").inner_text()
    design = Design.objects.get(team=team)
    assert design.spec["nat"] == "none"
    assert design.spec["lambda_subnet_cidrs"] == ["10.0.3.0/24", "10.0.4.0/24"]


def test_the_form_is_labelled_for_assistive_technology(page, make_user, team):
    make_user("reader", team=team)
    login(page, "reader", "pw-reader")
    page.goto("/designs/new/")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#design-form input:not([type=hidden]), #design-form select')]
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
              .map(el => el.name)"""
    )
    assert unlabelled == []


def test_another_team_cannot_open_the_design(page, make_user, team, other_team):
    from designer.services import design_create
    from designer.spec import DEFAULT_SPEC

    owner = make_user("owner", team=team)
    design = design_create(team=team, user=owner, spec_data=DEFAULT_SPEC)
    make_user("snoop", team=other_team)
    login(page, "snoop", "pw-snoop")
    response = page.goto(f"/designs/{design.pk}/")
    assert response.status == 404


def expect_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([sel, text]) => [...document.querySelectorAll(sel)].some(el => el.textContent.includes(text))",
        arg=[selector, text],
    )
