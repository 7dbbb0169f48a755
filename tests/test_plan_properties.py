"""Properties of the plan over every valid spec: the invariants AWS and the design impose.

Specs come from ``tests.strategies.valid_specs`` (every region, NAT choice, API kind, AZ count,
subnet size and placement) and go through the real validator, exactly like a user's input.
"""

from __future__ import annotations

import ipaddress
import itertools

from hypothesis import given, settings

from designer.cost import estimate_cost
from designer.graph import Ref, ResourceGraph
from designer.plan import GROUPS, plan, refs_in
from designer.regions import availability_zones
from designer.spec import Spec, validate_spec
from designer.tables import route_tables, security_group_rules
from tests.strategies import valid_specs


def to_spec(data: dict) -> Spec:
    result = validate_spec(data)
    assert result.spec is not None, result.errors_by_field()
    return result.spec


def subnet_networks(graph: ResourceGraph) -> dict[str, ipaddress.IPv4Network]:
    return {
        n.logical_id: ipaddress.IPv4Network(n.properties["CidrBlock"])
        for n in graph.of_type("AWS::EC2::Subnet")
    }


@settings(max_examples=300)
@given(valid_specs())
def test_plan_of_any_valid_spec_is_a_sound_graph(data):
    spec = to_spec(data)
    graph = plan(spec)

    # Every depends_on points at a node, every Ref is a dependency, and the graph is acyclic
    # (topological_order raises on a cycle) with dependencies created first.
    for node in graph:
        assert all(dep in graph for dep in node.depends_on), node.logical_id
        for ref in refs_in(node.properties):
            assert ref.logical_id in node.depends_on, (node.logical_id, ref.logical_id)
        assert node.meta["group"] in GROUPS
    order = [n.logical_id for n in graph.topological_order()]
    assert len(order) == len(graph)
    position = {lid: i for i, lid in enumerate(order)}
    for node in graph:
        assert all(position[dep] < position[node.logical_id] for dep in node.depends_on)

    # Subnets: inside the VPC, disjoint, never mapping public IPs, one per AZ in list order.
    vpc = ipaddress.IPv4Network(graph["Vpc"].properties["CidrBlock"])
    networks = subnet_networks(graph)
    for lid, net in networks.items():
        assert net.subnet_of(vpc), (lid, net, vpc)
    for (a, na), (b, nb) in itertools.combinations(networks.items(), 2):
        assert not na.overlaps(nb), (a, na, b, nb)
    azs = availability_zones(spec.region)
    for subnet in graph.of_type("AWS::EC2::Subnet"):
        assert subnet.properties["MapPublicIpOnLaunch"] is False
        assert subnet.properties["AvailabilityZone"] == azs[subnet.meta["index"] - 1]
    roles = [s.meta["role"] for s in graph.of_type("AWS::EC2::Subnet")]
    assert roles.count("lambda") == len(spec.lambda_subnet_cidrs)
    assert roles.count("api") == len(spec.api_subnet_cidrs)
    expected_public = 0 if spec.nat == "none" else len(spec.public_subnet_cidrs)
    assert roles.count("public") == expected_public

    # The internet path exists exactly when NAT is on, and only for the Lambda subnets.
    nats = graph.of_type("AWS::EC2::NatGateway")
    expected_nats = {"none": 0, "single": 1, "per_az": len(spec.lambda_subnet_cidrs)}[spec.nat]
    assert len(nats) == expected_nats
    assert ("InternetGateway" in graph) == (spec.nat != "none")
    # The API reads its credential through the endpoint whatever the NAT choice.
    assert "SecretsManagerEndpoint" in graph
    for route in graph.of_type("AWS::EC2::Route"):
        table = graph[route.properties["RouteTableId"].logical_id]
        assert table.meta["role"] in ("lambda", "public")
        if "NatGatewayId" in route.properties:
            nat = graph[route.properties["NatGatewayId"].logical_id]
            if spec.nat == "per_az":
                assert nat.meta["az"] == table.meta["az"]

    # Security: SG-Lambda admits nothing, SG-API admits SG-Lambda on the API port only.
    groups = {g["logical_id"]: g for g in security_group_rules(graph)}
    assert groups["LambdaSecurityGroup"]["ingress"] == []
    assert [(r["port"], r["peer_logical_id"]) for r in groups["ApiSecurityGroup"]["ingress"]] == [
        (spec.api_port, "LambdaSecurityGroup")
    ]
    tables = {t["logical_id"]: t for t in route_tables(graph)}
    assert tables["ApiRouteTable"]["routes"] == [
        {"destination": str(vpc), "target": "local", "target_logical_id": None}
    ]

    # The API's placement follows the API kind.
    if spec.api_kind == "alb":
        subnets = graph["ApiLoadBalancer"].properties["Subnets"]
        assert subnets == [Ref(f"ApiSubnet{i + 1}") for i in range(len(spec.api_subnet_cidrs))]
        assert len(subnets) >= 2
    else:
        assert graph["ApiInstance"].properties["SubnetId"] == Ref("ApiSubnet1")

    # Names fit AWS limits: Lambda function names are at most 64 characters.
    assert len(graph["LambdaFunction"].properties["FunctionName"]) <= 64


@given(valid_specs())
def test_plan_is_deterministic_and_its_views_never_fail(data):
    spec = to_spec(data)
    first = plan(spec)
    assert first.to_json() == plan(spec).to_json()
    cost = estimate_cost(first)
    assert cost["total_monthly_usd"] >= 0
    assert all(i["monthly_usd"] >= 0 for i in cost["items"])
    comparison = cost["nat_comparison"]
    assert comparison["choice"] == spec.nat
    spread = comparison["with_nat_monthly_usd"] - comparison["without_nat_monthly_usd"]
    assert abs(comparison["delta_monthly_usd"] - spread) <= 0.011
