"""``AWS::EC2::RouteTable``: an empty route table (the VPC's local route only) in the VPC.

Routes and subnet associations are nodes of their own (``route.py``,
``route_table_association.py``) that depend on this one, so destroy removes them first; until
AWS has finished, deleting the table answers ``DependencyViolation``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from deployer.resources._ec2 import StatelessEc2Handler, tag_specifications
from deployer.resources.base import AwsContext
from designer.graph import ResourceNode


class RouteTableHandler(StatelessEc2Handler):
    type: ClassVar[str] = "AWS::EC2::RouteTable"
    describe = ("describe_route_tables", "RouteTables", "RouteTableIds")
    id_key = "RouteTableId"
    noun = "route table"
    delete_operation = "delete_route_table"
    held_reason = (
        "route table {id} is still associated with subnets; it can be deleted once those "
        "associations are removed"
    )

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        table = ctx.client("ec2").create_route_table(
            VpcId=props["VpcId"],
            ClientToken=ctx.client_token(node),
            TagSpecifications=tag_specifications(ctx, node, "route-table", props),
        )["RouteTable"]
        return table["RouteTableId"]


HANDLER = RouteTableHandler()
