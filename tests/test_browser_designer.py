"""The design page's accessibility in a real browser (Debian's Chromium driven by Playwright,
Gantry served by uvicorn): every control labelled, the whole form usable from the keyboard with
its focus always visible, and errors announced next to their field.

The live preview, inline errors, save and deploy as a new user takes them are in
``test_browser_journey.py``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import (
    focus_state,
    login,
    preview_up_to_date,
    requires_chromium,
    tab_to,
)

pytestmark = [pytest.mark.django_db(transaction=True), requires_chromium]


def new_design_page(new_page, make_user, team, username: str, *, wait: bool = True):
    """A fresh user of ``team``, logged in on /designs/new/ (its first preview drawn)."""
    make_user(username, team=team)
    page = new_page()
    login(page, username)
    page.goto("/designs/new/")
    if wait:
        preview_up_to_date(page)
    return page


def test_every_control_is_labelled_and_every_error_region_announced(new_page, make_user, team):
    make_user("reader", team=team)
    page = new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("pw-reader")
    page.get_by_role("button", name="Log in").click()
    page.goto("/designs/new/")
    # Rows added in the page come from templates: they must be labelled too.
    for name in ("Add public subnet in another AZ", "Add lambda subnet in another AZ", "Add a tag"):
        page.get_by_role("button", name=name).click()
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#design-form input:not([type=hidden]), #design-form select')]
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
              .map(el => el.name || el.id)"""
    )
    assert unlabelled == []
    nameless_buttons = page.evaluate(
        """() => [...document.querySelectorAll('#design-form button, #design-form summary')]
              .filter(el => !(el.getAttribute('aria-label') || el.textContent.trim()))
              .map(el => el.outerHTML)"""
    )
    assert nameless_buttons == []
    # Every error slot is a live region, and every control that can be wrong points at its own.
    silent = page.evaluate(
        """() => [...document.querySelectorAll('#design-form .field-error, #error-summary')]
              .filter(el => el.getAttribute('role') !== 'alert' && !el.getAttribute('aria-live'))
              .map(el => el.id)"""
    )
    assert silent == []
    undescribed = page.evaluate(
        """() => [...document.querySelectorAll('#design-form .field-error[id]')]
              .filter(err => !document.querySelector(`[aria-describedby~="${err.id}"]`))
              .map(err => err.id)"""
    )
    assert undescribed == []
    assert page.locator("#preview-status").get_attribute("aria-live") == "polite"


def test_a_design_is_made_and_saved_with_the_keyboard_alone(new_page, make_user, team):
    """Tab, typing, Space, Enter (and the arrow keys inside a radio group, as in any form): no
    clicks. Every stop of the focus on the way is drawn."""
    from designer.models import Design

    make_user("typist", team=team)
    page = new_page()
    keys = page.keyboard
    stops: list[dict] = []

    page.goto("/login/")
    assert focus_state(page)["id"] == "id_username"  # the login form starts there
    keys.type("typist")
    stops += tab_to(page, "#id_password")
    keys.type("pw-typist")
    keys.press("Enter")
    page.wait_for_url(re.compile(r"/designs/$"))

    # The first Tab reaches the skip link, and shows it.
    keys.press("Tab")
    assert focus_state(page)["text"] == "Skip to content"
    box = page.locator(".skip").bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0
    stops += tab_to(page, "nav a[href$='/designs/new/']")
    keys.press("Enter")
    page.wait_for_url(re.compile(r"/designs/new/$"))
    preview_up_to_date(page)

    stops += tab_to(page, "#id_name")
    keys.press("Control+A")
    keys.type("keyboard-made")

    # A CIDR with host bits: the error is next to the field, tied to it, and announced.
    stops += tab_to(page, "#id_vpc_cidr")
    keys.press("Control+A")
    keys.type("10.0.0.1/16")
    vpc = page.locator("#id_vpc_cidr[aria-invalid='true']")
    vpc.wait_for()
    error = page.locator("#err-vpc_cidr")
    assert "did you mean 10.0.0.0/16" in error.inner_text()
    assert "err-vpc_cidr" in vpc.get_attribute("aria-describedby").split()
    assert error.get_attribute("role") == "alert"
    assert error.evaluate(
        "el => el.closest('.field') === document.getElementById('id_vpc_cidr').closest('.field')"
    )
    assert page.locator("#error-summary").is_visible()
    assert page.locator("#save-button").is_disabled()
    assert focus_state(page)["id"] == "id_vpc_cidr"  # the error does not steal the focus
    keys.press("Control+A")
    keys.type("10.0.0.0/16")
    page.wait_for_function("!document.getElementById('id_vpc_cidr').hasAttribute('aria-invalid')")
    assert page.locator("#err-vpc_cidr").inner_text() == ""

    # A second Lambda subnet: Space on "Add", and the focus is in the new row.
    stops += tab_to(page, "[data-add-row='lambda_subnet_cidrs']")
    keys.press("Space")
    assert focus_state(page)["id"] == "id_lambda_subnet_cidrs_1"
    assert "us-east-1b" in page.locator("label[for='id_lambda_subnet_cidrs_1']").inner_text()
    keys.type("10.0.4.0/24")

    # No NAT: into the radio group with Tab (it lands on the checked option), then an arrow.
    stops += tab_to(page, "input[name='nat']")
    assert focus_state(page)["name"] == "nat"
    keys.press("ArrowUp")
    assert page.get_by_role("radio", name=re.compile("^None no internet")).is_checked()

    # The cost assumptions open with Space.
    stops += tab_to(page, "details.assumptions summary")
    keys.press("Space")
    assert page.locator("details.assumptions").get_attribute("open") is not None

    preview_up_to_date(page)
    page.wait_for_function("!document.getElementById('save-button').disabled")
    stops += tab_to(page, "#save-button")
    keys.press("Enter")
    page.wait_for_url(re.compile(r"/designs/\d+/$"))
    assert "Saved keyboard-made" in page.locator(".messages").inner_text()

    design = Design.objects.get(team=team)
    assert design.name == "keyboard-made"
    assert design.spec["vpc_cidr"] == "10.0.0.0/16"
    assert design.spec["nat"] == "none"
    assert design.spec["lambda_subnet_cidrs"] == ["10.0.1.0/24", "10.0.4.0/24"]

    hidden_focus = [s for s in stops if not (s["focusVisible"] and s["visible"])]
    assert hidden_focus == [], hidden_focus
    assert len(stops) > 20  # the walk went through the whole form, not a shortcut


def test_a_refused_save_keeps_its_error_beside_the_field(new_page, make_user, team):
    """A save the server refuses (the team already has that name) keeps its error beside the
    field after the page's own preview request, until the user changes something."""
    from designer.services import design_create
    from designer.spec import DEFAULT_SPEC

    user = make_user("refused", team=team)
    design_create(team=team, user=user, spec_data=DEFAULT_SPEC)
    page = new_page()
    login(page, "refused")
    page.goto("/designs/new/")
    preview_up_to_date(page)
    page.fill("#id_name", DEFAULT_SPEC["name"])
    preview_up_to_date(page)
    page.click("#save-button")
    page.wait_for_url(re.compile(r"/designs/new/$"))
    preview_up_to_date(page)
    assert "already exists in this team" in page.locator("#err-name").inner_text()
    assert page.locator("#id_name").get_attribute("aria-invalid") == "true"
    assert page.locator("#error-summary").is_visible()
    assert page.locator("#save-button").is_disabled()
    # The refused save kept nothing of what is in the form: leaving asks first.
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.get_by_role("link", name="Designs", exact=True).click()
    page.wait_for_timeout(300)
    assert asked == ["beforeunload"]
    assert page.url.endswith("/designs/new/")

    page.fill("#id_name", "another-name")
    page.wait_for_function("!document.getElementById('save-button').disabled")
    assert page.locator("#err-name").inner_text() == ""


def test_a_double_click_on_save_saves_once(new_page, make_user, team):
    from designer.models import Design

    page = new_design_page(new_page, make_user, team, "clicker", wait=False)
    page.fill("#id_name", "clicked-twice")
    preview_up_to_date(page)
    # The second click comes while the first post is on its way, as a hurried user's does.
    page.evaluate(
        """() => { const save = document.getElementById('save-button');
                   save.click(); setTimeout(() => save.click(), 30); }"""
    )
    # One post, so the page shows its answer (not "this name already exists" from a second).
    expect(page).to_have_url(re.compile(r"/designs/\d+/$"))
    assert "Saved clicked-twice as version 1." in page.locator(".messages").inner_text()
    assert Design.objects.filter(team=team, name="clicked-twice").count() == 1


def test_a_long_unbroken_error_stays_inside_the_form(new_page, make_user, team):
    page = new_design_page(new_page, make_user, team, "verbose")
    page.fill("#id_name", "a" * 300)
    error = page.locator("#err-name:not(:empty)")
    error.wait_for()
    assert error.evaluate("el => el.scrollWidth <= el.clientWidth"), "the error spills out"


def test_a_tag_error_sits_beside_the_row_with_that_key(new_page, make_user, team):
    page = new_design_page(new_page, make_user, team, "tagger")
    for key, value in (("team", "payments"), ("aws:owner", "me")):
        page.get_by_role("button", name="Add a tag").click()
        page.locator('input[name="tag_key"]').last.fill(key)
        page.locator('input[name="tag_value"]').last.fill(value)
    second = page.locator("#err-tags-1:not(:empty)")
    second.wait_for()
    assert "reserved for AWS" in second.inner_text()
    assert page.locator("#err-tags-0").inner_text() == ""
    assert page.locator("#err-tags").inner_text() == ""  # not in one paragraph above the rows
    assert page.locator("#id_tag_key_1").get_attribute("aria-invalid") == "true"
    assert page.locator("#id_tag_key_0").get_attribute("aria-invalid") is None


def test_leaving_with_unsaved_edits_asks_first(new_page, make_user, team):
    page = new_design_page(new_page, make_user, team, "leaver")
    asked: list[str] = []

    def stay(dialog):
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.fill("#id_name", "half-done")
    preview_up_to_date(page)
    page.get_by_role("link", name="Designs", exact=True).click()
    page.wait_for_timeout(300)
    assert asked == ["beforeunload"]
    assert page.url.endswith("/designs/new/")
    assert page.locator("#id_name").input_value() == "half-done"

    page.click("#save-button")  # saving is not leaving: no question
    expect(page).to_have_url(re.compile(r"/designs/\d+/$"))
    page.get_by_role("link", name="Designs", exact=True).click()  # nothing unsaved now
    expect(page).to_have_url(re.compile(r"/designs/$"))
    assert asked == ["beforeunload"]
