"""The network handlers (VPC, subnets, internet gateway and its attachment, route tables,
routes, associations, Elastic IPs, NAT gateways, the Secrets Manager endpoint's read and update)
against the moto server over HTTP.

Nodes come from a real plan, driven by ``tests.support.HandlerDriver``: each node's Refs are
resolved by the engine's own ``resolve`` (Ref -> the physical id, Ref(x, attr) -> x's Ready
attribute), and prerequisites are made through the handlers themselves. The live-stack section
reads resources back with each handler's ``read`` and compares them with what was applied the
way a drift check does (``deployer.drift.compare``), applies design changes through the change
set (``deployer.changes``) and repairs changes made by hand with plain boto3. The last section
feeds the handlers answers real AWS gives but the emulator never does (pending and failed
states, DependencyViolation, a refused retry): a botocore Stubber in front of a real client,
which also checks every stubbed answer against AWS's own service model.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from deployer.changes import Live, change_set
from deployer.constants import ChangeAction
from deployer.drift import ROUTES, compare
from deployer.resources import handler_for
from deployer.resources.base import (
    TAG_DEPLOYMENT,
    TAG_LOGICAL_ID,
    AwsContext,
    CannotUpdate,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from deployer.resources.route import route_text, route_text_of_props
from deployer.resources.route_table import routes_of
from designer.plan import plan
from designer.spec import Spec
from tests.support import HandlerDriver

SPEC = Spec(
    name="demo",
    region="us-east-1",
    vpc_cidr="10.0.0.0/16",
    public_subnet_cidrs=("10.0.0.0/24", "10.0.5.0/24"),
    lambda_subnet_cidrs=("10.0.1.0/24", "10.0.4.0/24"),
    api_subnet_cidrs=("10.0.2.0/24", "10.0.3.0/24"),
    api_port=443,
    nat="single",
    api_kind="alb",
    tags=(("team", "payments"),),
)
SPEC_TAGS = {"team": "payments"}


@pytest.fixture
def dep(aws_context) -> HandlerDriver:
    return HandlerDriver(aws_context(spec_tags=SPEC_TAGS), plan(SPEC))


@pytest.fixture
def ec2(moto_endpoint):
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_endpoint)


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or []}


def assert_gantry_tags(dep: HandlerDriver, logical_id: str, item: dict[str, Any]) -> None:
    tags = tags_of(item)
    assert tags[TAG_DEPLOYMENT] == dep.ctx.deployment_tag
    assert tags[TAG_LOGICAL_ID] == logical_id
    assert tags["Name"] == dep.node(logical_id).meta["name"]
    assert tags["team"] == "payments"


def same_tags(dep: HandlerDriver, logical_id: str, resource_type: str) -> list[dict[str, Any]]:
    """TagSpecifications for making a duplicate by hand, as a lost create response would."""
    return [{"ResourceType": resource_type, "Tags": dep.ctx.tags(dep.node(logical_id))}]


# --- VPC -------------------------------------------------------------------------------------


def test_vpc_lifecycle(dep: HandlerDriver, ec2, aws_context) -> None:
    vpc_id = dep.create("Vpc")
    # Create leaves the VPC as its properties say: nothing is left for check_ready to do.
    ready, reasons = dep.settle("Vpc")
    assert reasons == []
    assert ready.attributes == {"VpcId": vpc_id, "CidrBlock": "10.0.0.0/16"}
    for attribute, key in (
        ("enableDnsSupport", "EnableDnsSupport"),
        ("enableDnsHostnames", "EnableDnsHostnames"),
    ):
        assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[key]["Value"]
    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    assert_gantry_tags(dep, "Vpc", vpc)
    assert vpc["CidrBlock"] == "10.0.0.0/16"

    assert dep.find("Vpc") == [vpc_id]
    # Another deployment's VPC with the same logical id is not ours.
    other = HandlerDriver(aws_context(spec_tags=SPEC_TAGS), dep.graph)
    other.create("Vpc")
    assert dep.find("Vpc") == [vpc_id]
    # A duplicate left by a lost create response is found too, so the engine can remove it.
    duplicate = ec2.create_vpc(
        CidrBlock="10.0.0.0/16", TagSpecifications=same_tags(dep, "Vpc", "vpc")
    )["Vpc"]["VpcId"]
    assert sorted(dep.find("Vpc")) == sorted([vpc_id, duplicate])

    dep.destroy("Vpc")
    assert dep.find("Vpc") == [duplicate]


def test_vpc_with_a_subnet_left_is_retried_not_failed(dep: HandlerDriver) -> None:
    dep.up("Vpc", "LambdaSubnet1")
    with pytest.raises(RetryLater, match="still contains"):
        dep.delete("Vpc")
    dep.destroy("LambdaSubnet1")
    dep.destroy("Vpc")


# --- Subnet ----------------------------------------------------------------------------------


def test_subnet_lifecycle(dep: HandlerDriver, ec2) -> None:
    dep.up("Vpc")
    subnet_id = dep.create("LambdaSubnet1")
    ready, _ = dep.settle("LambdaSubnet1")
    assert ready.attributes == {
        "SubnetId": subnet_id,
        "VpcId": dep.ids["Vpc"],
        "CidrBlock": "10.0.1.0/24",
        "AvailabilityZone": "us-east-1a",
    }
    subnet = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    assert_gantry_tags(dep, "LambdaSubnet1", subnet)
    assert subnet["MapPublicIpOnLaunch"] is False

    assert dep.find("LambdaSubnet1") == [subnet_id]
    assert dep.find("LambdaSubnet2") == []
    duplicate = ec2.create_subnet(
        VpcId=dep.ids["Vpc"],
        CidrBlock="10.0.9.0/24",
        AvailabilityZone="us-east-1a",
        TagSpecifications=same_tags(dep, "LambdaSubnet1", "subnet"),
    )["Subnet"]["SubnetId"]
    assert sorted(dep.find("LambdaSubnet1")) == sorted([subnet_id, duplicate])

    dep.destroy("LambdaSubnet1")
    assert dep.find("LambdaSubnet1") == [duplicate]


def test_private_subnet_never_maps_public_ips_whatever_it_says(dep: HandlerDriver, ec2) -> None:
    """ "Private subnets never map public IPs" does not rest on a property: a private subnet
    whose property says otherwise is made, and updated, without public IPs."""
    dep.up("Vpc")
    dep.node("ApiSubnet1").properties["MapPublicIpOnLaunch"] = True
    subnet_id = dep.create("ApiSubnet1")
    dep.settle("ApiSubnet1")
    assert ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["MapPublicIpOnLaunch"] is False

    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    handler, node = dep.handler("ApiSubnet1"), dep.node("ApiSubnet1")
    handler.update(
        dep.ctx, node, subnet_id, handler.read(dep.ctx, node, subnet_id), dep.props("ApiSubnet1")
    )
    assert ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["MapPublicIpOnLaunch"] is False


def test_public_subnet_maps_public_ips_only_when_asked(dep: HandlerDriver, ec2) -> None:
    dep.up("Vpc", "PublicSubnet1")
    plain = ec2.describe_subnets(SubnetIds=[dep.ids["PublicSubnet1"]])["Subnets"][0]
    assert plain["MapPublicIpOnLaunch"] is False
    dep.node("PublicSubnet2").properties["MapPublicIpOnLaunch"] = True
    subnet_id = dep.create("PublicSubnet2")
    _, reasons = dep.settle("PublicSubnet2")
    assert reasons == []  # set by create itself
    assert ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["MapPublicIpOnLaunch"]


def test_subnet_dependency_violation_names_the_lambda_interfaces(dep: HandlerDriver, ec2) -> None:
    """The words used when a subnet cannot go yet come from the interfaces really in it."""
    from deployer.resources._ec2 import network_interface_holders

    dep.up("Vpc", "LambdaSubnet1")
    subnet_id = dep.ids["LambdaSubnet1"]
    assert "still releasing" in network_interface_holders(dep.ctx, "subnet-id", subnet_id)
    ec2.create_network_interface(SubnetId=subnet_id, Description="AWS Lambda VPC ENI-fn-1a2b")
    text = network_interface_holders(dep.ctx, "subnet-id", subnet_id)
    assert text.startswith("1 network interface (AWS Lambda VPC ENI-fn-1a2b)")


# --- Internet gateway and attachment ---------------------------------------------------------


def test_internet_gateway_and_attachment_lifecycle(dep: HandlerDriver, ec2) -> None:
    dep.up("Vpc")
    igw_id = dep.create("InternetGateway")
    ready, _ = dep.settle("InternetGateway")
    assert ready.attributes == {"InternetGatewayId": igw_id}
    igw = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    assert_gantry_tags(dep, "InternetGateway", igw)
    assert dep.find("InternetGateway") == [igw_id]
    duplicate = ec2.create_internet_gateway(
        TagSpecifications=same_tags(dep, "InternetGateway", "internet-gateway")
    )["InternetGateway"]["InternetGatewayId"]
    assert sorted(dep.find("InternetGateway")) == sorted([igw_id, duplicate])
    ec2.delete_internet_gateway(InternetGatewayId=duplicate)

    # The attachment is untaggable: found by gateway + VPC, id "igw-...|vpc-...".
    assert dep.find("VpcGatewayAttachment") == []
    attachment_id = dep.create("VpcGatewayAttachment")
    assert attachment_id == f"{igw_id}|{dep.ids['Vpc']}"
    ready, _ = dep.settle("VpcGatewayAttachment")
    assert ready.attributes == {}
    assert dep.find("VpcGatewayAttachment") == [attachment_id]
    igw = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    assert [a["VpcId"] for a in igw["Attachments"]] == [dep.ids["Vpc"]]

    # Attached, the gateway cannot be deleted yet: that is a wait, not a failure.
    with pytest.raises(RetryLater, match="still attached"):
        dep.delete("InternetGateway")

    dep.destroy("VpcGatewayAttachment")  # the second detach meets Gateway.NotAttached
    assert dep.find("VpcGatewayAttachment") == []
    dep.destroy("InternetGateway")
    assert dep.find("InternetGateway") == []


# --- Route tables, routes, associations ------------------------------------------------------


def test_route_table_route_and_association_lifecycle(dep: HandlerDriver, ec2) -> None:
    dep.up("Vpc", "InternetGateway", "VpcGatewayAttachment", "PublicSubnet1")
    rtb_id = dep.create("PublicRouteTable")
    ready, _ = dep.settle("PublicRouteTable")
    assert ready.attributes == {"RouteTableId": rtb_id}
    table = ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0]
    assert_gantry_tags(dep, "PublicRouteTable", table)
    assert table["VpcId"] == dep.ids["Vpc"]
    assert dep.find("PublicRouteTable") == [rtb_id]
    duplicate = ec2.create_route_table(
        VpcId=dep.ids["Vpc"], TagSpecifications=same_tags(dep, "PublicRouteTable", "route-table")
    )["RouteTable"]["RouteTableId"]
    assert sorted(dep.find("PublicRouteTable")) == sorted([rtb_id, duplicate])
    ec2.delete_route_table(RouteTableId=duplicate)

    # Route: untaggable, found by table + destination (+ target), id "rtb-...|0.0.0.0/0".
    assert dep.find("PublicDefaultRoute") == []
    route_id = dep.create("PublicDefaultRoute")
    assert route_id == f"{rtb_id}|0.0.0.0/0"
    dep.settle("PublicDefaultRoute")
    assert dep.find("PublicDefaultRoute") == [route_id]
    routes = ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0]["Routes"]
    assert {
        "DestinationCidrBlock": "0.0.0.0/0",
        "GatewayId": dep.ids["InternetGateway"],
    }.items() <= [r for r in routes if r["DestinationCidrBlock"] == "0.0.0.0/0"][0].items()

    # Association: untaggable, found by subnet + table, id "rtbassoc-...".
    assert dep.find("PublicSubnet1RouteTableAssociation") == []
    association_id = dep.create("PublicSubnet1RouteTableAssociation")
    assert association_id.startswith("rtbassoc-")
    dep.settle("PublicSubnet1RouteTableAssociation")
    assert dep.find("PublicSubnet1RouteTableAssociation") == [association_id]

    # While a subnet is associated the table cannot go: a wait, not a failure.
    with pytest.raises(RetryLater, match="still associated"):
        dep.delete("PublicRouteTable")

    dep.destroy("PublicSubnet1RouteTableAssociation")
    assert dep.find("PublicSubnet1RouteTableAssociation") == []
    dep.destroy("PublicDefaultRoute")
    assert dep.find("PublicDefaultRoute") == []
    dep.destroy("PublicRouteTable")
    assert dep.find("PublicRouteTable") == []
    # The route of a table that is gone is gone too.
    dep.delete("PublicDefaultRoute")
    assert isinstance(dep.check_gone("PublicDefaultRoute"), Gone)


def test_route_pointing_elsewhere_is_not_adopted_but_repointed(dep: HandlerDriver, ec2) -> None:
    dep.up("Vpc", "InternetGateway", "VpcGatewayAttachment", "PublicRouteTable")
    rtb_id = dep.ids["PublicRouteTable"]
    stray = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.create_route(RouteTableId=rtb_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=stray)

    assert dep.find("PublicDefaultRoute") == []
    assert dep.create("PublicDefaultRoute") == f"{rtb_id}|0.0.0.0/0"  # RouteAlreadyExists
    dep.settle("PublicDefaultRoute")

    assert dep.find("PublicDefaultRoute") == [f"{rtb_id}|0.0.0.0/0"]
    routes = ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0]["Routes"]
    default = [r for r in routes if r["DestinationCidrBlock"] == "0.0.0.0/0"]
    assert [r["GatewayId"] for r in default] == [dep.ids["InternetGateway"]]


# --- Elastic IP and NAT gateway --------------------------------------------------------------


def test_elastic_ip_and_nat_gateway_lifecycle(dep: HandlerDriver, ec2, aws_context) -> None:
    dep.up("Vpc", "InternetGateway", "VpcGatewayAttachment", "PublicSubnet1")

    allocation_id = dep.create("NatEip1")
    ready, _ = dep.settle("NatEip1")
    address = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
    # The physical id is the AllocationId (what every VPC API takes), not the public IP.
    assert allocation_id.startswith("eipalloc-")
    assert ready.attributes == {"AllocationId": allocation_id, "PublicIp": address["PublicIp"]}
    assert address["Domain"] == "vpc"
    assert_gantry_tags(dep, "NatEip1", address)
    assert dep.find("NatEip1") == [allocation_id]

    nat_id = dep.create("NatGateway1")
    ready, _ = dep.settle("NatGateway1")
    assert ready.attributes == {"NatGatewayId": nat_id}
    nat = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]
    assert_gantry_tags(dep, "NatGateway1", nat)
    assert nat["SubnetId"] == dep.ids["PublicSubnet1"]
    assert [a["AllocationId"] for a in nat["NatGatewayAddresses"]] == [allocation_id]
    assert dep.find("NatGateway1") == [nat_id]

    # Another deployment's NAT gateway is never ours (moto ignores tag filters on
    # DescribeNatGateways; find checks the tags itself).
    other = HandlerDriver(aws_context(spec_tags=SPEC_TAGS), dep.graph)
    other.ids, other.attributes = dict(dep.ids), dict(dep.attributes)
    other.up("NatEip1", "NatGateway1")
    assert dep.find("NatGateway1") == [nat_id]

    duplicate = ec2.create_nat_gateway(
        SubnetId=dep.ids["PublicSubnet1"],
        AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"],
        TagSpecifications=same_tags(dep, "NatGateway1", "natgateway"),
    )["NatGateway"]["NatGatewayId"]
    assert sorted(dep.find("NatGateway1")) == sorted([nat_id, duplicate])
    ec2.delete_nat_gateway(NatGatewayId=duplicate)  # deleted ones are not found
    assert dep.find("NatGateway1") == [nat_id]

    # The NAT gateway goes first (it depends on the address), then the address is released.
    dep.destroy("NatGateway1")
    assert dep.find("NatGateway1") == []
    dep.destroy("NatEip1")
    assert dep.find("NatEip1") == []


def test_lambda_route_through_the_nat_gateway(dep: HandlerDriver, ec2) -> None:
    dep.up(
        "Vpc", "InternetGateway", "VpcGatewayAttachment", "PublicSubnet1", "NatEip1", "NatGateway1"
    )
    dep.up("LambdaRouteTable", "LambdaDefaultRoute")
    rtb_id = dep.ids["LambdaRouteTable"]
    assert dep.find("LambdaDefaultRoute") == [f"{rtb_id}|0.0.0.0/0"]
    routes = ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0]["Routes"]
    default = [r for r in routes if r["DestinationCidrBlock"] == "0.0.0.0/0"]
    assert [r.get("NatGatewayId") for r in default] == [dep.ids["NatGateway1"]]


# --- Live stacks: read, update in place, drift ---------------------------------------------------

NETWORK_TYPES = frozenset(
    {
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::RouteTable",
        "AWS::EC2::Route",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::EIP",
        "AWS::EC2::NatGateway",
        "AWS::EC2::VPCEndpoint",
    }
)
ONE_AZ = dataclasses.replace(
    SPEC,
    public_subnet_cidrs=("10.0.0.0/24",),
    lambda_subnet_cidrs=("10.0.1.0/24",),
    api_subnet_cidrs=("10.0.2.0/24",),
    api_kind="ec2",
)


def network_ids(graph) -> list[str]:
    """The network nodes of a graph, in creation order."""
    return [n.logical_id for n in graph.topological_order() if n.type in NETWORK_TYPES]


def build(dep: HandlerDriver, ec2, logical_ids: list[str]) -> None:
    """Each node made through its handler and settled, as the engine does. The endpoint's
    security group belongs to the security handlers: it is made here with plain boto3."""
    for logical_id in logical_ids:
        if dep.node(logical_id).type == "AWS::EC2::VPCEndpoint" and (
            "EndpointSecurityGroup" not in dep.ids
        ):
            dep.ids["EndpointSecurityGroup"] = ec2.create_security_group(
                GroupName="endpoint", Description="endpoint", VpcId=dep.ids["Vpc"]
            )["GroupId"]
        dep.up(logical_id)


def read(dep: HandlerDriver, logical_id: str, physical_id: str | None = None) -> Any:
    return dep.handler(logical_id).read(
        dep.ctx, dep.node(logical_id), physical_id or dep.ids[logical_id]
    )


def update(dep: HandlerDriver, logical_id: str, before: dict, after: dict | None = None) -> None:
    dep.handler(logical_id).update(
        dep.ctx,
        dep.node(logical_id),
        dep.ids[logical_id],
        before,
        after if after is not None else expected(dep, logical_id),
    )


def planned_routes(dep: HandlerDriver, table: str) -> list[str]:
    """What a drift check expects a route table's ``Routes`` to be: its planned routes."""
    return sorted(
        route_text_of_props(dep.props(node.logical_id))
        for node in dep.graph
        if node.type == "AWS::EC2::Route" and node.properties["RouteTableId"].logical_id == table
    )


def expected(dep: HandlerDriver, logical_id: str) -> dict[str, Any]:
    """What was applied: the resolved properties, and a route table's planned routes."""
    props = dep.props(logical_id)
    if dep.node(logical_id).type == "AWS::EC2::RouteTable":
        props[ROUTES] = planned_routes(dep, logical_id)
    return props


def drift(dep: HandlerDriver, logical_id: str) -> list[str]:
    """The names of the properties a drift check finds changed."""
    live = read(dep, logical_id)
    assert live is not None, logical_id
    return sorted(
        d.property for d in compare(dep.node(logical_id).type, expected(dep, logical_id), live)
    )


def test_every_network_resource_reads_back_as_applied(dep: HandlerDriver, ec2) -> None:
    """After create + settle every planned property is read back unchanged; update with
    before={} (an adopted resource) is harmless everywhere; a deleted resource reads None."""
    built = network_ids(dep.graph)
    build(dep, ec2, built)

    for logical_id in built:
        live = read(dep, logical_id)
        want = expected(dep, logical_id)
        assert set(want) <= set(live), logical_id  # every planned property is read back
        assert compare(dep.node(logical_id).type, want, live) == [], logical_id
    assert read(dep, "PublicRouteTable")[ROUTES] == [f"0.0.0.0/0 -> {dep.ids['InternetGateway']}"]
    assert read(dep, "LambdaRouteTable")[ROUTES] == [f"0.0.0.0/0 -> {dep.ids['NatGateway1']}"]
    assert read(dep, "ApiRouteTable")[ROUTES] == []

    for logical_id in built:
        update(dep, logical_id, {})
        assert drift(dep, logical_id) == [], logical_id

    for logical_id in reversed(built):
        dep.destroy(logical_id)
        assert read(dep, logical_id) is None, logical_id


#: Spec changes from the article's layout whose network part is applied in place, and the
#: network nodes the change set modifies for each (the others are added, replaced, removed).
DESIGN_CHANGES = {
    "tags": (
        dataclasses.replace(SPEC, tags=(("team", "payments"), ("cost-centre", "42"))),
        dataclasses.replace(SPEC, tags=(("team", "platform"), ("owner", "web"))),
        "every tagged node",
    ),
    "az added": (ONE_AZ, SPEC, {"SecretsManagerEndpoint"}),
    "az removed": (SPEC, ONE_AZ, {"SecretsManagerEndpoint"}),
    "nat single -> per_az": (SPEC, dataclasses.replace(SPEC, nat="per_az"), set()),
    "nat per_az -> single": (dataclasses.replace(SPEC, nat="per_az"), SPEC, set()),
}


@pytest.mark.parametrize("name", DESIGN_CHANGES)
def test_a_design_change_is_applied_and_reads_back(name, aws_context, ec2) -> None:
    """The change set between two design versions applied to the network the first one
    built, as the walker applies it (additions and replacements created and in-place changes
    updated in creation order, then the replaced and removed deleted in reverse), then read
    back from AWS: every resource as the new version says, nothing of the old shape left."""
    before_spec, after_spec, modified = DESIGN_CHANGES[name]
    ctx = aws_context(spec_tags=dict(before_spec.tags))
    old = HandlerDriver(ctx, plan(before_spec))
    build(old, ec2, network_ids(old.graph))
    new = HandlerDriver(dataclasses.replace(ctx, spec_tags=dict(after_spec.tags)), plan(after_spec))
    new.ids, new.attributes = dict(old.ids), dict(old.attributes)

    live = {
        lid: Live(node=old.node(lid), physical_id=pid)
        for lid, pid in old.ids.items()
        if lid in old.graph
    }
    changes = change_set(live, new.graph, region="us-east-1").by_id()
    updated, doomed = set(), []
    for logical_id in network_ids(new.graph):
        change = changes.get(logical_id)
        if change is None:
            continue
        if change.action == ChangeAction.MODIFY:
            update(new, logical_id, old.props(logical_id), new.props(logical_id))
            new.settle(logical_id)
            updated.add(logical_id)
        else:
            if change.action == ChangeAction.REPLACE:
                doomed.append(logical_id)
            build(new, ec2, [logical_id])
    for logical_id in reversed(network_ids(old.graph)):
        change = changes.get(logical_id)
        if logical_id in doomed or (change and change.action == ChangeAction.REMOVE):
            old.destroy(logical_id)
            assert read(old, logical_id) is None, logical_id

    if modified == "every tagged node":
        modified = {lid for lid in network_ids(new.graph) if "Tags" in new.node(lid).properties}
    assert updated == modified
    for logical_id in network_ids(new.graph):
        assert drift(new, logical_id) == [], logical_id
    # Every subnet has exactly one explicit route table, the planned one.
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [new.ids["Vpc"]]}])
    associated = Counter(
        a["SubnetId"] for t in tables["RouteTables"] for a in t["Associations"] if a.get("SubnetId")
    )
    subnets = {new.ids[n.logical_id] for n in new.graph if n.type == "AWS::EC2::Subnet"}
    assert associated == Counter(subnets)
    if name == "tags":
        tags = tags_of(ec2.describe_vpcs(VpcIds=[new.ids["Vpc"]])["Vpcs"][0])
        assert (tags["team"], tags["owner"], "cost-centre" in tags) == ("platform", "web", False)
        assert tags[TAG_DEPLOYMENT] == ctx.deployment_tag  # never removed


def test_changes_made_by_hand_show_as_drift_and_update_puts_them_back(
    dep: HandlerDriver, ec2
) -> None:
    built = network_ids(dep.graph)
    build(dep, ec2, built)
    ids = dep.ids
    stray_igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    stray_group = ec2.create_security_group(
        GroupName="stray", Description="stray", VpcId=ids["Vpc"]
    )["GroupId"]

    # By hand: DNS off, a tag taken off, a tag added, public IPs on in a private subnet, a
    # route added and a planned one repointed, a tag changed, the endpoint's subnets and groups.
    ec2.modify_vpc_attribute(VpcId=ids["Vpc"], EnableDnsHostnames={"Value": False})
    ec2.modify_vpc_attribute(VpcId=ids["Vpc"], EnableDnsSupport={"Value": False})
    ec2.delete_tags(Resources=[ids["Vpc"]], Tags=[{"Key": "team"}])
    ec2.create_tags(Resources=[ids["LambdaSubnet1"]], Tags=[{"Key": "by-hand", "Value": "1"}])
    ec2.modify_subnet_attribute(SubnetId=ids["LambdaSubnet1"], MapPublicIpOnLaunch={"Value": True})
    ec2.create_route(
        RouteTableId=ids["ApiRouteTable"], DestinationCidrBlock="0.0.0.0/0", GatewayId=stray_igw
    )
    ec2.create_route(
        RouteTableId=ids["LambdaRouteTable"],
        DestinationCidrBlock="192.168.0.0/16",
        GatewayId=stray_igw,
    )
    ec2.replace_route(
        RouteTableId=ids["LambdaRouteTable"], DestinationCidrBlock="0.0.0.0/0", GatewayId=stray_igw
    )
    ec2.create_tags(Resources=[ids["NatGateway1"]], Tags=[{"Key": "team", "Value": "someone"}])
    ec2.delete_tags(Resources=[ids["NatEip1"], ids["InternetGateway"]], Tags=[{"Key": "Name"}])
    ec2.modify_vpc_endpoint(
        VpcEndpointId=ids["SecretsManagerEndpoint"],
        RemoveSubnetIds=[ids["LambdaSubnet2"]],
        AddSecurityGroupIds=[stray_group],
    )

    found = {lid: drift(dep, lid) for lid in built}
    assert {lid: names for lid, names in found.items() if names} == {
        "Vpc": ["EnableDnsHostnames", "EnableDnsSupport", "Tags"],
        "LambdaSubnet1": ["MapPublicIpOnLaunch", "Tags"],
        "ApiRouteTable": [ROUTES],
        "LambdaRouteTable": [ROUTES],
        "LambdaDefaultRoute": ["NatGatewayId"],
        "NatGateway1": ["Tags"],
        "NatEip1": ["Tags"],
        "InternetGateway": ["Tags"],
        "SecretsManagerEndpoint": ["SecurityGroupIds", "SubnetIds"],
    }
    assert read(dep, "LambdaRouteTable")[ROUTES] == [
        f"0.0.0.0/0 -> {stray_igw}",
        f"192.168.0.0/16 -> {stray_igw}",
    ]
    # check_ready only looks: a drifted resource is still ready, and still drifted.
    assert isinstance(dep.check("Vpc"), Ready) and isinstance(dep.check("LambdaSubnet1"), Ready)
    assert drift(dep, "Vpc") == ["EnableDnsHostnames", "EnableDnsSupport", "Tags"]

    # The repair: each drifted resource updated from what was read to what was applied, in
    # creation order (a table before its routes), as a deploy of the unchanged design does.
    for logical_id in built:
        if found[logical_id]:
            update(dep, logical_id, read(dep, logical_id))
    assert {lid: names for lid in built if (names := drift(dep, lid))} == {}
    assert (
        tags_of(ec2.describe_subnets(SubnetIds=[ids["LambdaSubnet1"]])["Subnets"][0]).get("by-hand")
        is None
    )
    assert read(dep, "LambdaRouteTable")[ROUTES] == [f"0.0.0.0/0 -> {ids['NatGateway1']}"]


def test_an_adopted_vpc_is_converged_from_nothing(dep: HandlerDriver, ec2) -> None:
    """A create whose answer was lost leaves a VPC with its tags but without the DNS
    hostnames create would have turned on: found by its tags, update(before={}) finishes it."""
    lost = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=same_tags(dep, "Vpc", "vpc"))
    vpc_id = lost["Vpc"]["VpcId"]
    assert dep.find("Vpc") == [vpc_id]
    dep.ids["Vpc"] = vpc_id
    assert drift(dep, "Vpc") == ["EnableDnsHostnames"]
    update(dep, "Vpc", {})
    assert drift(dep, "Vpc") == []


def test_a_route_follows_its_target_in_place(dep: HandlerDriver, ec2) -> None:
    """A NAT gateway replaced: its route is repointed with ReplaceRoute (same route, same
    physical id), and one deleted meanwhile is made again."""
    build(dep, ec2, ["Vpc", "InternetGateway", "VpcGatewayAttachment", "PublicSubnet1"])
    build(dep, ec2, ["NatEip1", "NatGateway1", "LambdaRouteTable", "LambdaDefaultRoute"])
    route_id = dep.ids["LambdaDefaultRoute"]
    applied = dep.props("LambdaDefaultRoute")
    replacement = ec2.create_nat_gateway(
        SubnetId=dep.ids["PublicSubnet1"],
        AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"],
    )["NatGateway"]["NatGatewayId"]
    moved = {**applied, "NatGatewayId": replacement}

    update(dep, "LambdaDefaultRoute", applied, moved)
    assert read(dep, "LambdaDefaultRoute")["NatGatewayId"] == replacement
    assert dep.find("LambdaDefaultRoute") == [] and dep.ids["LambdaDefaultRoute"] == route_id
    assert read(dep, "LambdaRouteTable")[ROUTES] == [f"0.0.0.0/0 -> {replacement}"]

    ec2.delete_route(RouteTableId=dep.ids["LambdaRouteTable"], DestinationCidrBlock="0.0.0.0/0")
    assert read(dep, "LambdaDefaultRoute") is None
    update(dep, "LambdaDefaultRoute", moved, applied)
    assert isinstance(dep.check("LambdaDefaultRoute"), Ready)
    assert drift(dep, "LambdaDefaultRoute") == []


def test_a_subnet_in_a_table_that_is_not_ours_is_refused(dep: HandlerDriver, ec2) -> None:
    """Moving a subnet between route tables is for this deployment's own tables only: one in
    somebody else's table is refused as AWS refuses it, and stays where it was."""
    build(dep, ec2, ["Vpc", "LambdaSubnet1", "LambdaRouteTable"])
    theirs = ec2.create_route_table(VpcId=dep.ids["Vpc"])["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=theirs, SubnetId=dep.ids["LambdaSubnet1"])

    with pytest.raises(ClientError, match="Resource.AlreadyAssociated") as caught:
        dep.create("LambdaSubnet1RouteTableAssociation")
    assert theirs in str(caught.value)
    table = ec2.describe_route_tables(RouteTableIds=[theirs])["RouteTables"][0]
    assert [a["SubnetId"] for a in table["Associations"]] == [dep.ids["LambdaSubnet1"]]


def test_a_move_whose_answer_was_lost_ends_as_planned(aws_context, ec2, sandbox) -> None:
    """NAT single -> per_az moves a subnet to its new route table. AWS made the move but its
    answer was lost (the sandbox answers 502 after moto did it), so botocore asks again and
    AWS answers that the old association is gone: the subnet in its new table is the result,
    not a failure."""
    from deployer.aws import client_factory

    ctx = aws_context(spec_tags=SPEC_TAGS)
    single = HandlerDriver(ctx, GRAPH)
    build(
        single,
        ec2,
        ["Vpc", "LambdaSubnet1", "LambdaRouteTable", "LambdaSubnet1RouteTableAssociation"],
    )
    through_sandbox = dataclasses.replace(
        ctx, client=client_factory(region="us-east-1", endpoint_url=sandbox.url)
    )
    per_az = HandlerDriver(through_sandbox, plan(dataclasses.replace(SPEC, nat="per_az")))
    per_az.ids, per_az.attributes = dict(single.ids), dict(single.attributes)
    build(per_az, ec2, ["LambdaRouteTable1"])
    sandbox.config(
        lose_response_rate=1.0,
        lose_mode="502",
        actions=["ReplaceRouteTableAssociation"],
        max_faults=1,
    )

    build(per_az, ec2, ["LambdaSubnet1RouteTableAssociation"])

    assert sandbox.stats()["faults"]["lose_response"] == 1
    assert drift(per_az, "LambdaSubnet1RouteTableAssociation") == []
    single.destroy("LambdaSubnet1RouteTableAssociation")  # the old one: already gone
    table = ec2.describe_route_tables(RouteTableIds=[per_az.ids["LambdaRouteTable1"]])
    assert [a["SubnetId"] for a in table["RouteTables"][0]["Associations"]] == [
        per_az.ids["LambdaSubnet1"]
    ]


def test_route_text_is_one_spelling_for_described_and_planned_routes() -> None:
    assert route_text({"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1"}) == (
        "0.0.0.0/0 -> nat-1"
    )
    described = {
        "DestinationCidrBlock": "10.9.0.0/16",
        "InstanceId": "i-1",
        "InstanceOwnerId": "123456789012",
        "NetworkInterfaceId": "eni-1",
        "Origin": "CreateRoute",
        "State": "active",
    }
    assert (
        route_text(described)
        == route_text_of_props({"RouteTableId": "rtb-1", **described})
        == ("10.9.0.0/16 -> i-1")
    )
    assert route_text(
        {"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-1"}
    ) == ("::/0 -> eigw-1")
    assert (
        route_text({"DestinationPrefixListId": "pl-1", "GatewayId": "vpce-1"}) == "pl-1 -> vpce-1"
    )
    table = {
        "Routes": [
            {
                "DestinationCidrBlock": "10.0.0.0/16",
                "GatewayId": "local",
                "Origin": "CreateRouteTable",
            },
            {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "Origin": "CreateRoute"},
        ]
    }
    assert routes_of(table) == ["0.0.0.0/0 -> igw-1"]


# --- Answers only real AWS gives ---------------------------------------------------------------


@pytest.fixture
def stubbed(moto_endpoint) -> Callable[[str], tuple[AwsContext, Stubber]]:
    """An AwsContext whose EC2 client answers from a Stubber (validated against the service
    model) for states the emulator cannot produce."""
    client = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_endpoint)
    stubber = Stubber(client)

    def make(deployment_tag: str = "gd-stub") -> tuple[AwsContext, Stubber]:
        ctx = AwsContext(deployment_tag=deployment_tag, region="us-east-1", client=lambda _: client)
        return ctx, stubber

    with stubber:
        yield make
    stubber.assert_no_pending_responses()


NAT_ID = "nat-0123456789abcdef0"
GRAPH = plan(SPEC)


def nat_with(**fields: Any) -> dict[str, Any]:
    return {"NatGateways": [{"NatGatewayId": NAT_ID, **fields}]}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"State": "pending"}, Pending("NAT gateway is pending; AWS takes 1-3 minutes")),
        ({"State": "available"}, Ready({"NatGatewayId": NAT_ID})),
        (
            {
                "State": "failed",
                "FailureCode": "InsufficientFreeAddressesInSubnet",
                "FailureMessage": "Subnet has insufficient free addresses to create this NAT gateway",
            },
            Failed(
                f"NAT gateway {NAT_ID} failed: Subnet has insufficient free addresses to create "
                "this NAT gateway (InsufficientFreeAddressesInSubnet)"
            ),
        ),
        (
            {"State": "deleted"},
            Failed(f"NAT gateway {NAT_ID} is deleted; something outside Gantry deleted it"),
        ),
    ],
)
def test_nat_gateway_states(stubbed, fields, expected) -> None:
    ctx, stubber = stubbed()
    stubber.add_response("describe_nat_gateways", nat_with(**fields), {"NatGatewayIds": [NAT_ID]})
    node = GRAPH["NatGateway1"]
    assert handler_for(node.type).check_ready(ctx, node, NAT_ID) == expected


def test_nat_gateway_not_found_is_gone_and_deleting_is_pending(stubbed) -> None:
    ctx, stubber = stubbed()
    node = GRAPH["NatGateway1"]
    handler = handler_for(node.type)
    stubber.add_response("describe_nat_gateways", nat_with(State="deleting"))
    result = handler.check_gone(ctx, node, NAT_ID)
    assert isinstance(result, Pending) and result.reason.startswith("NAT gateway is deleting")
    stubber.add_client_error("describe_nat_gateways", "NatGatewayNotFound")
    assert handler.check_gone(ctx, node, NAT_ID) == Gone()
    # Deleting one that is already deleting calls nothing more.
    stubber.add_response("describe_nat_gateways", nat_with(State="deleting"))
    handler.delete(ctx, node, NAT_ID)


def test_nat_gateway_find_ignores_deleting_ones(stubbed) -> None:
    ctx, stubber = stubbed()
    node = GRAPH["NatGateway1"]
    tags = ctx.tags(node)
    stubber.add_response(
        "describe_nat_gateways",
        {
            "NatGateways": [
                {"NatGatewayId": "nat-1", "State": "available", "Tags": tags},
                {"NatGatewayId": "nat-2", "State": "deleting", "Tags": tags},
                {"NatGatewayId": "nat-3", "State": "failed", "Tags": tags},
            ]
        },
    )
    assert handler_for(node.type).find(ctx, node, {}) == ["nat-1", "nat-3"]


def test_blackhole_route_waits_for_its_target(stubbed) -> None:
    ctx, stubber = stubbed()
    node = GRAPH["LambdaDefaultRoute"]
    stubber.add_response(
        "describe_route_tables",
        {
            "RouteTables": [
                {
                    "RouteTableId": "rtb-1",
                    "Routes": [
                        {
                            "DestinationCidrBlock": "0.0.0.0/0",
                            "NatGatewayId": NAT_ID,
                            "State": "blackhole",
                        }
                    ],
                }
            ]
        },
    )
    assert handler_for(node.type).check_ready(ctx, node, "rtb-1|0.0.0.0/0") == Pending(
        "route target not yet available"
    )


def test_pending_vpc_and_subnet(stubbed) -> None:
    ctx, stubber = stubbed()
    stubber.add_response("describe_vpcs", {"Vpcs": [{"VpcId": "vpc-1", "State": "pending"}]})
    stubber.add_response(
        "describe_subnets", {"Subnets": [{"SubnetId": "subnet-1", "State": "pending"}]}
    )
    stubber.add_client_error("describe_vpcs", "InvalidVpcID.NotFound")
    vpc, subnet = GRAPH["Vpc"], GRAPH["LambdaSubnet1"]
    assert handler_for(vpc.type).check_ready(ctx, vpc, "vpc-1") == Pending("VPC is pending")
    assert handler_for(subnet.type).check_ready(ctx, subnet, "subnet-1") == Pending(
        "subnet is pending"
    )
    # Right after a create EC2 may not show the resource yet: pending, not failed.
    result = handler_for(vpc.type).check_ready(ctx, vpc, "vpc-2")
    assert isinstance(result, Pending) and "vpc-2" in result.reason


def test_subnet_held_by_lambda_interfaces_is_retried(stubbed) -> None:
    ctx, stubber = stubbed()
    node = GRAPH["LambdaSubnet1"]
    stubber.add_client_error("delete_subnet", "DependencyViolation")
    stubber.add_response(
        "describe_network_interfaces",
        {
            "NetworkInterfaces": [
                {
                    "NetworkInterfaceId": "eni-1",
                    "InterfaceType": "lambda",
                    "Description": "AWS Lambda VPC ENI-demo-lambda-function-1a2b",
                }
            ]
        },
    )
    with pytest.raises(RetryLater) as caught:
        handler_for(node.type).delete(ctx, node, "subnet-1")
    assert caught.value.reason == (
        "subnet subnet-1 is still used by 1 network interface (AWS Lambda VPC "
        "ENI-demo-lambda-function-1a2b); AWS releases a deleted Lambda function's network "
        "interfaces within ~20-40 minutes"
    )


@pytest.mark.parametrize("code", ["InvalidIPAddress.InUse", "DependencyViolation"])
def test_elastic_ip_in_use_is_retried(stubbed, code) -> None:
    ctx, stubber = stubbed()
    node = GRAPH["NatEip1"]
    stubber.add_client_error("release_address", code)
    with pytest.raises(RetryLater, match="NAT gateway that uses this address is still being"):
        handler_for(node.type).delete(ctx, node, "eipalloc-1")


def test_elastic_ip_auth_failure_is_retried_only_while_associated(stubbed) -> None:
    ctx, stubber = stubbed()
    node = GRAPH["NatEip1"]
    handler = handler_for(node.type)
    stubber.add_client_error("release_address", "AuthFailure")
    stubber.add_response(
        "describe_addresses",
        {"Addresses": [{"AllocationId": "eipalloc-1", "AssociationId": "eipassoc-1"}]},
    )
    with pytest.raises(RetryLater):
        handler.delete(ctx, node, "eipalloc-1")
    # Not associated: a real permission problem, which must surface.
    stubber.add_client_error("release_address", "AuthFailure")
    stubber.add_response("describe_addresses", {"Addresses": [{"AllocationId": "eipalloc-1"}]})
    with pytest.raises(Exception, match="AuthFailure"):
        handler.delete(ctx, node, "eipalloc-1")


def test_detach_while_addresses_are_mapped_is_retried(stubbed) -> None:
    ctx, stubber = stubbed()
    node = GRAPH["VpcGatewayAttachment"]
    stubber.add_client_error("detach_internet_gateway", "DependencyViolation")
    with pytest.raises(RetryLater, match="public addresses mapped"):
        handler_for(node.type).delete(ctx, node, "igw-1|vpc-1")


@pytest.mark.parametrize(
    ("logical_id", "physical_id", "before", "after", "words"),
    [
        ("Vpc", "vpc-1", {"CidrBlock": "10.0.0.0/16"}, {"CidrBlock": "10.1.0.0/16"}, "CidrBlock"),
        (
            "Vpc",
            "vpc-1",
            {"InstanceTenancy": "default"},
            {"InstanceTenancy": "dedicated"},
            "tenancy",
        ),
        (
            "LambdaSubnet1",
            "subnet-1",
            {"AvailabilityZone": "us-east-1a"},
            {"AvailabilityZone": "us-east-1b"},
            "AvailabilityZone",
        ),
        ("LambdaRouteTable", "rtb-1", {"VpcId": "vpc-1"}, {"VpcId": "vpc-2"}, "VpcId"),
        (
            "LambdaDefaultRoute",
            "rtb-1|0.0.0.0/0",
            {"RouteTableId": "rtb-1"},
            {"RouteTableId": "rtb-2"},
            "RouteTableId",
        ),
        (
            "LambdaSubnet1RouteTableAssociation",
            "rtbassoc-1",
            {"RouteTableId": "rtb-1"},
            {"RouteTableId": "rtb-2"},
            "RouteTableId",
        ),
        ("VpcGatewayAttachment", "igw-1|vpc-1", {}, {"InternetGatewayId": "igw-2"}, "igw-2"),
        ("NatEip1", "eipalloc-1", {"Domain": "vpc"}, {"Domain": "standard"}, "domain"),
        ("NatGateway1", NAT_ID, {"SubnetId": "subnet-1"}, {"SubnetId": "subnet-2"}, "SubnetId"),
        (
            "SecretsManagerEndpoint",
            "vpce-1",
            {"ServiceName": "com.amazonaws.us-east-1.secretsmanager"},
            {"ServiceName": "com.amazonaws.us-east-1.ssm"},
            "ServiceName",
        ),
    ],
)
def test_what_cannot_change_in_place_is_refused_before_any_call(
    stubbed, logical_id, physical_id, before, after, words
) -> None:
    """A difference AWS can only make on a new resource raises CannotUpdate, and nothing has
    been called (the Stubber has no answer queued: any call would fail the test)."""
    ctx, _ = stubbed()
    node = GRAPH[logical_id]
    with pytest.raises(CannotUpdate, match=words):
        handler_for(node.type).update(ctx, node, physical_id, before, after)


def test_a_gateway_endpoints_route_is_removed_through_the_endpoint(stubbed) -> None:
    """DeleteRoute cannot remove the route a gateway endpoint adds: the table is taken off
    the endpoint instead (moto keeps such routes either way, so the call is what is checked)."""
    ctx, stubber = stubbed()
    node = GRAPH["ApiRouteTable"]
    stubber.add_response(
        "modify_vpc_endpoint",
        {"Return": True},
        {"VpcEndpointId": "vpce-1", "RemoveRouteTableIds": ["rtb-1"]},
    )
    stubber.add_response(
        "delete_route", {}, {"RouteTableId": "rtb-1", "DestinationCidrBlock": "0.0.0.0/0"}
    )
    before = {ROUTES: ["pl-63a5400a -> vpce-1", "0.0.0.0/0 -> igw-1"]}
    handler_for(node.type).update(ctx, node, "rtb-1", before, {ROUTES: []})


def test_an_endpoint_change_retried_after_a_lost_answer_is_done(stubbed) -> None:
    """AWS refuses the retried ModifyVpcEndpoint (its first attempt added the subnet): the
    endpoint as described now has the change, so the update is done; an endpoint without it
    still fails."""
    ctx, stubber = stubbed()
    node = GRAPH["SecretsManagerEndpoint"]
    handler = handler_for(node.type)
    before = {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    after = {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}

    def described(subnets: list[str]) -> dict[str, Any]:
        endpoint = {
            "VpcEndpointId": "vpce-1",
            "State": "available",
            "SubnetIds": subnets,
            "Groups": [{"GroupId": "sg-1", "GroupName": "endpoint"}],
        }
        return {"VpcEndpoints": [endpoint]}

    for now, fails in ((["subnet-1", "subnet-2"], False), (["subnet-1"], True)):
        stubber.add_response("describe_vpc_endpoints", described(["subnet-1"]))
        stubber.add_client_error(
            "modify_vpc_endpoint",
            "DuplicateSubnetsInSameZone",
            expected_params={"VpcEndpointId": "vpce-1", "AddSubnetIds": ["subnet-2"]},
        )
        stubber.add_response("describe_vpc_endpoints", described(now))
        if fails:
            with pytest.raises(ClientError, match="DuplicateSubnetsInSameZone"):
                handler.update(ctx, node, "vpce-1", before, after)
        else:
            handler.update(ctx, node, "vpce-1", before, after)


def test_every_plan_network_type_has_a_handler() -> None:
    """The handlers here cover every network type a plan with NAT emits."""
    types = {
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::RouteTable",
        "AWS::EC2::Route",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::EIP",
        "AWS::EC2::NatGateway",
    }
    graph = plan(dataclasses.replace(SPEC, nat="single"))
    assert types <= {n.type for n in graph}
    for type_name in types:
        assert handler_for(type_name).type == type_name
