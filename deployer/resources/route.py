"""``AWS::EC2::Route``: one route (``0.0.0.0/0`` to the internet gateway or a NAT gateway) in
one route table.

A route cannot be tagged: its natural key is the route table plus the destination (AWS allows
one route per destination in a table), so its physical id is ``rtb-...|0.0.0.0/0``. find() also
requires the route to point at the node's target, so a route left pointing elsewhere (at a NAT
gateway since replaced) is not adopted as is: create then meets ``RouteAlreadyExists`` and
repoints it with ReplaceRoute, which makes create idempotent too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    composite_id,
    describe_by_id,
    error_code,
    is_not_found,
    not_visible_yet,
    split_id,
)
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready
from designer.graph import ResourceNode

#: Route targets: the same names in CloudFormation's AWS::EC2::Route, in CreateRoute and
#: ReplaceRoute, and in DescribeRouteTables' route entries.
TARGET_KEYS: tuple[str, ...] = (
    "GatewayId",
    "NatGatewayId",
    "TransitGatewayId",
    "VpcEndpointId",
    "NetworkInterfaceId",
    "InstanceId",
    "VpcPeeringConnectionId",
    "EgressOnlyInternetGatewayId",
    "CarrierGatewayId",
)

#: "active" works; "blackhole" means the target is not usable (yet). Both are the route existing.
_LIVE_STATES = frozenset({"active", "blackhole"})


def _route(ctx: AwsContext, table_id: str, destination: str) -> dict[str, Any] | None:
    """The table's route for ``destination``, or None (also when the table itself is gone)."""
    table = describe_by_id(ctx, "describe_route_tables", "RouteTables", "RouteTableIds", table_id)
    for route in (table or {}).get("Routes") or []:
        if route.get("DestinationCidrBlock") == destination:
            return route
    return None


def _target(props: dict[str, Any]) -> dict[str, Any]:
    return {key: props[key] for key in TARGET_KEYS if props.get(key)}


class RouteHandler:
    type: ClassVar[str] = "AWS::EC2::Route"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        table_id, destination = props["RouteTableId"], props["DestinationCidrBlock"]
        route = _route(ctx, table_id, destination)
        if route is None or route.get("State") not in _LIVE_STATES:
            return []
        if any(route.get(key) != value for key, value in _target(props).items()):
            return []
        return [composite_id(table_id, destination)]

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        table_id, destination = props["RouteTableId"], props["DestinationCidrBlock"]
        kwargs = {"RouteTableId": table_id, "DestinationCidrBlock": destination, **_target(props)}
        ec2 = ctx.client("ec2")
        try:
            ec2.create_route(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "RouteAlreadyExists":
                raise
            ec2.replace_route(**kwargs)
        return composite_id(table_id, destination)

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        table_id, destination = split_id(physical_id, 2)
        route = _route(ctx, table_id, destination)
        if route is None:
            return not_visible_yet("route", physical_id)
        if route.get("State") == "blackhole":
            return Pending("route target not yet available")
        return Ready({})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        table_id, destination = split_id(physical_id, 2)
        try:
            ctx.client("ec2").delete_route(RouteTableId=table_id, DestinationCidrBlock=destination)
        except ClientError as exc:
            # InvalidRoute.NotFound, or InvalidRouteTableID.NotFound: the route went with it.
            if not is_not_found(exc):
                raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _route(ctx, *split_id(physical_id, 2)) is None:
            return Gone()
        return Pending("route is still being deleted")


HANDLER = RouteHandler()
