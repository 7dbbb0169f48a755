"""The design form's own words: its labels, and every validation message said the way the page
shows the design.

:func:`~designer.spec.validate_spec` is the one validator. Its messages name the spec's fields
(``overlaps lambda_subnet_cidrs[0]``, ``use nat 'single'``), which is what the API and the CLI
users write; the page's users see rows and choices instead ("the first Lambda subnet", "NAT:
one gateway"). Each issue carries a ``code`` and the values of its rule (``params``), and
:func:`page_issue` says the same thing in the form's words. An issue without a code here keeps
its message, which names no spec field by construction (tests/test_wording.py walks every rule).
"""

from __future__ import annotations

from typing import Any

from designer.spec import Issue

SCALARS = [
    (
        "name",
        "Name",
        "Lowercase letters, digits and hyphens, 3 to 40 characters, unique in the team.",
    ),
    ("region", "Region", "Subnets go to this region's Availability Zones in order."),
    ("vpc_cidr", "VPC CIDR", "An IPv4 range from /16 to /28, e.g. 10.0.0.0/16."),
    ("api_port", "API port", "The port the internal API listens on (1 to 65535)."),
]
#: (field, legend, the word for one row, help, an example CIDR for the row).
LISTS = [
    (
        "public_subnet_cidrs",
        "Public subnets (for NAT gateways)",
        "Public",
        "One per AZ; they hold only the NAT gateways. Not needed when NAT is off.",
        "10.0.0.0/24",
    ),
    (
        "lambda_subnet_cidrs",
        "Lambda subnets (private)",
        "Lambda",
        "One per AZ; the Lambda's network interfaces live here.",
        "10.0.1.0/24",
    ),
    (
        "api_subnet_cidrs",
        "API subnets (private)",
        "API",
        "One per AZ; an ALB needs at least two.",
        "10.0.2.0/24",
    ),
]
#: (field, legend, short name used in messages, options: (value, title, help)).
CHOICES = [
    (
        "nat",
        "NAT: the Lambda's internet access",
        "NAT",
        [
            ("none", "None", "no internet; Secrets Manager through a VPC endpoint"),
            ("single", "One gateway", "internet through one AZ"),
            ("per_az", "One gateway per AZ", "survives the loss of an AZ; costs the most"),
        ],
    ),
    (
        "api_kind",
        "Internal API",
        "Internal API",
        [
            ("ec2", "One EC2 instance", "t3.micro in the first API subnet"),
            ("alb", "Internal ALB + Auto Scaling group", "spans the API subnets"),
        ],
    ),
]
ASSUMPTION_LABELS = {
    "nat_gb_per_month": "GB through the NAT per month",
    "lambda_requests_per_month": "Lambda requests per month",
    "lambda_avg_duration_ms": "Lambda average duration (ms)",
    "lambda_memory_mb": "Lambda memory (MB)",
    "endpoint_gb_per_month": "GB through the VPC endpoint per month",
    "alb_lcu": "ALB load (LCU)",
    "log_gb_per_month": "Log GB ingested per month",
    "secret_api_calls_per_month": "Secrets Manager calls per month",
}

#: What each spec field is called on the page (a warning's heading, "is required").
FIELD_LABELS: dict[str, str] = {
    **{name: label for name, label, _ in SCALARS},
    **{name: f"{short} subnets" for name, _, short, _, _ in LISTS},
    **{name: short for name, _, short, _ in CHOICES},
    "tags": "Tags",
    "team": "Team",
    "spec": "Design",
}
_ROW_WORD = {name: short for name, _, short, _, _ in LISTS}
_ROW_EXAMPLE = {name: example for name, _, _, _, example in LISTS}
_CHOICE = {name: (short, {v: t for v, t, _ in options}) for name, _, short, options in CHOICES}
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def ordinal(index: int) -> str:
    """``0`` -> ``first``; past the eighth, ``9th``, ``11th``, ``22nd``..."""
    if index < len(_ORDINALS):
        return _ORDINALS[index]
    n = index + 1
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def row_words(field: str, index: int) -> str:
    """A subnet row as the page shows it: ``the first Lambda subnet``."""
    return f"the {ordinal(index)} {_ROW_WORD.get(field, field)} subnet"


def choice_words(field: str, value: str) -> str:
    """A choice as the page shows it: ``NAT: one gateway``."""
    short, titles = _CHOICE[field]
    title = titles.get(value, value)
    return f"{short}: {title[:1].lower()}{title[1:]}"


def _chars(bad: tuple[str, ...]) -> str:
    shown = [repr(c) for c in bad[:5]]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f"{listed} {'is' if len(shown) == 1 else 'are'} not allowed"


def _reword(issue: Issue) -> str | None:
    """The issue in the form's words, or None to keep its message."""
    p = dict(issue.params)
    code = issue.code
    if code == "overlap":
        text = (
            f"{p['subnet']} overlaps {row_words(p['other_field'], p['other_index'])} "
            f"({p['other']}); pick a range that does not overlap"
        )
        return text + (f", e.g. {p['example']}" if p["example"] else "")
    if code == "nat_needs_public":
        where = "a NAT gateway in each AZ" if p["nat"] == "per_az" else "its NAT gateway"
        return (
            f"{choice_words('nat', p['nat'])} puts {where} in a public subnet: add a public "
            f"subnet, e.g. {_ROW_EXAMPLE['public_subnet_cidrs']}, or choose "
            f"{choice_words('nat', 'none')}"
        )
    if code == "per_az_count":
        return (
            f"{choice_words('nat', 'per_az')} puts a NAT gateway in each AZ that has a Lambda "
            f"subnet: give {p['need']} public subnets (one per Lambda subnet), not {p['given']}; "
            f"or choose {choice_words('nat', 'single')}"
        )
    if code == "alb_count":
        return (
            f"an internal ALB needs subnets in at least {p['need']} Availability Zones: give "
            f"{p['need']} or more API subnets (you gave {p['given']}), or choose "
            f"{choice_words('api_kind', 'ec2')}"
        )
    if code == "list_empty":
        return (
            f"needs at least one subnet: add a row with a CIDR like "
            f"{_ROW_EXAMPLE.get(issue.field, '10.0.1.0/24')}"
        )
    if code == "required":
        return f"{FIELD_LABELS.get(issue.field, issue.field)} is required"
    if code == "tag_key_chars":
        return f"tag key {p['tag']!r}: {_chars(p['bad'])}; use only {p['allowed']}"
    if code == "tag_value_chars":
        return f"the value of tag {p['tag']!r}: {_chars(p['bad'])}; use only {p['allowed']}"
    if code == "nat_none":
        return (
            f"with {choice_words('nat', 'none')} the Lambda has no internet access, only the VPC "
            f"and the AWS services reachable through VPC endpoints (Gantry creates one for "
            f"Secrets Manager in every design). Choose {choice_words('nat', 'single')} or "
            f"{choice_words('nat', 'per_az')} if the Lambda must call the internet"
        )
    if code == "public_unused":
        return (
            f"public subnets are only used for NAT gateways; with {choice_words('nat', 'none')} "
            f"they are not created. Remove them, or choose {choice_words('nat', 'single')} or "
            f"{choice_words('nat', 'per_az')}"
        )
    if code == "single_nat_azs":
        return (
            f"one NAT gateway serves Lambda subnets in {p['azs']} Availability Zones: if its AZ "
            f"fails the others lose internet access, and their traffic pays cross-AZ data "
            f"charges. Choose {choice_words('nat', 'per_az')} for a NAT gateway in each AZ"
        )
    return None


#: Errors that follow from a choice as much as from a list: shown beside that choice too,
#: where the user has just made it.
_ALSO = {"nat_needs_public": ("nat",), "per_az_count": ("nat",), "alb_count": ("api_kind",)}


def page_issue(issue: Issue) -> dict[str, Any]:
    """An issue as the design page places and shows it: ``field``, ``index`` and ``key`` as
    in the API, the message in the form's words, and ``also``: other fields it is shown
    beside (it still counts once)."""
    data = issue.to_json()
    data["message"] = _reword(issue) or issue.message
    data["label"] = FIELD_LABELS.get(issue.field, issue.field)
    if issue.code in _ALSO:
        data["also"] = list(_ALSO[issue.code])
    return data


def page_issues(issues: list[Issue]) -> list[dict[str, Any]]:
    return [page_issue(issue) for issue in issues]
