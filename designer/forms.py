"""The design page's HTML form, turned into a spec document.

The page posts plain form fields (a row per AZ, so lists arrive as repeated fields); this module
only reshapes them into the spec's JSON shape. Every rule stays in :func:`validate_spec`.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import QueryDict

from designer.spec import Issue

LIST_FIELDS = ("public_subnet_cidrs", "lambda_subnet_cidrs", "api_subnet_cidrs")
SCALAR_FIELDS = ("name", "region", "vpc_cidr", "nat", "api_kind")
# ASCII digits only: ``\d`` would take Arabic-Indic (٤٤٣) or full-width digits, which int()
# reads as 443; the validator refuses them with the usual port message instead.
_DIGITS = re.compile(r"-?[0-9]{1,9}")


def spec_from_form(data: QueryDict) -> tuple[dict[str, Any], list[Issue]]:
    """Reshape posted form fields into a spec dict, plus any problems only the form can have.

    Blank subnet rows are kept (the validator says "remove the row or fill it in" at the right
    index); the port is passed as a number when it is one and as the typed text otherwise, so
    the validator's message quotes what the user typed.
    """
    spec: dict[str, Any] = {}
    problems: list[Issue] = []
    for key in SCALAR_FIELDS:
        if key in data:
            spec[key] = data.get(key, "").strip()
    for key in LIST_FIELDS:
        values = [v.strip() for v in data.getlist(key)]
        # A lone blank public row with NAT off means "no public subnets".
        if key == "public_subnet_cidrs" and not any(values):
            values = []
        spec[key] = values
    port = data.get("api_port", "").strip()
    if port:
        spec["api_port"] = int(port) if _DIGITS.fullmatch(port) else port
    tags: dict[str, str] = {}
    repeats: dict[str, int] = {}
    for key, value in zip(data.getlist("tag_key"), data.getlist("tag_value"), strict=False):
        key, value = key.strip(), value.strip()
        if not key and not value:
            continue
        if key in tags:
            repeats[key] = repeats.get(key, 1) + 1
            continue
        tags[key] = value
    # One message per repeated key, however many rows repeat it.
    for key, rows in repeats.items():
        problems.append(
            Issue(
                "tags",
                f"tag {key!r} is given in {rows} rows; keep one row per key",
                key=key,
                code="tag_repeated",
                params=(("tag", key), ("rows", rows)),
            )
        )
    spec["tags"] = tags
    return spec, problems


def assumptions_from_form(data: QueryDict, names: list[str]) -> dict[str, str]:
    """The cost assumptions the user typed (validated by cost.Assumptions.from_mapping)."""
    return {name: data[name].strip() for name in names if data.get(name, "").strip()}
