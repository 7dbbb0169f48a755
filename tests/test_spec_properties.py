"""Properties of spec validation over generated input: it never raises, its errors are always
keyed by something the user wrote, its CIDR parser accepts exactly the canonical AWS-sized IPv4
blocks, and every spec built to be valid is accepted."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from designer.spec import FIELDS, MAX_PREFIX, MIN_PREFIX, SUBNET_FIELDS, Spec, validate_spec
from tests.strategies import json_values, special_purpose, valid_specs

moderate = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Values that look like what each field wants, so generated documents get past the type checks
#: and into the range, list and cross-field rules.
_cidrs = st.builds(
    lambda addr, prefix: f"{ipaddress.IPv4Address(addr)}/{prefix}",
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
_plausible: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text("abcxyzAZ019_- ", max_size=45),
    "region": st.sampled_from(["us-east-1", "us-west-1", "eu-west-1", "us-east-1a", "mars"]),
    "vpc_cidr": _cidrs | st.sampled_from(["10.0.0.0/16", "10.0.0.0/24", "192.168.0.0/16"]),
    "public_subnet_cidrs": st.lists(_cidrs | st.just("10.0.0.0/24"), max_size=7),
    "lambda_subnet_cidrs": st.lists(_cidrs | st.just("10.0.1.0/24"), max_size=7),
    "api_subnet_cidrs": st.lists(_cidrs | st.just("10.0.2.0/24"), max_size=7),
    "api_port": st.integers(-5, 70_000) | st.floats() | st.sampled_from(["443", True]),
    "nat": st.sampled_from(["none", "single", "per_az", "per-az", ""]),
    "api_kind": st.sampled_from(["ec2", "alb", "ALB"]),
    "tags": st.dictionaries(st.text(max_size=10), st.text(max_size=5) | st.integers(), max_size=5),
    "version": st.sampled_from([1, 2, "1"]),
}


_junk = json_values(max_leaves=6)


@st.composite
def spec_like_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Dicts around the real field names: each field absent, plausible or any JSON value, plus
    a few unknown keys."""
    doc: dict[str, Any] = {}
    for name, plausible in _plausible.items():
        choice = draw(st.sampled_from(["absent", "plausible", "plausible", "junk"]))
        if choice == "plausible":
            doc[name] = draw(plausible)
        elif choice == "junk":
            doc[name] = draw(_junk)
    doc.update(draw(st.dictionaries(st.text(max_size=12), _junk, max_size=3)))
    return doc


@st.composite
def broken_valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one field removed or replaced by any JSON value: errors next to
    otherwise sound data, which is where cross-field rules could trip."""
    doc = draw(valid_specs())
    name = draw(st.sampled_from([*FIELDS, "version"]))
    if draw(st.booleans()):
        doc.pop(name, None)
    else:
        doc[name] = draw(_junk | _plausible[name])
    return doc


def check_result_shape(data: Any) -> None:
    """Validate ``data`` and check every invariant of the result that holds for any input."""
    result = validate_spec(data)

    assert result.valid is (not result.errors)
    assert (result.spec is None) is bool(result.errors)
    if not isinstance(data, dict):
        assert [e.field for e in result.errors] == ["spec"]
        return
    for issue in result.errors:
        assert issue.field in FIELDS or issue.field == "spec"
        assert issue.message
    for issue in [*result.errors, *result.warnings]:
        if issue.index is not None:
            assert issue.field in SUBNET_FIELDS
            assert 0 <= issue.index < len(data[issue.field])
        if issue.key is not None:
            assert issue.field in ("tags", "spec")
            assert issue.key in (data["tags"] if issue.field == "tags" else data)
    for issue in result.warnings:
        assert issue.field in FIELDS
    json.dumps(result.to_json())
    if result.spec is not None:
        assert isinstance(result.spec, Spec)


@moderate
@given(json_values())
def test_any_json_value_is_handled(data: Any) -> None:
    check_result_shape(data)


@moderate
@given(spec_like_documents())
def test_documents_around_the_real_fields_are_handled(data: dict[str, Any]) -> None:
    check_result_shape(data)


@moderate
@given(broken_valid_specs())
def test_valid_specs_with_one_field_broken_are_handled(data: dict[str, Any]) -> None:
    check_result_shape(data)


def vpc_errors(text: str) -> list[str]:
    return [e.message for e in validate_spec({"vpc_cidr": text}).errors if e.field == "vpc_cidr"]


def canonical_aws_block(text: str) -> bool:
    """The oracle: ipaddress's own strict parse, printed back identically, in AWS's size range."""
    try:
        network = ipaddress.IPv4Network(text)
    except ValueError:
        return False
    return (
        str(network) == text
        and MIN_PREFIX <= network.prefixlen <= MAX_PREFIX
        and not special_purpose(network)
    )


@moderate
@given(st.text(alphabet="0123456789./: x\n", max_size=24) | st.text(max_size=24))
def test_cidr_parser_accepts_exactly_canonical_blocks(text: str) -> None:
    errors = vpc_errors(text)
    assert len(errors) <= 1
    assert (not errors) is canonical_aws_block(text)


@moderate
@given(st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_structured_cidrs_are_accepted_or_corrected(addr: int, prefix: int) -> None:
    text = f"{ipaddress.IPv4Address(addr)}/{prefix}"
    network = ipaddress.IPv4Network(text, strict=False)

    errors = vpc_errors(text)

    if not MIN_PREFIX <= prefix <= MAX_PREFIX:
        assert errors == [
            f"/{prefix} is {'larger' if prefix < MIN_PREFIX else 'smaller'} than AWS allows; "
            f"use a prefix from /16 to /28"
        ]
    elif str(network) != text:
        assert errors == [f"{text} has host bits set; did you mean {network}?"]
    elif special_purpose(network):
        assert len(errors) == 1 and "cannot hold a VPC" in errors[0]
    else:
        assert errors == []


@moderate
@given(st.integers(0, 2**32 - 1), st.integers(MIN_PREFIX, MAX_PREFIX))
def test_host_bits_in_a_subnet_get_the_corrected_cidr_at_its_index(addr: int, prefix: int) -> None:
    text = f"{ipaddress.IPv4Address(addr)}/{prefix}"
    network = ipaddress.IPv4Network(text, strict=False)
    data = {"lambda_subnet_cidrs": ["10.0.1.0/24", text]}

    errors = [e for e in validate_spec(data).errors if e.field == "lambda_subnet_cidrs"]

    if str(network) != text:
        assert [(e.index, e.message) for e in errors][:1] == [
            (1, f"{text} has host bits set; did you mean {network}?")
        ]
    else:
        assert all(e.index != 1 or "host bits" not in e.message for e in errors)


@moderate
@given(valid_specs())
def test_generated_valid_specs_are_accepted(data: dict[str, Any]) -> None:
    result = validate_spec(data)

    assert result.errors == []
    assert result.spec is not None
    assert result.spec.name == data["name"]
    assert result.spec.vpc_cidr == data["vpc_cidr"]
    assert list(result.spec.lambda_subnet_cidrs) == data["lambda_subnet_cidrs"]
    assert list(result.spec.api_subnet_cidrs) == data["api_subnet_cidrs"]
    # The normalised spec is itself valid and normalises to itself.
    assert validate_spec(result.spec.to_json()).spec == result.spec
