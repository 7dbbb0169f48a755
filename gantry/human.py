"""Numbers, durations and times as a person reads them, on every page.

Template filters (``{% load human %}``; registered in ``TEMPLATES`` as a library, so any app's
templates can use them without depending on another app) and the same functions for Python
callers. The page scripts format live values (a ticking elapsed time, a countdown) with
``static/gantry/human.js``, which follows the same rules; a browser test compares the two.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """``0.4 s``, ``12 s``, ``1 min 32 s``, ``2 h 05 min``: tenths only under ten seconds,
    where they still tell something."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{math.floor(seconds * 10) / 10:.1f} s"
    whole = math.floor(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def usd(value: float | None) -> str:
    """Dollars with thousands separators and cents: ``1,234.50``."""
    if value is None:
        return ""
    return f"{value:,.2f}"


@register.filter
def count(value: int | float | None) -> str:
    """A count with thousands separators: ``1,465``."""
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


_STYLES = {
    # (what the page shows before its script runs, in UTC)
    "datetime": "%Y-%m-%d %H:%M",
    "seconds": "%Y-%m-%d %H:%M:%S",
    "time": "%H:%M:%S",
}


@register.simple_tag
def timestamp(value: datetime | None, style: str = "datetime") -> str:
    """A ``<time>`` element: UTC in the markup (the text before the page's script runs, and
    the hover title), turned into the viewer's local time by ``human.js``."""
    if value is None:
        return ""
    utc = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" data-local="{}" title="{} UTC">{} UTC</time>',
        utc.isoformat(),
        style,
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        utc.strftime(_STYLES.get(style, _STYLES["datetime"])),
    )
