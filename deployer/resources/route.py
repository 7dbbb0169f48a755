"""``AWS::EC2::Route``: one route (``0.0.0.0/0`` to the internet gateway or a NAT gateway) in
one route table.

A route cannot be tagged: its natural key is the route table plus the destination (AWS allows
one route per destination in a table), so its physical id is ``rtb-...|0.0.0.0/0``. find() also
requires the route to point at the node's target, so a route left pointing elsewhere (at a NAT
gateway since replaced) is not adopted as is: create then meets ``RouteAlreadyExists`` and
repoints it with ReplaceRoute, which makes create idempotent too.

In place: the target (``update`` repoints the route with ReplaceRoute, and makes it again if it
was deleted meanwhile). The table and the destination are create-only: a new route.

:func:`route_text` is the one spelling of a route, ``"0.0.0.0/0 -> nat-0abc"``, for a route
entry as DescribeRouteTables gives it and (:func:`route_text_of_props`) for a Route node's
resolved properties alike (they share the key names): a route table's ``read`` lists every non-local route it has that way, and
a drift check builds the expected list from the planned routes with the same function.
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
from deployer.resources.base import AwsContext, Created, Failed, Gone, Pending, Ready
from designer.graph import ResourceNode

#: Route targets: the same names in CloudFormation's AWS::EC2::Route, in CreateRoute and
#: ReplaceRoute, and in DescribeRouteTables' route entries. In this order :func:`route_text`
#: picks the one it names: a route to an instance is described with the instance's network
#: interface too, and is written with the instance.
TARGET_KEYS: tuple[str, ...] = (
    "GatewayId",
    "NatGatewayId",
    "TransitGatewayId",
    "VpcEndpointId",
    "InstanceId",
    "NetworkInterfaceId",
    "VpcPeeringConnectionId",
    "EgressOnlyInternetGatewayId",
    "CarrierGatewayId",
    "LocalGatewayId",
    "CoreNetworkArn",
)

#: Where a route goes: one of these, in CloudFormation, the EC2 API and described routes alike.
DESTINATION_KEYS: tuple[str, ...] = (
    "DestinationCidrBlock",
    "DestinationIpv6CidrBlock",
    "DestinationPrefixListId",
)

#: Between a route's destination and its target in :func:`route_text`.
ARROW = " -> "

#: "active" works; "blackhole" means the target is not usable (yet). Both are the route existing.
_LIVE_STATES = frozenset({"active", "blackhole"})


def route_destination(route: dict[str, Any]) -> str:
    """The destination of a described route entry or of a Route node's props ("" if none)."""
    return next((str(route[key]) for key in DESTINATION_KEYS if route.get(key)), "")


def route_text(route: dict[str, Any]) -> str:
    """``"<destination> -> <target id>"``, e.g. ``"0.0.0.0/0 -> nat-0abc"``: one route in the
    canonical form a route table's ``Routes`` are compared in, from a DescribeRouteTables route
    entry or from a Route node's resolved properties."""
    target = next((str(route[key]) for key in TARGET_KEYS if route.get(key)), "(no target)")
    return f"{route_destination(route)}{ARROW}{target}"


def route_text_of_props(props: dict[str, Any]) -> str:
    """A Route node's resolved properties as :func:`route_text` spells a described route: the
    two share their key names, so this is the same text (what a drift check expects to find
    in the node's route table)."""
    return route_text(props)


def text_destination(text: str) -> str:
    """The destination back from a :func:`route_text` string."""
    return text.split(ARROW, 1)[0]


def text_target(text: str) -> str:
    """The target id back from a :func:`route_text` string."""
    return text.split(ARROW, 1)[1] if ARROW in text else ""


def destination_kwargs(destination: str) -> dict[str, str]:
    """The EC2 parameter that names ``destination``: an IPv6 block, a prefix list, or an IPv4
    block (what DeleteRoute and ReplaceRoute take)."""
    if destination.startswith("pl-"):
        return {"DestinationPrefixListId": destination}
    if ":" in destination:
        return {"DestinationIpv6CidrBlock": destination}
    return {"DestinationCidrBlock": destination}


def is_local(route: dict[str, Any]) -> bool:
    """The VPC's own routes (one per VPC CIDR block), which every route table has and nobody
    can delete."""
    return route.get("GatewayId") == "local" or route.get("Origin") == "CreateRouteTable"


def _route(ctx: AwsContext, table_id: str, destination: str) -> dict[str, Any] | None:
    """The table's route for ``destination``, or None (also when the table itself is gone)."""
    table = describe_by_id(ctx, "describe_route_tables", "RouteTables", "RouteTableIds", table_id)
    for route in (table or {}).get("Routes") or []:
        if route_destination(route) == destination:
            return route
    return None


def _target(props: dict[str, Any]) -> dict[str, Any]:
    return {key: props[key] for key in TARGET_KEYS if props.get(key)}


def _put_route(ctx: AwsContext, key: dict[str, str], props: dict[str, Any]) -> None:
    """The route ``key`` (table + destination) made to point at ``props``' target:
    CreateRoute, or ReplaceRoute when the destination is taken (by a route left pointing
    elsewhere, or by this very call retried after its first answer was lost)."""
    ec2 = ctx.client("ec2")
    try:
        ec2.create_route(**key, **_target(props))
    except ClientError as exc:
        if error_code(exc) != "RouteAlreadyExists":
            raise
        ec2.replace_route(**key, **_target(props))


class RouteHandler(Ec2Update):
    type: ClassVar[str] = "AWS::EC2::Route"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        table_id, destination = props["RouteTableId"], route_destination(props)
        route = _route(ctx, table_id, destination)
        if route is None or route.get("State") not in _LIVE_STATES:
            return []
        if any(route.get(key) != value for key, value in _target(props).items()):
            return []
        return [composite_id(table_id, destination)]

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        table_id, destination = props["RouteTableId"], route_destination(props)
        _put_route(ctx, {"RouteTableId": table_id, **destination_kwargs(destination)}, props)
        # In force once CreateRoute answers: its target is ready before it is made (a NAT
        # gateway available, an internet gateway attached), so it is never a blackhole.
        return Created(composite_id(table_id, destination))

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

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """The route's table, destination and target. Every target key is given, ``None`` for
        the ones the route does not use, so a route repointed by hand to another kind of
        target (a NAT route sent to an internet gateway) differs from what was applied."""
        table_id, destination = split_id(physical_id, 2)
        route = _route(ctx, table_id, destination)
        if route is None:
            return None
        return {
            "RouteTableId": table_id,
            **{key: route[key] for key in DESTINATION_KEYS if route.get(key)},
            **{key: route.get(key) for key in TARGET_KEYS},
        }

    def change(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """Repoint the route at ``after``'s target (ReplaceRoute); a route that is not there
        any more (deleted by hand, or by its table's repair) is made again."""
        target = _target(after)
        if _target(before) == target:
            return
        table_id, destination = split_id(physical_id, 2)
        key = {"RouteTableId": table_id, **destination_kwargs(destination)}
        try:
            ctx.client("ec2").replace_route(**key, **target)
        except ClientError as exc:
            # AWS answers InvalidParameterValue (moto too) for a route that does not exist.
            missing = is_not_found(exc) or error_code(exc) == "InvalidParameterValue"
            if not missing or _route(ctx, table_id, destination) is not None:
                raise
            _put_route(ctx, key, after)

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        table_id, destination = split_id(physical_id, 2)
        try:
            ctx.client("ec2").delete_route(RouteTableId=table_id, **destination_kwargs(destination))
        except ClientError as exc:
            # InvalidRoute.NotFound, or InvalidRouteTableID.NotFound: the route went with it.
            if not is_not_found(exc):
                raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _route(ctx, *split_id(physical_id, 2)) is None:
            return Gone()
        return Pending("route is still being deleted")


HANDLER = RouteHandler()
