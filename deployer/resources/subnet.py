"""``AWS::EC2::Subnet``: one subnet in one AZ, never mapping public IPs unless it is public.

CreateSubnet takes no idempotency token, so the engine's find-by-tags is what prevents a second
subnet. MapPublicIpOnLaunch cannot be given to CreateSubnet: a new subnet does not map public
IPs (AWS's default for every subnet but a default VPC's), so create sets it only for a public
subnet that asks for it; ``update`` sets it whenever it and for an adopted subnet, so
"private subnets never map public IPs" holds whatever the property or a hand says.

In place: MapPublicIpOnLaunch and the tags. The VPC, CIDR block and AZ are create-only: a new
subnet.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    Ec2Update,
    describe_by_id,
    error_code,
    find_by_tags,
    is_not_found,
    network_interface_holders,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources._update import changed
from deployer.resources.base import AwsContext, Created, Failed, Gone, Pending, Ready, RetryLater
from designer.graph import ResourceNode

_DESCRIBE = ("describe_subnets", "Subnets", "SubnetIds")


def wants_public_ips(node: ResourceNode, props: dict[str, Any]) -> bool:
    """Whether instances launched in this subnet get public IPs: only a public subnet (the
    plan's ``meta["role"]``) may, and only when its ``MapPublicIpOnLaunch`` property says so. A
    private (Lambda or API) subnet never does, whatever the property says."""
    return node.meta.get("role") == "public" and bool(props.get("MapPublicIpOnLaunch", False))


class SubnetHandler(Ec2Update):
    type: ClassVar[str] = "AWS::EC2::Subnet"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(ctx, node, "describe_subnets", "Subnets", "SubnetId")

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        subnet = ctx.client("ec2").create_subnet(
            VpcId=props["VpcId"],
            CidrBlock=props["CidrBlock"],
            AvailabilityZone=props["AvailabilityZone"],
            TagSpecifications=tag_specifications(ctx, node, "subnet", props),
        )["Subnet"]
        # Everything but the public-IP mapping was in the create call, which leaves it off.
        self.update(ctx, node, subnet["SubnetId"], {**props, "MapPublicIpOnLaunch": False}, props)
        if subnet.get("State") == "available":
            return Created(subnet["SubnetId"], _attributes(subnet))
        return subnet["SubnetId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        subnet = describe_by_id(ctx, *_DESCRIBE, physical_id)
        if subnet is None:
            return not_visible_yet("subnet", physical_id)
        if subnet.get("State") != "available":
            return Pending(f"subnet is {subnet.get('State', 'pending')}")
        return Ready(_attributes(subnet))

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        subnet = describe_by_id(ctx, *_DESCRIBE, physical_id)
        if subnet is None:
            return None
        return {
            "VpcId": subnet["VpcId"],
            "CidrBlock": subnet["CidrBlock"],
            "AvailabilityZone": subnet["AvailabilityZone"],
            "MapPublicIpOnLaunch": bool(subnet.get("MapPublicIpOnLaunch")),
            "Tags": subnet.get("Tags") or [],
        }

    def change(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        wanted = {**after, "MapPublicIpOnLaunch": wants_public_ips(node, after)}
        if changed(before, wanted, "MapPublicIpOnLaunch"):
            ctx.client("ec2").modify_subnet_attribute(
                SubnetId=physical_id,
                MapPublicIpOnLaunch={"Value": wanted["MapPublicIpOnLaunch"]},
            )

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").delete_subnet(SubnetId=physical_id)
        except ClientError as exc:
            if is_not_found(exc):
                return
            if error_code(exc) == "DependencyViolation":
                holders = network_interface_holders(ctx, "subnet-id", physical_id)
                raise RetryLater(f"subnet {physical_id} is still used by {holders}") from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if describe_by_id(ctx, *_DESCRIBE, physical_id) is None:
            return Gone()
        return Pending("subnet is still being deleted")


HANDLER = SubnetHandler()


def _attributes(subnet: dict[str, Any]) -> dict[str, Any]:
    return {
        "SubnetId": subnet["SubnetId"],
        "VpcId": subnet["VpcId"],
        "CidrBlock": subnet["CidrBlock"],
        "AvailabilityZone": subnet["AvailabilityZone"],
    }
