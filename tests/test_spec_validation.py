"""Spec v1 validation, rule by rule: each error names its field (and index or tag key) and says
how to fix the mistake; each warning fires exactly where it should and never blocks."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from designer.spec import (
    DEFAULT_SPEC,
    FIELDS,
    REQUIRED_FIELDS,
    Issue,
    Spec,
    ValidationResult,
    validate_spec,
)


def make(**changes: Any) -> dict[str, Any]:
    """The article's spec with some fields replaced."""
    data = copy.deepcopy(DEFAULT_SPEC)
    data.update(changes)
    return data


def without(*keys: str, **changes: Any) -> dict[str, Any]:
    data = make(**changes)
    for key in keys:
        del data[key]
    return data


def the_error(result: ValidationResult) -> Issue:
    """The single error of ``result`` (a test of one rule must trigger exactly that rule)."""
    assert len(result.errors) == 1, result.errors
    assert result.spec is None
    return result.errors[0]


def warnings_on(result: ValidationResult, field: str) -> list[Issue]:
    return [w for w in result.warnings if w.field == field]


# --- the article's spec ----------------------------------------------------------------------


def test_article_spec_is_valid_with_only_the_single_az_lambda_warning() -> None:
    result = validate_spec(DEFAULT_SPEC)

    assert result.valid and result.errors == []
    assert result.spec == Spec(
        name="lambda-private-api",
        region="us-east-1",
        vpc_cidr="10.0.0.0/16",
        public_subnet_cidrs=("10.0.0.0/24",),
        lambda_subnet_cidrs=("10.0.1.0/24",),
        api_subnet_cidrs=("10.0.2.0/24",),
        api_port=443,
        nat="single",
        api_kind="ec2",
        tags=(),
    )
    # 10.0.0.0/16 is RFC 1918 (no range warning); one NAT with one Lambda AZ is no extra risk;
    # /24 subnets are big enough. Only the one-AZ Lambda is worth saying.
    assert [w.field for w in result.warnings] == ["lambda_subnet_cidrs"]
    assert "one Availability Zone" in result.warnings[0].message
    assert result.warnings[0].index is None


def test_validation_is_pure_and_does_not_touch_its_input() -> None:
    data = make(tags={"b": "2", "a": "1"})
    before = copy.deepcopy(data)

    first, second = validate_spec(data), validate_spec(data)

    assert data == before
    assert first.to_json() == second.to_json()
    assert first.spec == second.spec


def test_valid_spec_round_trips_through_to_json() -> None:
    spec = validate_spec(make(tags={"team": "payments"})).spec
    assert spec is not None

    again = validate_spec(json.loads(json.dumps(spec.to_json())))

    assert again.spec == spec


def test_normalised_spec_has_tuples_and_sorted_tags() -> None:
    result = validate_spec(
        make(
            lambda_subnet_cidrs=["10.0.1.0/24", "10.0.3.0/24"],
            tags={"zeta": "z", "Alpha": "a", "team": "payments"},
        )
    )

    assert result.spec is not None
    assert result.spec.lambda_subnet_cidrs == ("10.0.1.0/24", "10.0.3.0/24")
    assert isinstance(result.spec.public_subnet_cidrs, tuple)
    assert result.spec.tags == (("Alpha", "a"), ("team", "payments"), ("zeta", "z"))


def test_optional_fields_default_when_absent() -> None:
    result = validate_spec(without("region", "tags"))

    assert result.valid
    assert result.spec is not None
    assert result.spec.region == "us-east-1"
    assert result.spec.tags == ()


def test_version_1_is_accepted() -> None:
    assert validate_spec(make(version=1)).valid


@pytest.mark.parametrize("version", [2, 0, "1", 1.0, True, None, [1], {"v": 1}])
def test_other_versions_are_rejected(version: Any) -> None:
    error = the_error(validate_spec(make(version=version)))
    assert (error.field, error.key) == ("spec", "version")
    assert "version 1" in error.message


def test_issue_and_result_json_shapes() -> None:
    result = validate_spec(make(lambda_subnet_cidrs=["10.0.1.1/24"], tags={"aws:x": "y"}))

    data = result.to_json()

    assert data["valid"] is False
    first = data["errors"][0]
    assert (first["field"], first["index"]) == ("lambda_subnet_cidrs", 0)
    assert data["errors"][1]["key"] == "aws:x"
    assert "index" not in data["errors"][1]
    assert json.loads(json.dumps(data)) == data
    assert set(result.errors_by_field()) == {"lambda_subnet_cidrs", "tags"}


# --- document shape ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, [], [DEFAULT_SPEC], "spec", 1, 1.5, True, ""])
def test_a_non_object_document_gets_one_spec_error(data: Any) -> None:
    error = the_error(validate_spec(data))
    assert error.field == "spec"
    assert "JSON object" in error.message


def test_unknown_field_close_to_a_real_one_suggests_it() -> None:
    data = without("vpc_cidr", vpc_cdir="10.0.0.0/16")

    result = validate_spec(data)

    by_field = result.errors_by_field()
    assert by_field["spec"] == ["'vpc_cdir' is not a spec v1 field; did you mean 'vpc_cidr'?"]
    assert by_field["vpc_cidr"] == ["is required"]
    assert [e.key for e in result.errors if e.field == "spec"] == ["vpc_cdir"]


def test_unknown_field_far_from_any_lists_the_fields() -> None:
    error = the_error(validate_spec(make(colour="blue")))
    assert (error.field, error.key) == ("spec", "colour")
    assert error.to_json()["key"] == "colour"
    assert "is not a spec v1 field" in error.message
    assert "did you mean" not in error.message
    assert "api_subnet_cidrs" in error.message


def test_non_string_key_is_a_spec_error() -> None:
    data: dict[Any, Any] = make()
    data[7] = "x"
    error = the_error(validate_spec(data))
    assert error.field == "spec"
    assert "7" in error.message


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_missing_required_field(field: str) -> None:
    error = the_error(validate_spec(without(field)))
    assert error.field == field
    assert error.message == "is required"


def test_empty_object_reports_every_required_field_once() -> None:
    result = validate_spec({})
    assert sorted(e.field for e in result.errors) == sorted(REQUIRED_FIELDS)


#: For each field, values of the wrong JSON type.
WRONG_TYPES: dict[str, list[Any]] = {
    "name": [None, 5, 1.5, True, ["a"], {"a": 1}],
    "region": [None, 1, True, ["us-east-1"], {}],
    "vpc_cidr": [None, 10, 1.5, False, ["10.0.0.0/16"], {"cidr": "10.0.0.0/16"}],
    "public_subnet_cidrs": [None, "10.0.0.0/24", 3, True, {"a": "10.0.0.0/24"}],
    "lambda_subnet_cidrs": [None, "10.0.1.0/24", 3, True, {}],
    "api_subnet_cidrs": [None, "10.0.2.0/24", 3.0, False, {"0": "10.0.2.0/24"}],
    "api_port": [None, [443], {"port": 443}, "https", ""],
    "nat": [None, 0, False, ["single"], {}],
    "api_kind": [None, 1, True, ["ec2"], {}],
    "tags": [None, [], ["team=payments"], "team=payments", 1, True],
}


@pytest.mark.parametrize(
    ("field", "value"), [(f, v) for f, values in WRONG_TYPES.items() for v in values]
)
def test_wrong_type_is_a_field_error(field: str, value: Any) -> None:
    error = the_error(validate_spec(make(**{field: value})))
    assert error.field == field
    assert error.index is None
    assert error.message


@pytest.mark.parametrize(
    "field", ["public_subnet_cidrs", "lambda_subnet_cidrs", "api_subnet_cidrs"]
)
@pytest.mark.parametrize("item", [None, 10, 1.5, True, ["10.0.5.0/24"], {"cidr": "10.0.5.0/24"}])
def test_wrong_type_inside_a_subnet_list_points_at_the_item(field: str, item: Any) -> None:
    cidrs = [*DEFAULT_SPEC[field], item]
    error = the_error(validate_spec(make(**{field: cidrs})))
    assert (error.field, error.index) == (field, 1)
    assert "must be a string like 10.0.0.0/24" in error.message


# --- name ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["abc", "a" * 40, "my-api-2", "x-1"])
def test_valid_names(name: str) -> None:
    assert validate_spec(make(name=name)).valid


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("ab", "too short"),
        ("a" * 41, "too long"),
        ("1api", "does not start with a lowercase letter"),
        ("-api", "does not start with a lowercase letter"),
        ("my_api", "not allowed ('_')"),
        ("myApi", "not allowed ('A')"),
        ("my api", "not allowed (' ')"),
        ("abc\n", "not allowed ('\\n')"),
        ("ápi", "does not start with a lowercase letter"),
        ("", "too short"),
    ],
)
def test_invalid_names(name: str, fragment: str) -> None:
    error = the_error(validate_spec(make(name=name)))
    assert error.field == "name"
    assert fragment in error.message
    assert "lowercase letters, digits and hyphens" in error.message


def test_invalid_name_suggests_a_valid_one() -> None:
    error = the_error(validate_spec(make(name="My_Payments API")))
    assert "did you mean 'my-payments-api'?" in error.message


# --- region --------------------------------------------------------------------------------------


def test_other_regions_are_accepted() -> None:
    result = validate_spec(make(region="eu-west-1"))
    assert result.spec is not None and result.spec.region == "eu-west-1"


@pytest.mark.parametrize(
    ("region", "fragment"),
    [
        ("useast-1", "did you mean 'us-east-1'?"),
        ("US-EAST-1", "did you mean 'us-east-1'?"),
        ("eu-wset-1", "did you mean 'eu-west-1'?"),
        ("us-east-1a", "is an Availability Zone; give its region, us-east-1"),
        ("mars", "is not an AWS region code"),
        ("", "is not an AWS region code"),
    ],
)
def test_unknown_regions(region: str, fragment: str) -> None:
    error = the_error(validate_spec(make(region=region)))
    assert error.field == "region"
    assert fragment in error.message


# --- CIDR syntax (VPC and subnets share the parser) --------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.1/16", "10.0.0.1/16 has host bits set; did you mean 10.0.0.0/16?"),
        ("10.0.128.0/16", "10.0.128.0/16 has host bits set; did you mean 10.0.0.0/16?"),
        ("10.0.0.0/12", "/12 is larger than AWS allows; use a prefix from /16 to /28"),
        ("10.0.0.0/8", "/8 is larger than AWS allows; use a prefix from /16 to /28"),
        ("10.0.0.0/29", "/29 is smaller than AWS allows; use a prefix from /16 to /28"),
        ("10.0.0.0/32", "/32 is smaller than AWS allows; use a prefix from /16 to /28"),
        ("10.0.0/16", "'10.0.0/16' is not an IPv4 CIDR like 10.0.0.0/16"),
        ("vpc", "'vpc' is not an IPv4 CIDR like 10.0.0.0/16"),
        ("", "is empty; give a CIDR like 10.0.0.0/16"),
        ("   ", "is empty; give a CIDR like 10.0.0.0/16"),
        ("10.0.0.0/255.255.0.0", "'10.0.0.0/255.255.0.0' is not an IPv4 CIDR like 10.0.0.0/16"),
        ("10.0.0.0/33", "/33 is longer than /32"),
        ("10.0.300.0/16", "300 is larger than 255"),
        ("10.0.0.0", "'10.0.0.0' has no prefix length; write it as a CIDR like 10.0.0.0/16"),
        (
            "010.0.0.0/16",
            "leading zero in '010' (some tools read that as octal); write it as 10.0.0.0/16",
        ),
        ("10.0.0.0/016", "leading zero in '016'"),
        (" 10.0.0.0/16", "contains spaces; remove them (10.0.0.0/16)"),
        ("10.0.0.0/16\n", "contains spaces; remove them (10.0.0.0/16)"),
        ("10.0.0.0 /16", "contains spaces; remove them (10.0.0.0/16)"),
        ("fd00::/48", "only IPv4 is supported in spec v1"),
        ("2001:db8::/32", "only IPv4 is supported in spec v1"),
        ("::ffff:10.0.0.0/112", "only IPv4 is supported in spec v1"),
        ("10.0.0.0/1６", "is not an IPv4 CIDR"),  # a full-width digit
    ],
)
def test_vpc_cidr_errors(cidr: str, message: str) -> None:
    error = the_error(validate_spec(make(vpc_cidr=cidr)))
    assert error.field == "vpc_cidr"
    assert error.index is None
    assert message in error.message


def test_very_long_garbage_is_shortened_in_the_message() -> None:
    error = the_error(validate_spec(make(vpc_cidr="x" * 10_000)))
    assert len(error.message) < 200


@pytest.mark.parametrize("prefix", [16, 20, 24, 28])
def test_vpc_prefix_bounds_are_inclusive(prefix: int) -> None:
    result = validate_spec(make(vpc_cidr=f"10.0.0.0/{prefix}"))
    assert not [e for e in result.errors if e.field == "vpc_cidr"]


@pytest.mark.parametrize(
    "field", ["public_subnet_cidrs", "lambda_subnet_cidrs", "api_subnet_cidrs"]
)
@pytest.mark.parametrize(
    ("cidr", "fragment"),
    [
        ("10.0.5.7/24", "10.0.5.7/24 has host bits set; did you mean 10.0.5.0/24?"),
        ("10.0.0.0/15", "/15 is larger than AWS allows; use a prefix from /16 to /28"),
        ("10.0.5.0/30", "/30 is smaller than AWS allows; use a prefix from /16 to /28"),
        ("10.0.5/24", "'10.0.5/24' is not an IPv4 CIDR like 10.0.0.0/24"),
        ("fd00:0:0:5::/64", "only IPv4 is supported in spec v1"),
        ("10.0.05.0/24", "write it as 10.0.5.0/24"),
        ("10.0.5.0/24 ", "contains spaces"),
        # A row added in the form and left blank.
        ("", "is empty; give a CIDR like 10.0.0.0/24, or remove it"),
    ],
)
def test_subnet_cidr_errors_carry_the_index(field: str, cidr: str, fragment: str) -> None:
    cidrs = [*DEFAULT_SPEC[field], cidr]
    error = the_error(validate_spec(make(**{field: cidrs})))
    assert (error.field, error.index) == (field, 1)
    assert fragment in error.message


# --- subnets: placement -------------------------------------------------------------------------


def test_subnet_outside_the_vpc_suggests_a_free_range_of_the_same_size() -> None:
    error = the_error(validate_spec(make(lambda_subnet_cidrs=["10.0.1.0/24", "10.1.0.0/24"])))
    assert (error.field, error.index) == ("lambda_subnet_cidrs", 1)
    assert error.message == (
        "10.1.0.0/24 is outside the VPC 10.0.0.0/16; pick a range inside it, e.g. 10.0.3.0/24"
    )


def test_suggestions_in_one_result_do_not_collide() -> None:
    result = validate_spec(make(api_subnet_cidrs=["10.1.0.0/24", "10.2.0.0/24"]))
    messages = [e.message for e in result.errors]
    assert len(messages) == 2
    assert messages[0].endswith("e.g. 10.0.2.0/24")
    assert messages[1].endswith("e.g. 10.0.3.0/24")


def test_no_suggestion_when_the_vpc_is_full() -> None:
    result = validate_spec(
        make(
            vpc_cidr="10.0.0.0/24",
            public_subnet_cidrs=["10.0.0.0/25"],
            lambda_subnet_cidrs=["10.0.0.128/25"],
            api_subnet_cidrs=["10.0.1.0/25"],
        )
    )
    error = the_error(result)
    assert (error.field, error.index) == ("api_subnet_cidrs", 0)
    assert error.message == "10.0.1.0/25 is outside the VPC 10.0.0.0/24; pick a range inside it"


def test_subnet_larger_than_the_vpc() -> None:
    error = the_error(
        validate_spec(
            make(
                vpc_cidr="10.0.0.0/24",
                public_subnet_cidrs=["10.0.0.0/26"],
                lambda_subnet_cidrs=["10.0.0.64/26"],
                api_subnet_cidrs=["10.0.0.0/20"],
            )
        )
    )
    assert (error.field, error.index) == ("api_subnet_cidrs", 0)
    assert "is larger than the VPC 10.0.0.0/24" in error.message


def test_overlap_across_lists_names_the_other_subnet() -> None:
    error = the_error(validate_spec(make(api_subnet_cidrs=["10.0.1.0/25"])))
    assert (error.field, error.index) == ("api_subnet_cidrs", 0)
    assert error.message == (
        "10.0.1.0/25 overlaps lambda_subnet_cidrs[0] (10.0.1.0/24); "
        "pick a range that does not overlap, e.g. 10.0.2.0/25"
    )


def test_overlap_within_one_list() -> None:
    error = the_error(validate_spec(make(lambda_subnet_cidrs=["10.0.1.0/24", "10.0.1.128/25"])))
    assert (error.field, error.index) == ("lambda_subnet_cidrs", 1)
    assert "overlaps lambda_subnet_cidrs[0] (10.0.1.0/24)" in error.message


def test_duplicate_cidr_is_an_overlap() -> None:
    error = the_error(validate_spec(make(api_subnet_cidrs=["10.0.0.0/24"])))
    assert (error.field, error.index) == ("api_subnet_cidrs", 0)
    assert "overlaps public_subnet_cidrs[0] (10.0.0.0/24)" in error.message


def test_a_subnet_overlapping_two_others_gets_one_error() -> None:
    error = the_error(validate_spec(make(api_subnet_cidrs=["10.0.0.0/23"])))
    assert "overlaps public_subnet_cidrs[0]" in error.message


def test_no_placement_errors_from_an_unparsed_vpc() -> None:
    # The subnets are fine for any VPC the user will fix this to: no cascade.
    error = the_error(validate_spec(make(vpc_cidr="10.0.0.1/16")))
    assert error.field == "vpc_cidr"


def test_overlaps_are_still_found_when_the_vpc_is_wrong() -> None:
    result = validate_spec(make(vpc_cidr="nonsense", api_subnet_cidrs=["10.0.1.0/24"]))
    assert [(e.field, e.index) for e in result.errors] == [
        ("vpc_cidr", None),
        ("api_subnet_cidrs", 0),
    ]


def test_no_overlap_error_against_an_unparsed_subnet() -> None:
    error = the_error(validate_spec(make(api_subnet_cidrs=["10.0.1.5/24"])))
    assert "host bits" in error.message


@pytest.mark.parametrize("field", ["lambda_subnet_cidrs", "api_subnet_cidrs"])
def test_lists_that_need_a_subnet_reject_an_empty_list(field: str) -> None:
    error = the_error(validate_spec(make(**{field: []})))
    assert error.field == field
    assert "at least one" in error.message


def test_a_list_cannot_have_more_subnets_than_the_region_has_azs() -> None:
    result = validate_spec(
        make(
            region="us-west-1",
            lambda_subnet_cidrs=["10.0.1.0/24", "10.0.3.0/24", "10.0.4.0/24"],
        )
    )
    error = the_error(result)
    assert (error.field, error.index) == ("lambda_subnet_cidrs", None)
    assert "us-west-1 has 2 Availability Zones; give at most 2" in error.message


def test_the_same_list_fits_a_region_with_more_azs() -> None:
    assert validate_spec(
        make(region="us-east-1", lambda_subnet_cidrs=["10.0.1.0/24", "10.0.3.0/24", "10.0.4.0/24"])
    ).valid


def test_too_many_subnets_with_a_wrong_region_uses_the_largest_region() -> None:
    cidrs = [f"10.0.{i}.0/24" for i in range(10, 17)]
    result = validate_spec(make(region="nowhere-1", lambda_subnet_cidrs=cidrs))
    assert [e.field for e in result.errors] == ["region", "lambda_subnet_cidrs"]
    assert "no region has more than 6" in result.errors[1].message


# --- api_port -------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [1, 80, 443, 8080, 65535])
def test_valid_ports(port: int) -> None:
    result = validate_spec(make(api_port=port))
    assert result.spec is not None and result.spec.api_port == port


@pytest.mark.parametrize(
    ("port", "fragment"),
    [
        (0, "0 is out of range; use a port from 1 to 65535"),
        (-443, "out of range"),
        (65536, "65536 is out of range"),
        (10**30, "out of range"),
        (443.0, "443.0 is not a whole number; write 443 without the decimal point"),
        (443.5, "443.5 is not a whole number"),
        (float("inf"), "inf is not a whole number"),
        # A whole number out of range is out of range, not "write it without the decimal point".
        (70000.0, "70000.0 is out of range; use a whole number from 1 to 65535"),
        (1e300, "1e+300 is out of range"),
        (0.0, "0.0 is out of range"),
        ("443", "give the port as a number without quotes: 443"),
        (" 8080 ", "without quotes: 8080"),
        (True, "not a boolean"),
        (False, "not a boolean"),
        # Typed text quotes what was typed (the form passes it through as text).
        ("https", "'https' is not a port number; give a whole number from 1 to 65535, e.g. 443"),
        ("443.0", "'443.0' is not a port number"),
        (None, "must be a port number from 1 to 65535"),
    ],
)
def test_invalid_ports(port: Any, fragment: str) -> None:
    error = the_error(validate_spec(make(api_port=port)))
    assert error.field == "api_port"
    assert fragment in error.message


# --- nat, api_kind, and the rules that tie them to subnets ---------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("nat", "per-az", "did you mean 'per_az'?"),
        ("nat", "NONE", "did you mean 'none'?"),
        ("nat", "gateway", "use 'none', 'single' or 'per_az'"),
        ("api_kind", "ALB", "did you mean 'alb'?"),
        ("api_kind", "lambda", "use 'ec2' or 'alb'"),
    ],
)
def test_unknown_choices(field: str, value: str, fragment: str) -> None:
    error = the_error(validate_spec(make(**{field: value})))
    assert error.field == field
    assert fragment in error.message


@pytest.mark.parametrize("nat", ["single", "per_az"])
def test_nat_needs_public_subnets(nat: str) -> None:
    error = the_error(validate_spec(without("public_subnet_cidrs", nat=nat)))
    assert error.field == "public_subnet_cidrs"
    assert f"is required when nat is '{nat}'" in error.message

    error = the_error(validate_spec(make(nat=nat, public_subnet_cidrs=[])))
    assert error.field == "public_subnet_cidrs"
    assert "at least one" in error.message


def test_per_az_nat_needs_a_public_subnet_for_each_lambda_az() -> None:
    data = make(nat="per_az", lambda_subnet_cidrs=["10.0.1.0/24", "10.0.3.0/24"])

    error = the_error(validate_spec(data))

    assert error.field == "public_subnet_cidrs"
    assert "give 2 public subnets (one per Lambda subnet), not 1" in error.message
    data["public_subnet_cidrs"].append("10.0.4.0/24")
    assert validate_spec(data).valid


def test_no_nat_needs_no_public_subnets() -> None:
    for data in (
        without("public_subnet_cidrs", nat="none"),
        make(nat="none", public_subnet_cidrs=[]),
    ):
        result = validate_spec(data)
        assert result.valid
        assert result.spec is not None and result.spec.public_subnet_cidrs == ()
        assert not warnings_on(result, "public_subnet_cidrs")


def test_public_subnets_without_nat_are_warned_about_and_not_planned() -> None:
    result = validate_spec(make(nat="none"))

    assert result.valid
    (warning,) = warnings_on(result, "public_subnet_cidrs")
    assert "only used for NAT gateways" in warning.message
    assert "not created" in warning.message
    assert result.spec is not None and result.spec.public_subnet_cidrs == ()


def test_public_subnets_without_nat_are_still_checked() -> None:
    error = the_error(validate_spec(make(nat="none", public_subnet_cidrs=["10.0.1.0/24"])))
    assert (error.field, error.index) == ("lambda_subnet_cidrs", 0)
    assert "overlaps public_subnet_cidrs[0]" in error.message


def test_alb_needs_two_api_subnets() -> None:
    error = the_error(validate_spec(make(api_kind="alb")))
    assert error.field == "api_subnet_cidrs"
    assert "at least 2 Availability Zones" in error.message
    assert validate_spec(
        make(api_kind="alb", api_subnet_cidrs=["10.0.2.0/24", "10.0.3.0/24"])
    ).valid


def test_ec2_accepts_one_api_subnet() -> None:
    assert validate_spec(make(api_kind="ec2", api_subnet_cidrs=["10.0.2.0/24"])).valid


# --- tags ------------------------------------------------------------------------------------------


def test_valid_tags_at_the_limits() -> None:
    tags = {f"k{i}": "v" for i in range(39)}
    tags["k" * 128] = "v" * 256
    tags["cost-center"] = ""
    tags["owner@example.com"] = "a b_c.d:e/f=g+h-i@j"
    tags["équipe"] = "paiements"
    tags["name"] = "lower-case name is a different key"
    tags = dict(list(tags.items())[-40:])

    result = validate_spec(make(tags=tags))

    assert result.valid, result.errors
    assert result.spec is not None and len(result.spec.tags) == 40


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("", "v", "must be 1 to 128 characters"),
        ("k" * 129, "v", "must be 1 to 128 characters"),
        ("aws:team", "v", "uses the prefix 'aws:', reserved for AWS"),
        ("AWS:team", "v", "uses the prefix 'aws:', reserved for AWS"),
        ("gantry:deployment", "v", "uses the prefix 'gantry:', reserved for Gantry"),
        ("Gantry:logical-id", "v", "uses the prefix 'gantry:'"),
        ("Name", "v", "is set by Gantry on every resource"),
        ("team#1", "v", "may contain only letters, digits, spaces and _ . : / = + - @"),
        ("team", "v" * 257, "is 257 characters long; the limit is 256"),
        ("team", "a\tb", "may contain only letters, digits"),
        ("team", 7, "must be a string (put it in quotes), not a number"),
        ("team", None, "must be a string (put it in quotes), not null"),
        ("team", ["a"], "not a list"),
        ("team", True, "not a boolean"),
    ],
)
def test_tag_errors_name_the_key(key: str, value: Any, fragment: str) -> None:
    error = the_error(validate_spec(make(tags={key: value})))
    assert error.field == "tags"
    assert error.key == key
    assert error.index is None
    assert fragment in error.message
    shown = repr(key) if len(key) <= 60 else repr(key[:57] + "...")
    assert shown in error.message


def test_too_many_tags() -> None:
    error = the_error(validate_spec(make(tags={f"k{i}": "v" for i in range(41)})))
    assert error.field == "tags"
    assert "has 41 tags; at most 40" in error.message


# --- warnings -------------------------------------------------------------------------------------


def spec_in(vpc: str) -> dict[str, Any]:
    """The article's layout moved into another /16."""
    base = vpc.split("/")[0].rsplit(".", 2)[0]
    return make(
        vpc_cidr=vpc,
        public_subnet_cidrs=[f"{base}.0.0/24"],
        lambda_subnet_cidrs=[f"{base}.1.0/24"],
        api_subnet_cidrs=[f"{base}.2.0/24"],
    )


@pytest.mark.parametrize(
    "vpc", ["10.20.0.0/16", "172.31.0.0/16", "192.168.0.0/16", "172.16.0.0/20"]
)
def test_private_vpc_ranges_are_not_warned_about(vpc: str) -> None:
    result = validate_spec(spec_in(vpc))
    assert result.valid, result.errors
    assert not warnings_on(result, "vpc_cidr")


def test_public_vpc_range_is_warned_about() -> None:
    result = validate_spec(spec_in("8.8.0.0/16"))

    assert result.valid
    (warning,) = warnings_on(result, "vpc_cidr")
    assert "outside the private RFC 1918 ranges" in warning.message
    assert "10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16" in warning.message
    assert "100.64.0.0/10" in warning.message


def test_cgnat_vpc_range_is_warned_about() -> None:
    result = validate_spec(spec_in("100.64.0.0/16"))

    (warning,) = warnings_on(result, "vpc_cidr")
    assert "100.64.0.0/10" in warning.message
    assert "CGNAT" in warning.message


def test_range_straddling_rfc1918_is_warned_about() -> None:
    # 172.15.0.0/16 is just below 172.16.0.0/12.
    assert warnings_on(validate_spec(spec_in("172.15.0.0/16")), "vpc_cidr")


@pytest.mark.parametrize(
    ("vpc", "fragment"),
    [
        ("0.0.0.0/16", '0.0.0.0/16 is in 0.0.0.0/8, the "this network" range'),
        ("127.0.0.0/16", "127.0.0.0/16 is in 127.0.0.0/8, the loopback range"),
        ("169.254.0.0/16", "the link-local range, where the instance metadata service"),
        ("169.254.169.240/28", "link-local"),
        ("224.1.0.0/16", "multicast"),
        ("255.255.255.240/28", "reserved range"),
    ],
)
def test_special_purpose_ranges_cannot_hold_a_vpc(vpc: str, fragment: str) -> None:
    """AWS refuses these for a VPC, and nothing routes to them: an error, not a warning."""
    error = the_error(validate_spec(spec_in(vpc)))
    assert error.field == "vpc_cidr"
    assert fragment in error.message
    assert "use a private range such as 10.0.0.0/16" in error.message


def test_docker_bridge_range_is_warned_about() -> None:
    result = validate_spec(spec_in("172.17.0.0/16"))

    assert result.valid
    (warning,) = warnings_on(result, "vpc_cidr")
    assert "Docker's default bridge network" in warning.message
    assert not warnings_on(validate_spec(spec_in("172.18.0.0/16")), "vpc_cidr")


def test_lambda_in_two_azs_has_no_redundancy_warning() -> None:
    result = validate_spec(
        make(
            nat="per_az",
            lambda_subnet_cidrs=["10.0.1.0/24", "10.0.3.0/24"],
            public_subnet_cidrs=["10.0.0.0/24", "10.0.4.0/24"],
        )
    )
    assert result.valid
    assert result.warnings == []


def test_no_nat_warning_says_the_lambda_reaches_only_the_vpc_and_its_endpoints() -> None:
    result = validate_spec(
        without(
            "public_subnet_cidrs", nat="none", lambda_subnet_cidrs=["10.0.1.0/24", "10.0.3.0/24"]
        )
    )

    (warning,) = warnings_on(result, "nat")
    assert "no internet access" in warning.message
    assert "VPC endpoints" in warning.message
    assert "Secrets Manager in every design" in warning.message
    assert "'single' or 'per_az'" in warning.message
    # The endpoint is not something nat 'none' adds, so its cost is not pinned on this choice.
    assert "$" not in warning.message


def test_single_nat_with_lambda_in_several_azs_is_warned_about() -> None:
    result = validate_spec(make(lambda_subnet_cidrs=["10.0.1.0/24", "10.0.3.0/24"]))

    (warning,) = warnings_on(result, "nat")
    assert "one NAT gateway serves Lambda subnets in 2 Availability Zones" in warning.message
    assert "cross-AZ data charges" in warning.message
    assert "per_az" in warning.message


def test_single_nat_with_lambda_in_one_az_has_no_nat_warning() -> None:
    assert not warnings_on(validate_spec(DEFAULT_SPEC), "nat")


@pytest.mark.parametrize(
    ("cidr", "warns"), [("10.0.1.0/26", False), ("10.0.1.0/27", True), ("10.0.1.0/28", True)]
)
def test_small_lambda_subnets_are_warned_about(cidr: str, warns: bool) -> None:
    result = validate_spec(make(lambda_subnet_cidrs=["10.0.3.0/24", cidr]))

    assert result.valid
    small = [w for w in warnings_on(result, "lambda_subnet_cidrs") if w.index is not None]
    assert bool(small) is warns
    if warns:
        (warning,) = small
        assert warning.index == 1
        assert "AWS reserves 5" in warning.message
        assert "Hyperplane ENIs" in warning.message
        assert "Use /26 or larger (59 usable addresses)" in warning.message
        assert "Secrets Manager endpoint" in warning.message


def test_small_lambda_subnet_warning_counts_the_endpoint_with_nat_off_too() -> None:
    result = validate_spec(
        without("public_subnet_cidrs", nat="none", lambda_subnet_cidrs=["10.0.1.0/27"])
    )
    (warning,) = [w for w in warnings_on(result, "lambda_subnet_cidrs") if w.index == 0]
    assert "leaves 27 usable addresses" in warning.message
    assert "Secrets Manager endpoint" in warning.message


@pytest.mark.parametrize(("cidr", "warns"), [("10.0.3.0/27", False), ("10.0.3.0/28", True)])
def test_small_alb_subnets_are_warned_about(cidr: str, warns: bool) -> None:
    result = validate_spec(make(api_kind="alb", api_subnet_cidrs=["10.0.2.0/24", cidr]))

    assert result.valid
    small = warnings_on(result, "api_subnet_cidrs")
    assert bool(small) is warns
    if warns:
        (warning,) = small
        assert warning.index == 1
        assert "leaves 11 usable addresses" in warning.message
        assert "8 free addresses" in warning.message
        assert "AWS recommends /27 or larger" in warning.message


def test_smallest_subnets_are_enough_for_an_ec2_api_and_a_nat_gateway() -> None:
    result = validate_spec(
        make(public_subnet_cidrs=["10.0.0.0/28"], api_subnet_cidrs=["10.0.2.0/28"])
    )
    assert result.valid
    assert not warnings_on(result, "api_subnet_cidrs")
    assert not warnings_on(result, "public_subnet_cidrs")


def test_warnings_do_not_block() -> None:
    result = validate_spec(
        without(
            "public_subnet_cidrs",
            vpc_cidr="8.8.0.0/16",
            nat="none",
            lambda_subnet_cidrs=["8.8.1.0/28"],
            api_subnet_cidrs=["8.8.2.0/28", "8.8.3.0/28"],
            api_kind="alb",
        )
    )
    assert result.valid
    assert result.spec is not None
    assert {w.field for w in result.warnings} == {
        "vpc_cidr",
        "nat",
        "lambda_subnet_cidrs",
        "api_subnet_cidrs",
    }


def test_no_warnings_about_fields_that_have_errors() -> None:
    result = validate_spec(make(lambda_subnet_cidrs=["10.0.1.0/24", "10.0.3.0/24"], nat="singel"))
    assert [e.field for e in result.errors] == ["nat"]
    assert not warnings_on(result, "nat")


def test_field_names_are_the_public_interface() -> None:
    assert FIELDS == (
        "name",
        "region",
        "vpc_cidr",
        "public_subnet_cidrs",
        "lambda_subnet_cidrs",
        "api_subnet_cidrs",
        "api_port",
        "nat",
        "api_kind",
        "tags",
    )
