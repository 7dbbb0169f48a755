"""``AWS::EC2::InternetGateway``: the gateway alone; attaching it to the VPC is the
``AWS::EC2::VPCGatewayAttachment`` node's job (``gateway_attachment.py``).

CreateInternetGateway takes no idempotency token: find-by-tags is what prevents a second one.
Delete does not detach: the attachment node depends on this one, so destroy removes the
attachment first; until AWS has finished that, delete answers ``DependencyViolation``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    describe_by_id,
    error_code,
    find_by_tags,
    is_not_found,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready, RetryLater
from designer.graph import ResourceNode

_DESCRIBE = ("describe_internet_gateways", "InternetGateways", "InternetGatewayIds")


class InternetGatewayHandler:
    type: ClassVar[str] = "AWS::EC2::InternetGateway"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(ctx, node, _DESCRIBE[0], _DESCRIBE[1], "InternetGatewayId")

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        igw = ctx.client("ec2").create_internet_gateway(
            TagSpecifications=tag_specifications(ctx, node, "internet-gateway", props)
        )["InternetGateway"]
        return igw["InternetGatewayId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        # An internet gateway has no lifecycle state of its own: it is usable once visible.
        if describe_by_id(ctx, *_DESCRIBE, physical_id) is None:
            return not_visible_yet("internet gateway", physical_id)
        return Ready({"InternetGatewayId": physical_id})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").delete_internet_gateway(InternetGatewayId=physical_id)
        except ClientError as exc:
            if is_not_found(exc):
                return
            if error_code(exc) == "DependencyViolation":
                raise RetryLater(
                    f"internet gateway {physical_id} is still attached to its VPC; it can be "
                    f"deleted once the attachment is removed"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if describe_by_id(ctx, *_DESCRIBE, physical_id) is None:
            return Gone()
        return Pending("internet gateway is still being deleted")


HANDLER = InternetGatewayHandler()
