"""The network handlers (VPC, subnets, internet gateway and its attachment, route tables,
routes, associations, Elastic IPs, NAT gateways) against the moto server over HTTP.

Nodes come from a real plan, driven by ``tests.support.HandlerDriver``: each node's Refs are
resolved by the engine's own ``resolve`` (Ref -> the physical id, Ref(x, attr) -> x's Ready
attribute), and prerequisites are made through the handlers themselves. The last section feeds the handlers answers real AWS gives
but the emulator never does (pending and failed states, DependencyViolation): a botocore
Stubber in front of a real client, which also checks every stubbed answer against AWS's own
service model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from deployer.resources import handler_for
from deployer.resources.base import (
    TAG_DEPLOYMENT,
    TAG_LOGICAL_ID,
    AwsContext,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
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
