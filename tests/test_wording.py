"""Errors in the design form's own words (designer/wording.py), while the API and the CLI keep
the spec's field names; input the form must refuse or flag (non-ASCII digits, capped costs).

Pure tests of the one validator and its page wording, plus the design page's preview answer
through Django's test client.
"""

from __future__ import annotations

import re

import pytest
from django.http import QueryDict
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from designer.cost import ASSUMPTION_BOUNDS, Assumptions
from designer.forms import spec_from_form
from designer.spec import DEFAULT_SPEC, validate_spec
from designer.wording import CHOICES, LISTS, ordinal, page_issue
from tests.strategies import valid_specs
from tests.test_design_pages import form_data

#: What the page must never show: spec field names, spec choice values in quotes, JSON lists.
SPEC_TERMS = re.compile(
    r"\w+_subnet_cidrs|api_kind|api_port|vpc_cidr|\bnat (?:is )?'|\bnat to\b|'per_az'|\[\""
)


def page_messages(spec: dict) -> list[str]:
    result = validate_spec(spec)
    return [page_issue(i)["message"] for i in [*result.errors, *result.warnings]]


def test_an_overlap_names_the_row_the_user_sees_and_the_api_keeps_the_field():
    spec = {**DEFAULT_SPEC, "lambda_subnet_cidrs": ["10.0.1.0/24", "10.0.2.0/24"]}
    (issue,) = validate_spec(spec).errors
    assert "overlaps lambda_subnet_cidrs[1] (10.0.2.0/24)" in issue.message  # API and CLI
    shown = page_issue(issue)
    assert "overlaps the second Lambda subnet (10.0.2.0/24)" in shown["message"]
    assert (shown["field"], shown["index"]) == ("api_subnet_cidrs", 0)


def test_nat_and_alb_errors_name_the_choices_and_sit_beside_them_too():
    per_az = {
        **DEFAULT_SPEC,
        "nat": "per_az",
        "lambda_subnet_cidrs": ["10.0.1.0/24", "10.0.11.0/24"],
    }
    (issue,) = validate_spec(per_az).errors
    assert "use nat 'single'" in issue.message
    shown = page_issue(issue)
    assert shown["message"].startswith("NAT: one gateway per AZ puts a NAT gateway in each AZ")
    assert shown["message"].endswith("or choose NAT: one gateway")
    assert shown["field"] == "public_subnet_cidrs" and shown["also"] == ["nat"]

    alb = {**DEFAULT_SPEC, "api_kind": "alb"}
    (issue,) = validate_spec(alb).errors
    assert "use api_kind 'ec2'" in issue.message
    shown = page_issue(issue)
    assert "or choose Internal API: one EC2 instance" in shown["message"]
    assert shown["field"] == "api_subnet_cidrs" and shown["also"] == ["api_kind"]


def test_a_tag_error_names_the_character_that_is_not_allowed():
    spec = {**DEFAULT_SPEC, "tags": {"cost#centre": "ok", "team": "a!b<c"}}
    key, value = validate_spec(spec).errors
    assert page_issue(key)["message"].startswith("tag key 'cost#centre': '#' is not allowed")
    assert "'!' and '<' are not allowed" in page_issue(value)["message"]
    assert "may contain only" in key.message  # the API's message is unchanged


def test_sixty_rows_with_one_tag_key_give_one_message():
    data = QueryDict(mutable=True)
    for key, values in form_data(DEFAULT_SPEC).items():
        data.setlist(key, values if isinstance(values, list) else [values])
    data.setlist("tag_key", ["env"] * 60)
    data.setlist("tag_value", [f"v{i}" for i in range(60)])
    spec, problems = spec_from_form(data)
    (problem,) = problems
    assert problem.message == "tag 'env' is given in 60 rows; keep one row per key"
    assert spec["tags"] == {"env": "v0"}


@pytest.mark.parametrize("typed", ["٤٤٣", "۴۴۳", "４４３"])  # Arabic-Indic, Persian, full-width
def test_port_digits_other_than_ascii_are_refused_with_the_usual_message(typed):
    data = QueryDict(mutable=True)
    data.update({"api_port": typed})
    spec, _ = spec_from_form(data)
    assert spec["api_port"] == typed  # passed on as typed, not as 443
    (issue,) = [e for e in validate_spec({**DEFAULT_SPEC, **spec}).errors if e.field == "api_port"]
    assert issue.message == (
        f"{typed!r} is not a port number; give a whole number from 1 to 65535, e.g. 443"
    )


def test_a_capped_cost_assumption_says_so():
    assumptions, errors, capped = Assumptions.read({"nat_gb_per_month": "1e308", "alb_lcu": "2"})
    assert errors == []
    assert assumptions.nat_gb_per_month == ASSUMPTION_BOUNDS["nat_gb_per_month"].high
    (note,) = capped
    assert note.field == "nat_gb_per_month"
    assert note.message == (
        "1e308 is outside what the estimate allows; it uses the largest value, 1,000,000"
    )
    _, errors, capped = Assumptions.read({"lambda_memory_mb": "64"})
    assert "smallest value, 128" in capped[0].message
    _, errors, _ = Assumptions.read({"nat_gb_per_month": "٤٤٣"})
    assert "enter the digits 0-9 only" in errors[0].message


@pytest.mark.django_db
def test_the_design_page_preview_speaks_the_forms_words(member_client):
    data = form_data(
        {**DEFAULT_SPEC, "nat": "per_az", "lambda_subnet_cidrs": ["10.0.1.0/24", "10.0.11.0/24"]},
        nat_gb_per_month="1e308",
    )
    body = member_client.post(reverse("designer:preview"), data).json()
    (error,) = body["errors"]
    assert error["also"] == ["nat"] and "NAT: one gateway per AZ" in error["message"]
    assert not SPEC_TERMS.search(error["message"])
    (note,) = body["assumption_notes"]
    assert note["field"] == "nat_gb_per_month" and "1,000,000" in note["message"]
    # The API says the same in the spec's words.
    api = member_client.post(
        "/api/designs/validate/",
        {
            "spec": {
                **DEFAULT_SPEC,
                "nat": "per_az",
                "lambda_subnet_cidrs": ["10.0.1.0/24", "10.0.11.0/24"],
            }
        },
        content_type="application/json",
    ).json()
    assert "use nat 'single'" in api["errors"]["public_subnet_cidrs"][0]


def test_ordinals():
    assert [ordinal(i) for i in (0, 1, 2, 7, 8, 10, 11, 20, 21)] == [
        "first",
        "second",
        "third",
        "eighth",
        "9th",
        "11th",
        "12th",
        "21st",
        "22nd",
    ]


# --- no spec term ever reaches the page ------------------------------------------------------

_ROWS = [name for name, *_ in LISTS]
_CHOICE_VALUES = {name: [v for v, _, _ in options] for name, _, _, options in CHOICES}


@st.composite
def form_mistakes(draw: st.DrawFn) -> dict:
    """A valid spec with the mistakes a person makes in the form: a row copied into another
    list, a row blanked or removed, NAT or the API kind switched, a tag with a stray
    character, junk in the port."""
    spec = draw(valid_specs())
    spec.pop("version", None)
    spec.setdefault("public_subnet_cidrs", [])
    spec.setdefault("region", "us-east-1")
    spec.setdefault("tags", {})
    for _ in range(draw(st.integers(1, 4))):
        what = draw(st.sampled_from(["copy", "blank", "drop", "choice", "tag", "port", "vpc"]))
        if what == "copy":
            src, dst = draw(st.sampled_from(_ROWS)), draw(st.sampled_from(_ROWS))
            if spec[src]:
                spec[dst] = [*spec[dst], draw(st.sampled_from(spec[src]))]
        elif what == "blank":
            name = draw(st.sampled_from(_ROWS))
            spec[name] = [*spec[name], ""]
        elif what == "drop":
            name = draw(st.sampled_from(_ROWS))
            spec[name] = spec[name][: draw(st.integers(0, max(0, len(spec[name]) - 1)))]
        elif what == "choice":
            name = draw(st.sampled_from(sorted(_CHOICE_VALUES)))
            spec[name] = draw(st.sampled_from(_CHOICE_VALUES[name]))
        elif what == "tag":
            spec["tags"] = {**spec["tags"], draw(st.sampled_from(["a#b", "x", "aws:y"])): "v!"}
        elif what == "port":
            spec["api_port"] = draw(st.sampled_from(["", "٤٤٣", "4x3", "-1", "70000"]))
        else:
            spec["vpc_cidr"] = draw(st.sampled_from(["10.0.0.1/16", "10.0.0.0/8", "", "10.0.0.0"]))
    return spec


@given(form_mistakes())
def test_no_message_on_the_page_names_a_spec_field(spec):
    data = QueryDict(mutable=True)
    for key, values in form_data(spec).items():
        data.setlist(key, values if isinstance(values, list) else [values])
    form_spec, problems = spec_from_form(data)
    result = validate_spec(form_spec)
    for issue in [*problems, *result.errors, *result.warnings]:
        message = page_issue(issue)["message"]
        assert not SPEC_TERMS.search(message), (issue.code, message)
