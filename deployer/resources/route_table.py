"""``AWS::EC2::RouteTable``: an empty route table (the VPC's local route only) in the VPC.

Routes and subnet associations are nodes of their own (``route.py``,
``route_table_association.py``) that depend on this one, so destroy removes them first; until
AWS has finished, deleting the table answers ``DependencyViolation``.

A route table is compared whole: ``read`` gives, besides its VPC and tags, ``Routes``: every
non-local route AWS has in it, as :func:`~deployer.resources.route.route_text` strings, so a
route added by hand is drift. ``update`` changes the tags (the VPC is create-only) and, when
``after`` has ``Routes``, deletes every route of ``before`` that is not among them (one whose
destination ``after`` keeps is left to its Route node, which repoints it); it never adds one,
since every planned route is a node of its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.drift import ROUTES
from deployer.resources._ec2 import (
    StatelessEc2Handler,
    is_not_found,
    tag_specifications,
)
from deployer.resources.base import AwsContext, Created
from deployer.resources.route import (
    destination_kwargs,
    is_local,
    route_text,
    text_destination,
    text_target,
)
from designer.graph import ResourceNode


def routes_of(table: dict[str, Any]) -> list[str]:
    """Every non-local route of a described route table, as sorted route texts."""
    return sorted(route_text(r) for r in table.get("Routes") or [] if not is_local(r))


def remove_route(ctx: AwsContext, table_id: str, text: str) -> None:
    """Take the route ``text`` out of the table; one already gone is fine. A gateway VPC
    endpoint's route (to a prefix list, through ``vpce-...``) cannot be deleted by DeleteRoute:
    the table is taken off the endpoint instead, which is how AWS removes it."""
    destination, target = text_destination(text), text_target(text)
    ec2 = ctx.client("ec2")
    try:
        if destination.startswith("pl-") and target.startswith("vpce-"):
            ec2.modify_vpc_endpoint(VpcEndpointId=target, RemoveRouteTableIds=[table_id])
        else:
            ec2.delete_route(RouteTableId=table_id, **destination_kwargs(destination))
    except ClientError as exc:
        if not is_not_found(exc):
            raise


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
        # A route table has no state: usable once CreateRouteTable answers.
        return Created(table["RouteTableId"], {"RouteTableId": table["RouteTableId"]})

    def live_properties(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"VpcId": item["VpcId"], "Tags": item.get("Tags") or [], ROUTES: routes_of(item)}

    def change(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        if ROUTES in after:
            keep = set(after[ROUTES])
            # A destination a planned route still has: its own node repoints it.
            planned = {text_destination(text) for text in keep}
            if ROUTES in before:
                present = list(before[ROUTES])
            else:
                present = (self.read(ctx, node, physical_id) or {}).get(ROUTES, [])
            for text in present:
                if text not in keep and text_destination(text) not in planned:
                    remove_route(ctx, physical_id, text)


HANDLER = RouteTableHandler()
