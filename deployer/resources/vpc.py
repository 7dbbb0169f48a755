"""``AWS::EC2::VPC``: the VPC, with DNS support and DNS hostnames as the node asks.

CreateVpc takes no idempotency token, so a retried create would make a second VPC: the engine
finds the VPC by its gantry tags before creating, and the tags go in the create call itself.
The two DNS attributes cannot be given to CreateVpc and ModifyVpcAttribute takes one attribute
per call, so create sets the ones that differ from what CreateVpc gives a new VPC (support on,
hostnames off: AWS's documented defaults for a non-default VPC), and ``update`` sets any that
differ later; an adopted VPC (a create whose answer was lost) gets both through ``update``.

In place: the DNS attributes, the tenancy from ``dedicated`` to ``default`` (the only change
AWS allows; any other raises CannotUpdate), and the tags. The CIDR block is create-only: a new VPC.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    LAMBDA_ENI_DELAY,
    Ec2Update,
    describe_by_id,
    error_code,
    find_by_tags,
    is_not_found,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources._update import changed
from deployer.resources.base import (
    AwsContext,
    CannotUpdate,
    Created,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

#: (CloudFormation property, EC2 attribute name, value) in the only order AWS accepts them:
#: DNS hostnames need DNS support, so hostnames go off before support and on after it.
_DNS_STEPS: tuple[tuple[str, str, bool], ...] = (
    ("EnableDnsHostnames", "enableDnsHostnames", False),
    ("EnableDnsSupport", "enableDnsSupport", True),
    ("EnableDnsHostnames", "enableDnsHostnames", True),
    ("EnableDnsSupport", "enableDnsSupport", False),
)

#: What CreateVpc gives a new (non-default) VPC, per the EC2 API reference.
_CREATED_DNS = {"EnableDnsSupport": True, "EnableDnsHostnames": False}


def _attribute_key(attribute: str) -> str:
    """``enableDnsSupport`` -> ``EnableDnsSupport``: the key DescribeVpcAttribute answers
    under and ModifyVpcAttribute takes (also the CloudFormation property's name)."""
    return attribute[0].upper() + attribute[1:]


class VpcHandler(Ec2Update):
    type: ClassVar[str] = "AWS::EC2::VPC"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(ctx, node, "describe_vpcs", "Vpcs", "VpcId")

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        vpc = ctx.client("ec2").create_vpc(
            CidrBlock=props["CidrBlock"],
            InstanceTenancy=props.get("InstanceTenancy", "default"),
            TagSpecifications=tag_specifications(ctx, node, "vpc", props),
        )["Vpc"]
        # Everything but the DNS attributes was in the create call.
        self.update(ctx, node, vpc["VpcId"], {**props, **_CREATED_DNS}, props)
        if vpc.get("State") == "available":  # AWS usually answers pending: then it is looked at
            return Created(vpc["VpcId"], {"VpcId": vpc["VpcId"], "CidrBlock": vpc["CidrBlock"]})
        return vpc["VpcId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        vpc = describe_by_id(ctx, "describe_vpcs", "Vpcs", "VpcIds", physical_id)
        if vpc is None:
            return not_visible_yet("VPC", physical_id)
        if vpc.get("State") != "available":
            return Pending(f"VPC is {vpc.get('State', 'pending')}")
        return Ready({"VpcId": physical_id, "CidrBlock": vpc["CidrBlock"]})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """The VPC's CIDR, tenancy and tags (one DescribeVpcs), and its two DNS attributes
        (one DescribeVpcAttribute each: AWS reports them nowhere else)."""
        vpc = describe_by_id(ctx, "describe_vpcs", "Vpcs", "VpcIds", physical_id)
        if vpc is None:
            return None
        ec2 = ctx.client("ec2")
        props: dict[str, Any] = {
            "CidrBlock": vpc["CidrBlock"],
            "InstanceTenancy": vpc.get("InstanceTenancy", "default"),
            "Tags": vpc.get("Tags") or [],
        }
        for attribute in ("enableDnsSupport", "enableDnsHostnames"):
            key = _attribute_key(attribute)
            try:
                answer = ec2.describe_vpc_attribute(VpcId=physical_id, Attribute=attribute)
            except ClientError as exc:
                if is_not_found(exc):  # deleted between the two calls
                    return None
                raise
            props[key] = bool(answer[key].get("Value"))
        return props

    def change(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        # The tenancy is set by CreateVpc and AWS lets nobody make it dedicated later, so only
        # a known difference (dedicated -> default) needs a call.
        tenancy = after.get("InstanceTenancy")
        retenant = (
            "InstanceTenancy" in before
            and "InstanceTenancy" in after
            and changed(before, after, "InstanceTenancy")
        )
        if retenant and tenancy != "default":
            raise CannotUpdate(
                f"AWS changes a VPC's tenancy only from dedicated to default, not to {tenancy}"
            )
        ec2 = ctx.client("ec2")
        if retenant:
            ec2.modify_vpc_tenancy(VpcId=physical_id, InstanceTenancy="default")
        for prop, attribute, value in _DNS_STEPS:
            if after.get(prop) is value and changed(before, after, prop):
                ec2.modify_vpc_attribute(
                    VpcId=physical_id, **{_attribute_key(attribute): {"Value": value}}
                )

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
