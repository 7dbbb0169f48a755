"""Route tables, security-group rules and the cost estimate: views of the graph.

Each view is checked against the article for the article's spec, across every NAT choice and API
kind, and shown to follow the graph (not the spec) by editing a graph and watching the view
change.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from decimal import Decimal

import pytest
from hypothesis import given

from designer.cost import (
    ASSUMPTION_BOUNDS,
    PRICE_FILE,
    Assumptions,
    estimate_cost,
    price_list,
)
from designer.graph import Ref, ResourceNode
from designer.plan import LAMBDA_MEMORY_MB, plan
from designer.tables import route_tables, security_group_rules
from tests.specs import ARTICLE, TWO_AZ
from tests.strategies import json_values

VARIANTS = [
    pytest.param(dataclasses.replace(TWO_AZ, nat=nat, api_kind=kind), id=f"{nat}-{kind}")
    for nat, kind in itertools.product(("none", "single", "per_az"), ("ec2", "alb"))
]
LOCAL = {"destination": "10.0.0.0/16", "target": "local", "target_logical_id": None}


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {row["name"]: row for row in rows}


def item(cost: dict, logical_id: str) -> float:
    (found,) = [i["monthly_usd"] for i in cost["items"] if i["logical_id"] == logical_id]
    return found


def nat_items(cost: dict) -> float:
    return sum(
        i["monthly_usd"]
        for i in cost["items"]
        if i["logical_id"].startswith(("NatGateway", "NatEip"))
    )


# -- route tables ---------------------------------------------------------------------------------


def test_article_route_tables():
    tables = route_tables(plan(ARTICLE))
    assert [t["name"] for t in tables] == ["RT-Lambda", "RT-API", "RT-Public"]
    rt_lambda, rt_api, rt_public = tables
    assert rt_lambda["logical_id"] == "LambdaRouteTable"
    assert rt_lambda["subnets"] == [
        {"logical_id": "LambdaSubnet1", "cidr": "10.0.1.0/24", "az": "us-east-1a"}
    ]
    assert rt_lambda["routes"] == [
        LOCAL,
        {
            "destination": "0.0.0.0/0",
            "target": "NAT gateway (us-east-1a)",
            "target_logical_id": "NatGateway1",
        },
    ]
    assert rt_api["subnets"] == [
        {"logical_id": "ApiSubnet1", "cidr": "10.0.2.0/24", "az": "us-east-1a"}
    ]
    assert rt_api["routes"] == [LOCAL]
    assert rt_public["routes"] == [
        LOCAL,
        {
            "destination": "0.0.0.0/0",
            "target": "Internet gateway",
            "target_logical_id": "InternetGateway",
        },
    ]


@pytest.mark.parametrize("spec", VARIANTS)
def test_api_route_table_is_local_only_in_every_variant(spec):
    tables = by_name(route_tables(plan(spec)))
    assert tables["RT-API"]["routes"] == [LOCAL]
    assert [s["logical_id"] for s in tables["RT-API"]["subnets"]] == ["ApiSubnet1", "ApiSubnet2"]
    for table in tables.values():
        assert table["routes"][0] == LOCAL  # the implicit local route comes first, as in AWS
        targets = {r["target_logical_id"] for r in table["routes"][1:]}
        if table["name"].startswith("RT-Lambda"):
            assert all(t.startswith("NatGateway") for t in targets)
            assert bool(targets) == (spec.nat != "none")
        if table["name"] == "RT-Public":
            assert targets == {"InternetGateway"}


def test_per_az_lambda_tables_route_to_the_nat_in_their_own_az():
    graph = plan(dataclasses.replace(TWO_AZ, nat="per_az"))
    tables = by_name(route_tables(graph))
    assert list(tables) == ["RT-Lambda us-east-1a", "RT-Lambda us-east-1b", "RT-API", "RT-Public"]
    for az in ("us-east-1a", "us-east-1b"):
        table = tables[f"RT-Lambda {az}"]
        assert [s["az"] for s in table["subnets"]] == [az]
        (default,) = table["routes"][1:]
        assert default["target"] == f"NAT gateway ({az})"
        assert graph[default["target_logical_id"]].meta["az"] == az


def test_route_tables_are_read_from_the_graph_not_the_spec():
    graph = plan(ARTICLE)
    graph.add(
        ResourceNode(
            "RogueRoute",
            "AWS::EC2::Route",
            {
                "RouteTableId": Ref("ApiRouteTable"),
                "DestinationCidrBlock": "0.0.0.0/0",
                "NatGatewayId": Ref("NatGateway1"),
            },
            ["ApiRouteTable", "NatGateway1"],
        )
    )
    del graph.nodes["LambdaSubnet1RouteTableAssociation"]
    tables = by_name(route_tables(graph))
    assert tables["RT-API"]["routes"][1]["target_logical_id"] == "NatGateway1"
    assert tables["RT-Lambda"]["subnets"] == []


# -- security groups ------------------------------------------------------------------------------


def test_article_security_groups():
    groups = by_name(security_group_rules(plan(ARTICLE)))
    assert list(groups) == ["SG-Lambda", "SG-API", "SG-Endpoint"]
    assert groups["SG-Lambda"]["ingress"] == []
    assert [
        (r["protocol"], r["port"], r["peer"], r["peer_logical_id"])
        for r in groups["SG-Lambda"]["egress"]
    ] == [
        ("tcp", 443, "SG-API", "ApiSecurityGroup"),
        ("tcp", 443, "0.0.0.0/0", None),
    ]
    assert [
        (r["protocol"], r["port"], r["peer"], r["peer_logical_id"])
        for r in groups["SG-API"]["ingress"]
    ] == [("tcp", 443, "SG-Lambda", "LambdaSecurityGroup")]
    assert [(r["port"], r["peer"]) for r in groups["SG-API"]["egress"]] == [(443, "SG-Endpoint")]
    assert [(r["port"], r["peer"]) for r in groups["SG-Endpoint"]["ingress"]] == [
        (443, "SG-Lambda"),
        (443, "SG-API"),
    ]
    assert all(r["description"] for g in groups.values() for r in g["ingress"] + g["egress"])


@pytest.mark.parametrize("spec", VARIANTS)
def test_sg_lambda_has_no_ingress_and_sg_api_admits_only_sg_lambda(spec):
    spec = dataclasses.replace(spec, api_port=8443)
    groups = by_name(security_group_rules(plan(spec)))
    assert groups["SG-Lambda"]["ingress"] == []
    assert [(r["port"], r["peer"]) for r in groups["SG-API"]["ingress"]] == [(8443, "SG-Lambda")]
    lambda_egress = {(r["port"], r["peer"]) for r in groups["SG-Lambda"]["egress"]}
    if spec.nat == "none":
        assert lambda_egress == {(8443, "SG-API"), (443, "SG-Endpoint")}
    else:
        assert lambda_egress == {(8443, "SG-API"), (443, "0.0.0.0/0")}
    # The endpoint is in every design: the Lambda and the API's instances read the secret there.
    instances = "SG-API-Instances" if spec.api_kind == "alb" else "SG-API"
    assert [(r["port"], r["peer"]) for r in groups["SG-Endpoint"]["ingress"]] == [
        (443, "SG-Lambda"),
        (443, instances),
    ]
    assert (443, "SG-Endpoint") in {(r["port"], r["peer"]) for r in groups[instances]["egress"]}
    if spec.api_kind == "alb":
        instances = groups["SG-API-Instances"]
        assert [(r["port"], r["peer"]) for r in instances["ingress"]] == [(8443, "SG-API")]
        assert (8443, "SG-API-Instances") in {
            (r["port"], r["peer"]) for r in groups["SG-API"]["egress"]
        }
    # No rule between our groups is written as a CIDR.
    for group in groups.values():
        for rule in group["ingress"] + group["egress"]:
            assert rule["peer_logical_id"] is not None or rule["peer"] == "0.0.0.0/0"


def test_a_group_keeping_aws_default_egress_shows_it():
    graph = plan(ARTICLE)
    graph["ApiSecurityGroup"].meta["revoke_default_egress"] = False
    groups = by_name(security_group_rules(graph))
    assert groups["SG-API"]["egress"][-1]["peer"] == "0.0.0.0/0"
    assert groups["SG-API"]["egress"][-1]["protocol"] == "all"


# -- prices and assumptions ------------------------------------------------------------------------


def test_price_file_is_dated_and_sourced():
    raw = json.loads(PRICE_FILE.read_text())
    assert raw["effective_date"] == "2026-11-01"
    assert raw["currency"] == "USD"
    assert raw["region"] == "us-east-1"
    assert raw["source"] and "approximated" in raw["region_note"]
    prices = price_list().prices
    assert prices["nat_gateway_hour"] == Decimal("0.045")
    assert prices["lambda_gb_second"] == Decimal("0.0000166667")
    for free in ("vpc", "subnet", "route_table", "security_group", "internet_gateway"):
        assert prices[free] == 0
    assert price_list() is price_list()


def test_assumptions_default_to_the_plan():
    assert Assumptions().lambda_memory_mb == LAMBDA_MEMORY_MB
    assert (
        plan(ARTICLE)["LambdaFunction"].properties["MemorySize"] == Assumptions().lambda_memory_mb
    )


def test_assumptions_from_form_strings():
    assumptions, errors = Assumptions.from_mapping(
        {"nat_gb_per_month": " 250 ", "lambda_requests_per_month": "2,000,000", "alb_lcu": 0.5}
    )
    assert errors == []
    assert assumptions.nat_gb_per_month == 250
    assert assumptions.lambda_requests_per_month == 2_000_000
    assert assumptions.alb_lcu == 0.5
    assert assumptions.log_gb_per_month == Assumptions().log_gb_per_month


@pytest.mark.parametrize(
    "raw, message",
    [
        (-1, "negative"),
        ("-5", "negative"),
        ("lots", "not a number"),
        ("nan", "finite"),
        (float("inf"), "finite"),
        (True, "not true/false"),
        ([1], "enter a number"),
        (10**400, "smaller"),
    ],
)
def test_bad_assumptions_are_reported_by_field_and_keep_their_default(raw, message):
    assumptions, errors = Assumptions.from_mapping({"nat_gb_per_month": raw, "alb_lcu": 2})
    assert [e.field for e in errors] == ["nat_gb_per_month"]
    assert message in errors[0].message
    assert assumptions.nat_gb_per_month == Assumptions().nat_gb_per_month
    assert assumptions.alb_lcu == 2


def test_assumptions_are_clamped_and_unknown_names_reported():
    assumptions, errors = Assumptions.from_mapping(
        {"lambda_memory_mb": 64, "lambda_avg_duration_ms": 10**9, "nat_gb": 5}
    )
    assert assumptions.lambda_memory_mb == ASSUMPTION_BOUNDS["lambda_memory_mb"].low == 128
    assert assumptions.lambda_avg_duration_ms == 900_000
    assert [e.field for e in errors] == ["assumptions"]
    assert "'nat_gb'" in errors[0].message
    assert Assumptions.from_mapping("100")[1][0].field == "assumptions"
    assert Assumptions.from_mapping(None) == (Assumptions(), [])
    assert Assumptions.from_mapping({"alb_lcu": None}) == (Assumptions(), [])


@given(json_values())
def test_assumptions_from_any_json_never_raise(data):
    assumptions, errors = Assumptions.from_mapping(data)
    for name, bounds in ASSUMPTION_BOUNDS.items():
        assert bounds.low <= getattr(assumptions, name) <= bounds.high
    assert all(e.field and e.message for e in errors)


# -- cost ------------------------------------------------------------------------------------------


def test_single_nat_costs_41_dollars_a_month_by_default():
    cost = estimate_cost(plan(ARTICLE))
    assert item(cost, "NatGateway1") == pytest.approx(730 * 0.045 + 100 * 0.045)  # 37.35
    assert item(cost, "NatEip1") == pytest.approx(730 * 0.005)  # 3.65
    assert nat_items(cost) == pytest.approx(41.00)
    assert cost["nat_comparison"]["choice"] == "single"
    assert cost["nat_comparison"]["nat_monthly_usd"] == 41.00
    (nat,) = [i for i in cost["items"] if i["logical_id"] == "NatGateway1"]
    assert nat["label"] == "NAT gateway (us-east-1a)"
    assert nat["detail"] == "730 h × $0.045 + 100 GB processed × $0.045"


def test_article_cost_items_and_total():
    cost = estimate_cost(plan(ARTICLE))
    assert cost["currency"] == "USD"
    assert cost["effective_date"] == "2026-11-01"
    assert cost["hours_per_month"] == 730
    assert "region_note" not in cost
    assert item(cost, "Vpc") == 0
    assert item(cost, "InternetGateway") == 0
    assert item(cost, "ApiSecret") == pytest.approx(0.40 + 0.05)
    assert item(cost, "ApiInstance") == pytest.approx(730 * 0.0104 + 8 * 0.08, abs=0.005)
    # 1M requests + 100,000 GB-s, and 1M X-Ray traces (0.38 requests/s: all sampled).
    assert item(cost, "LambdaFunction") == pytest.approx(
        0.20 + 100_000 * 0.0000166667 + 5.00, abs=0.005
    )
    assert "free tier" in next(
        i["detail"] for i in cost["items"] if i["logical_id"] == "LambdaFunction"
    )
    assert item(cost, "LambdaLogGroup") == pytest.approx(0.50 + 0.03, abs=0.005)
    exact = sum(i["monthly_usd"] for i in cost["items"])
    assert cost["total_monthly_usd"] == pytest.approx(exact, abs=0.005 * len(cost["items"]))
    assert cost["assumptions"] == dataclasses.asdict(Assumptions())


def test_per_az_doubles_the_nat_gateways_and_addresses_for_two_azs():
    single = estimate_cost(plan(dataclasses.replace(TWO_AZ, nat="single")))
    per_az = estimate_cost(plan(dataclasses.replace(TWO_AZ, nat="per_az")))
    hourly = 730 * 0.045 + 730 * 0.005
    data = 100 * 0.045  # the same traffic, split over the two NAT gateways
    assert nat_items(single) == pytest.approx(hourly + data)
    assert nat_items(per_az) == pytest.approx(2 * hourly + data)
    assert (
        item(per_az, "NatGateway1")
        == item(per_az, "NatGateway2")
        == pytest.approx(730 * 0.045 + 50 * 0.045)
    )
    assert per_az["nat_comparison"]["nat_monthly_usd"] == pytest.approx(77.50)


@pytest.mark.parametrize("gb", [0, 100, 200, 1000])
def test_nat_data_processing_is_linear_in_the_assumption(gb):
    graph = plan(ARTICLE)
    base = item(estimate_cost(graph, Assumptions(nat_gb_per_month=0)), "NatGateway1")
    cost = estimate_cost(graph, Assumptions(nat_gb_per_month=gb))
    assert item(cost, "NatGateway1") - base == pytest.approx(gb * 0.045)
    assert cost["assumptions"]["nat_gb_per_month"] == gb


@pytest.mark.parametrize("nat", ["none", "single", "per_az"])
def test_endpoint_is_billed_per_lambda_az_and_alb_per_hour_and_lcu(nat):
    cost = estimate_cost(plan(dataclasses.replace(TWO_AZ, nat=nat, api_kind="alb")))
    assert item(cost, "SecretsManagerEndpoint") == pytest.approx(730 * 2 * 0.01 + 1 * 0.01)
    assert item(cost, "ApiLoadBalancer") == pytest.approx(730 * 0.0225 + 730 * 1 * 0.008, abs=0.005)
    assert item(cost, "ApiAutoScalingGroup") == pytest.approx(
        2 * (730 * 0.0104 + 8 * 0.08), abs=0.005
    )
    more_lcu = estimate_cost(
        plan(dataclasses.replace(TWO_AZ, api_kind="alb")), Assumptions(alb_lcu=3)
    )
    assert item(more_lcu, "ApiLoadBalancer") == pytest.approx(
        730 * 0.0225 + 730 * 3 * 0.008, abs=0.006
    )


def test_lambda_memory_assumption_changes_compute_cost():
    graph = plan(ARTICLE)
    small = item(estimate_cost(graph, Assumptions(lambda_memory_mb=512)), "LambdaFunction")
    big = item(estimate_cost(graph, Assumptions(lambda_memory_mb=1024)), "LambdaFunction")
    assert big - small == pytest.approx(100_000 * 0.0000166667, abs=0.01)


@pytest.mark.parametrize("kind", ["ec2", "alb"])
@pytest.mark.parametrize("lambda_azs", [1, 2])
def test_no_nat_is_cheaper_by_default(kind, lambda_azs):
    spec = dataclasses.replace(
        TWO_AZ, api_kind=kind, lambda_subnet_cidrs=TWO_AZ.lambda_subnet_cidrs[:lambda_azs]
    )
    single = estimate_cost(plan(dataclasses.replace(spec, nat="single")))
    none = estimate_cost(plan(dataclasses.replace(spec, nat="none")))
    assert none["total_monthly_usd"] < single["total_monthly_usd"]


@pytest.mark.parametrize("kind", ["ec2", "alb"])
@pytest.mark.parametrize("lambda_azs", [1, 2])
@pytest.mark.parametrize("nat", ["single", "per_az"])
@pytest.mark.parametrize(
    "assumptions",
    [Assumptions(), Assumptions(nat_gb_per_month=3.7, endpoint_gb_per_month=42, alb_lcu=0.3)],
    ids=["default", "custom"],
)
def test_nat_comparison_matches_planning_both_designs(kind, lambda_azs, nat, assumptions):
    """The graph-only estimate of "the same design without NAT" (and back) is exact."""
    spec = dataclasses.replace(
        TWO_AZ, api_kind=kind, nat=nat, lambda_subnet_cidrs=TWO_AZ.lambda_subnet_cidrs[:lambda_azs]
    )
    with_nat = estimate_cost(plan(spec), assumptions)
    without_nat = estimate_cost(plan(dataclasses.replace(spec, nat="none")), assumptions)
    difference = with_nat["total_monthly_usd"] - without_nat["total_monthly_usd"]

    forward = with_nat["nat_comparison"]
    assert forward["choice"] == nat
    # Both designs have the same items but the NAT ones, so the estimate is exact to the cent.
    assert forward["without_nat_monthly_usd"] == without_nat["total_monthly_usd"]
    assert forward["delta_monthly_usd"] == pytest.approx(difference, abs=0.011)
    assert forward["with_nat_monthly_usd"] == with_nat["total_monthly_usd"]
    assert forward["nat_monthly_usd"] == pytest.approx(nat_items(with_nat), abs=0.011)
    # The endpoint is not a NAT item: it is in both designs and the detail says it stays.
    assert item(with_nat, "SecretsManagerEndpoint") == item(without_nat, "SecretsManagerEndpoint")
    assert "endpoint is in every design" in forward["detail"]
    assert "plus the Secrets Manager" not in forward["detail"]

    if nat == "single":  # from the no-NAT design, the comparison is with one NAT gateway
        back = without_nat["nat_comparison"]
        assert back["choice"] == "none"
        assert back["compared_with"] == "single"
        assert back["with_nat_monthly_usd"] == with_nat["total_monthly_usd"]
        assert back["delta_monthly_usd"] == pytest.approx(difference, abs=0.011)
        assert "minus the Secrets Manager" not in back["detail"]


def test_cost_is_read_from_the_graph():
    graph = plan(dataclasses.replace(TWO_AZ, nat="per_az"))
    del graph.nodes["NatGateway2"]
    cost = estimate_cost(graph)
    assert "NatGateway2" not in {i["logical_id"] for i in cost["items"]}
    # The remaining gateway now carries all the NAT traffic.
    assert item(cost, "NatGateway1") == pytest.approx(730 * 0.045 + 100 * 0.045)


def test_other_regions_are_priced_as_us_east_1_and_say_so():
    us = estimate_cost(plan(ARTICLE))
    eu = estimate_cost(plan(dataclasses.replace(ARTICLE, region="eu-west-1")))
    assert eu["region"] == "eu-west-1"
    assert "us-east-1" in eu["region_note"] and "eu-west-1" in eu["region_note"]
    assert eu["total_monthly_usd"] == us["total_monthly_usd"]
