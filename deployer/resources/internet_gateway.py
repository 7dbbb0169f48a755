"""``AWS::EC2::InternetGateway``: the gateway alone; attaching it to the VPC is the
``AWS::EC2::VPCGatewayAttachment`` node's job (``gateway_attachment.py``).

CreateInternetGateway takes no idempotency token: find-by-tags is what prevents a second one.
It has no properties but its tags, which ``update`` changes in place. Delete does not detach:
the attachment node depends on this one, so destroy removes the attachment first; until AWS
has finished that, delete answers ``DependencyViolation``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from deployer.resources._ec2 import StatelessEc2Handler, tag_specifications
from deployer.resources.base import AwsContext, Created
from designer.graph import ResourceNode


class InternetGatewayHandler(StatelessEc2Handler):
    type: ClassVar[str] = "AWS::EC2::InternetGateway"
    describe = ("describe_internet_gateways", "InternetGateways", "InternetGatewayIds")
    id_key = "InternetGatewayId"
    noun = "internet gateway"
    delete_operation = "delete_internet_gateway"
    held_reason = (
        "internet gateway {id} is still attached to its VPC; it can be deleted once the "
        "attachment is removed"
    )

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        igw = ctx.client("ec2").create_internet_gateway(
            TagSpecifications=tag_specifications(ctx, node, "internet-gateway", props)
        )["InternetGateway"]
        # No state of its own until it is attached (its attachment's own node).
        return Created(igw["InternetGatewayId"], {"InternetGatewayId": igw["InternetGatewayId"]})


HANDLER = InternetGatewayHandler()
