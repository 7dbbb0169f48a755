"""``AWS::EC2::VPCGatewayAttachment``: the internet gateway attached to the VPC.

An attachment cannot be tagged, so it is found by its natural key (gateway + VPC) and its
physical id is ``igw-...|vpc-...``. Deleting it detaches the gateway; AWS refuses that while
the VPC still has public addresses mapped (the Elastic IPs of NAT gateways that are still being
deleted), which is transient.

Nothing changes in place. The VPC is create-only; the gateway is not in CloudFormation's schema
(it detaches one and attaches the other), but here it is part of the physical id, so ``update``
raises CannotUpdate for it: a new attachment. (A gateway replaced by hand is detached first, so
its attachment is gone too and made again, never moved.)
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    Ec2Update,
    composite_id,
    describe_by_id,
    error_code,
    is_not_found,
    not_visible_yet,
    split_id,
)
from deployer.resources.base import (
    AwsContext,
    CannotUpdate,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

#: Attachment states that mean "attached or on its way": AWS reports an attached internet
#: gateway as "available" (the API reference also lists "attached").
_LIVE_STATES = frozenset({"attaching", "attached", "available"})
_READY_STATES = frozenset({"attached", "available"})


def _attachment(ctx: AwsContext, igw_id: str, vpc_id: str) -> dict[str, Any] | None:
    """The gateway's attachment to ``vpc_id`` (with its ``State``), or None."""
    igw = describe_by_id(
        ctx, "describe_internet_gateways", "InternetGateways", "InternetGatewayIds", igw_id
    )
    for attachment in (igw or {}).get("Attachments") or []:
        if attachment.get("VpcId") == vpc_id:
            return attachment
    return None


class GatewayAttachmentHandler(Ec2Update):
    type: ClassVar[str] = "AWS::EC2::VPCGatewayAttachment"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        igw_id, vpc_id = props["InternetGatewayId"], props["VpcId"]
        attachment = _attachment(ctx, igw_id, vpc_id)
        if attachment is None or attachment.get("State") not in _LIVE_STATES:
            return []
        return [composite_id(igw_id, vpc_id)]

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        igw_id, vpc_id = props["InternetGatewayId"], props["VpcId"]
        ctx.client("ec2").attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
        return composite_id(igw_id, vpc_id)

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        igw_id, vpc_id = split_id(physical_id, 2)
        attachment = _attachment(ctx, igw_id, vpc_id)
        if attachment is None:
            return not_visible_yet("internet gateway attachment", physical_id)
        state = attachment.get("State")
        if state in _READY_STATES:
            return Ready({})
        if state == "attaching":
            return Pending("internet gateway is attaching to the VPC")
        return Failed(
            f"internet gateway {igw_id} is {state} from VPC {vpc_id} instead of attached; "
            f"something outside Gantry detached it"
        )

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        igw_id, vpc_id = split_id(physical_id, 2)
        attachment = _attachment(ctx, igw_id, vpc_id)
        if attachment is None or attachment.get("State") not in _LIVE_STATES:
            return None
        return {"InternetGatewayId": igw_id, "VpcId": vpc_id}

    def change(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        # Whatever before says, the physical id says what this attachment joins.
        igw_id, vpc_id = split_id(physical_id, 2)
        if after.get("InternetGatewayId", igw_id) != igw_id:
            raise CannotUpdate(
                f"attachment {physical_id} is the attachment of internet gateway {igw_id}; "
                f"attaching {after['InternetGatewayId']} instead needs a new attachment"
            )
        if after.get("VpcId", vpc_id) != vpc_id:
            raise CannotUpdate(
                f"attachment {physical_id} joins VPC {vpc_id}; attaching the gateway to "
                f"{after['VpcId']} instead needs a new attachment"
            )

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        igw_id, vpc_id = split_id(physical_id, 2)
        try:
            ctx.client("ec2").detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
        except ClientError as exc:
            if is_not_found(exc) or error_code(exc) == "Gateway.NotAttached":
                return
            if error_code(exc) == "DependencyViolation":
                raise RetryLater(
                    f"VPC {vpc_id} still has public addresses mapped (the Elastic IPs of NAT "
                    f"gateways that are still being deleted); the internet gateway can be "
                    f"detached once AWS has released them"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        igw_id, vpc_id = split_id(physical_id, 2)
        attachment = _attachment(ctx, igw_id, vpc_id)
        if attachment is None or attachment.get("State") == "detached":
            return Gone()
        return Pending("internet gateway is detaching from the VPC")


HANDLER = GatewayAttachmentHandler()
