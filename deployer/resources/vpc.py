"""``AWS::EC2::VPC``: the VPC, with DNS support and DNS hostnames as the node asks.

CreateVpc takes no idempotency token, so a retried create would make a second VPC: the engine
finds the VPC by its gantry tags before creating, and the tags go in the create call itself.
The two DNS attributes cannot be given to CreateVpc and ModifyVpcAttribute takes one attribute
per call, so check_ready converges them one step per pass, reading each back, which also
repairs them when the create response was lost after the VPC was made.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    LAMBDA_ENI_DELAY,
    describe_by_id,
    error_code,
    find_by_tags,
    is_not_found,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready, RetryLater
from designer.graph import ResourceNode

#: (CloudFormation property, EC2 attribute name, value) in the only order AWS accepts them:
#: DNS hostnames need DNS support, so hostnames go off before support and on after it.
_DNS_STEPS: tuple[tuple[str, str, bool], ...] = (
    ("EnableDnsHostnames", "enableDnsHostnames", False),
    ("EnableDnsSupport", "enableDnsSupport", True),
    ("EnableDnsHostnames", "enableDnsHostnames", True),
    ("EnableDnsSupport", "enableDnsSupport", False),
)

_DNS_WORDS = {"enableDnsSupport": "DNS support", "enableDnsHostnames": "DNS hostnames"}


class VpcHandler:
    type: ClassVar[str] = "AWS::EC2::VPC"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(ctx, node, "describe_vpcs", "Vpcs", "VpcId")

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        vpc = ctx.client("ec2").create_vpc(
            CidrBlock=props["CidrBlock"],
            InstanceTenancy=props.get("InstanceTenancy", "default"),
            TagSpecifications=tag_specifications(ctx, node, "vpc", props),
        )["Vpc"]
        return vpc["VpcId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        vpc = describe_by_id(ctx, "describe_vpcs", "Vpcs", "VpcIds", physical_id)
        if vpc is None:
            return not_visible_yet("VPC", physical_id)
        if vpc.get("State") != "available":
            return Pending(f"VPC is {vpc.get('State', 'pending')}")
        # The DNS attributes are plain booleans in the plan (never Refs), so the node's own
        # properties are the desired values here.
        ec2 = ctx.client("ec2")
        for prop, attribute, value in _DNS_STEPS:
            if node.properties.get(prop) is not value:
                continue
            key = attribute[0].upper() + attribute[1:]
            current = ec2.describe_vpc_attribute(VpcId=physical_id, Attribute=attribute)[key]
            if current.get("Value") is not value:
                ec2.modify_vpc_attribute(VpcId=physical_id, **{key: {"Value": value}})
                verb = "turning on" if value else "turning off"
                return Pending(f"{verb} {_DNS_WORDS[attribute]}")
        return Ready({"VpcId": physical_id, "CidrBlock": vpc["CidrBlock"]})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").delete_vpc(VpcId=physical_id)
        except ClientError as exc:
            if is_not_found(exc):
                return
            if error_code(exc) == "DependencyViolation":
                raise RetryLater(
                    f"VPC {physical_id} still contains something AWS has not released yet (a "
                    f"subnet, security group, gateway or network interface, possibly one made "
                    f"outside Gantry); {LAMBDA_ENI_DELAY}"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if describe_by_id(ctx, "describe_vpcs", "Vpcs", "VpcIds", physical_id) is None:
            return Gone()
        return Pending("VPC is still being deleted")


HANDLER = VpcHandler()
