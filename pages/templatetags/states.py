"""Badges in templates: their colours as CSS and a legend, from ``pages/states.py``."""

from __future__ import annotations

import json

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from pages.states import CHANGE_SIGNS, CHANGE_STATES, DISPLAY_STATES, badge_css

register = template.Library()


@register.simple_tag
def state_styles() -> SafeString:
    """A ``<style>`` with every badge's colours (the same table the diagram is drawn with)."""
    # The CSS is built from constants in pages/states.py, never from user input.
    return mark_safe(f"<style>{badge_css()}</style>")  # noqa: S308


@register.simple_tag
def state_legend() -> SafeString:
    """One list item per badge, in the order of urgency the diagram uses."""
    return format_html_join(
        "",
        '<li><span class="state-badge state-{}" data-state="{}">{}</span></li>',
        ((s.key, s.key, s.label) for s in DISPLAY_STATES),
    )


@register.simple_tag
def change_legend() -> SafeString:
    """One list item per change action, most drastic first, with its sign."""
    return format_html_join(
        "",
        '<li><span class="state-badge state-{}" data-change="{}">{} {}</span></li>',
        ((s.key, s.key, CHANGE_SIGNS[s.key], s.label) for s in CHANGE_STATES),
    )


@register.filter
def json_text(value: object) -> str:
    """A drift difference's value as one line: text as itself, anything else as JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)
