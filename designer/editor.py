"""The design editor's page data: the form's rows and choices, errors in the form's words, and
the preview, for a spec that may be invalid or oddly typed.

The design page itself (``pages/design.py``) adds what other apps know about the design (the
Deploy bar); this module knows only the designer.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from designer import selectors
from designer.cost import Assumptions
from designer.preview import design_preview
from designer.regions import REGION_AZ_LETTERS, REGIONS
from designer.spec import DEFAULT_SPEC, Issue
from designer.wording import ASSUMPTION_LABELS, CHOICES, LISTS, SCALARS, page_issues
from teams.selectors import team_list


def assumption_names() -> list[str]:
    return [f.name for f in fields(Assumptions)]


def _messages_by(
    shown: list[dict[str, Any]],
) -> tuple[dict[str, list[str]], dict[tuple[str, int], list[str]]]:
    """Page messages by field (and by list row), each also beside the fields it names."""
    flat: dict[str, list[str]] = {}
    indexed: dict[tuple[str, int], list[str]] = {}
    for issue in shown:
        if issue.get("index") is None:
            flat.setdefault(issue["field"], []).append(issue["message"])
        else:
            indexed.setdefault((issue["field"], issue["index"]), []).append(issue["message"])
        for other in issue.get("also", []):
            flat.setdefault(other, []).append(issue["message"])
    return flat, indexed


def editor_context(
    *,
    user: AbstractBaseUser,
    spec: dict[str, Any],
    errors: list[Issue],
    design=None,
    assumptions: dict[str, str] | None = None,
    selected_team: int | None = None,
    loaded_version: int | None = None,
) -> dict[str, Any]:
    """Everything the editor template shows of the designer's own data."""
    shown = page_issues(errors)
    flat, indexed = _messages_by(shown)
    region = spec.get("region") if spec.get("region") in REGION_AZ_LETTERS else "us-east-1"
    letters = REGION_AZ_LETTERS[region]

    def text(value: Any) -> str:
        return "" if value is None else value if isinstance(value, str) else json.dumps(value)

    lists = []
    for name, label, short, help_text, _example in LISTS:
        values = spec.get(name) if isinstance(spec.get(name), list) else []
        if not values and name != "public_subnet_cidrs":
            values = [""]
        rows = [
            {
                "value": text(v),
                "errors": indexed.get((name, i), []),
                "az": f"{region}{letters[i]}" if i < len(letters) else f"(no AZ {i + 1})",
            }
            for i, v in enumerate(values)
        ]
        lists.append(
            {
                "name": name,
                "label": label,
                "short": short,
                "help": help_text,
                "rows": rows,
                "errors": flat.get(name, []),
            }
        )
    tags = spec.get("tags") if isinstance(spec.get("tags"), dict) else {}
    teams = list(team_list(user=user)) if design is None else []
    preview = design_preview(spec_data=spec, assumptions_data=assumptions)
    assumption_values = assumptions or {}
    defaults = Assumptions()
    return {
        "design": design,
        "teams": teams,
        "selected_team": selected_team or (teams[0].pk if teams else None),
        "scalars": [
            {
                "name": n,
                "label": lbl,
                "help": h,
                "value": text(spec.get(n)),
                "errors": flat.get(n, []),
            }
            for n, lbl, h in SCALARS
        ],
        "lists": lists,
        "choices": [
            {
                "name": n,
                "label": lbl,
                "value": spec.get(n),
                "errors": flat.get(n, []),
                "options": [{"value": v, "title": t, "help": h} for v, t, h in opts],
            }
            for n, lbl, _short, opts in CHOICES
        ],
        "tags": [{"key": k, "value": text(v)} for k, v in tags.items()],
        "tag_errors": flat.get("tags", []),
        "errors": flat,
        "error_count": len(errors),
        "save_errors": shown,
        "regions": REGIONS,
        "region_azs": REGION_AZ_LETTERS,
        "warnings": preview["warnings"],
        "preview_html": preview["html"],
        "assumptions": [
            {
                "name": n,
                "label": ASSUMPTION_LABELS.get(n, n.replace("_", " ")),
                "value": assumption_values.get(n, getattr(defaults, n)),
            }
            for n in assumption_names()
        ],
        "assumption_errors": preview["assumption_errors"],
        "assumption_notes": preview["assumption_notes"],
        "loaded_version": loaded_version,
    }


def suggest_name(user: AbstractBaseUser) -> str:
    """The default design name, numbered past the names the user's teams already use."""
    taken = set(selectors.design_list(user=user).values_list("name", flat=True))
    base = DEFAULT_SPEC["name"]
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"
