"""``AWS::EC2::RouteTable``: an empty route table (the VPC's local route only) in the VPC.

Routes and subnet associations are nodes of their own (``route.py``,
``route_table_association.py``) that depend on this one, so destroy removes them first; until
AWS has finished, deleting the table answers ``DependencyViolation``.
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

_DESCRIBE = ("describe_route_tables", "RouteTables", "RouteTableIds")


class RouteTableHandler:
    type: ClassVar[str] = "AWS::EC2::RouteTable"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(ctx, node, _DESCRIBE[0], _DESCRIBE[1], "RouteTableId")

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        table = ctx.client("ec2").create_route_table(
            VpcId=props["VpcId"],
            ClientToken=ctx.client_token(node),
            TagSpecifications=tag_specifications(ctx, node, "route-table", props),
        )["RouteTable"]
        return table["RouteTableId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        # A route table has no lifecycle state: it is usable once visible.
        if describe_by_id(ctx, *_DESCRIBE, physical_id) is None:
            return not_visible_yet("route table", physical_id)
        return Ready({"RouteTableId": physical_id})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").delete_route_table(RouteTableId=physical_id)
        except ClientError as exc:
            if is_not_found(exc):
                return
            if error_code(exc) == "DependencyViolation":
                raise RetryLater(
                    f"route table {physical_id} is still associated with subnets; it can be "
                    f"deleted once those associations are removed"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if describe_by_id(ctx, *_DESCRIBE, physical_id) is None:
            return Gone()
        return Pending("route table is still being deleted")


HANDLER = RouteTableHandler()
