"""What the browser tests share: Debian's Chromium, logging in, waiting on the page, keyboard
focus, and the README's screenshots. The fixtures (the uvicorn server, the browser, pages) are in
``tests/conftest.py``.

Set GANTRY_SCREENSHOTS=docs to rewrite the screenshots under docs/ the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

#: Debian's build (apt-get install chromium); Playwright never downloads a browser here.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
requires_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Chromium is not installed (apt-get install chromium); CI always installs it",
)


def login(page, username: str, password: str | None = None) -> None:
    """Log in through the form; ``make_user`` gives every user the password pw-<username>."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password or f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/designs/$"))


def expect_text(page, selector: str, text: str) -> None:
    """Wait until some element matching ``selector`` contains ``text``."""
    page.wait_for_function(
        "([sel, text]) => [...document.querySelectorAll(sel)].some(el => el.textContent.includes(text))",
        arg=[selector, text],
    )


def preview_up_to_date(page) -> None:
    page.wait_for_function(
        "document.getElementById('preview-status').textContent.includes('up to date')"
    )


def cost_total(page) -> float:
    return float(page.locator("[data-cost-total]").inner_text().replace(",", ""))


def diagram_texts(page, selector: str = "#preview svg") -> list[str]:
    """The words drawn in a diagram (node and edge labels), entities decoded."""
    return page.locator(selector).first.evaluate(
        "svg => [...svg.querySelectorAll('text')].map(t => t.textContent.trim())"
    )


def focus_state(page) -> dict:
    """What has the keyboard focus, and whether its focus is drawn (an outline of 2px or more,
    or a box shadow, while it matches :focus-visible)."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const cs = getComputedStyle(el);
            const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2;
            return {
                tag: el.tagName.toLowerCase(),
                id: el.id,
                name: el.getAttribute('name') || '',
                text: (el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 60),
                focusVisible: el.matches(':focus-visible'),
                visible: outline || cs.boxShadow !== 'none',
            };
        }"""
    )


def tab_to(page, selector: str, *, limit: int = 80) -> list[dict]:
    """Press Tab until the element matching ``selector`` has the focus; return every stop on the
    way (including the last), so a test can check each one showed its focus."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stops.append(focus_state(page))
        if page.evaluate("sel => document.activeElement.matches(sel)", selector):
            return stops
    raise AssertionError(f"{selector} never got the focus in {limit} Tab presses: {stops}")


def screenshot(page, name: str, *, full_page: bool = True) -> None:
    """Write ``<GANTRY_SCREENSHOTS>/<name>.png`` when the variable is set (the README's images)."""
    out = os.environ.get("GANTRY_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(Path(out) / f"{name}.png"), full_page=full_page, animations="disabled"
        )
