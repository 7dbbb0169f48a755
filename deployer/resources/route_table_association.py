"""``AWS::EC2::SubnetRouteTableAssociation``: a subnet's explicit route table.

An association cannot be tagged: find() looks it up by its natural key (subnet + route table).
Its physical id is the association id (``rtbassoc-...``), as CloudFormation's Ref returns, since
DisassociateRouteTable takes exactly that.

A subnet has one explicit route table at a time. An update that moves a subnet from one of
this deployment's route tables to another (NAT ``single`` -> ``per_az`` and back) makes the new
association before the old one is deleted, so create looks at the subnet first: associated
with another route table of this deployment (tagged with its identity), it moves the subnet
with ReplaceRouteTableAssociation (the subnet is never without its routes, and the old
association's id is then gone, which its delete takes as done); associated with a route table
that is not this deployment's, it is refused as AWS refuses it (``Resource.AlreadyAssociated``).
A move retried after its answer was lost finds the old association gone and the subnet already
in the new table: that is the result.
Both properties are create-only: nothing changes in place.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import Ec2Update, is_not_found, not_visible_yet
from deployer.resources.base import AwsContext, Created, Failed, Gone, Pending, Ready
from designer.graph import ResourceNode

#: Association states that mean "associated or on its way".
_LIVE_STATES = frozenset({"associating", "associated"})


def _tables(ctx: AwsContext, **filters: str) -> list[dict[str, Any]]:
    """The route tables matching ``filters`` (filter name -> value)."""
    return ctx.client("ec2").describe_route_tables(
        Filters=[{"Name": name, "Values": [value]} for name, value in filters.items()]
    )["RouteTables"]


def _subnet_associations(table: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in table.get("Associations") or [] if a.get("SubnetId")]


def _associations(ctx: AwsContext, **filters: str) -> list[dict[str, Any]]:
    """Subnet associations of the route tables matching ``filters``."""
    return [a for table in _tables(ctx, **filters) for a in _subnet_associations(table)]


def _association(ctx: AwsContext, association_id: str) -> dict[str, Any] | None:
    by_id = {"association.route-table-association-id": association_id}
    for association in _associations(ctx, **by_id):
        if association["RouteTableAssociationId"] == association_id:
            return association
    return None


def _state(association: dict[str, Any]) -> str:
    # Older responses (and moto's) may omit AssociationState for a settled association.
    return (association.get("AssociationState") or {}).get("State", "associated")


def _current(ctx: AwsContext, subnet_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The subnet's live explicit association and the route table it is in, or None."""
    for table in _tables(ctx, **{"association.subnet-id": subnet_id}):
        for association in _subnet_associations(table):
            if association["SubnetId"] == subnet_id and _state(association) in _LIVE_STATES:
                return association, table
    return None


class RouteTableAssociationHandler(Ec2Update):
    """``update`` (:class:`Ec2Update`) changes nothing: a new subnet or route table is a new
    association, refused in place."""

    type: ClassVar[str] = "AWS::EC2::SubnetRouteTableAssociation"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        subnet_id, table_id = props["SubnetId"], props["RouteTableId"]
        return [
            association["RouteTableAssociationId"]
            for association in _associations(
                ctx, **{"association.subnet-id": subnet_id, "route-table-id": table_id}
            )
            if association["SubnetId"] == subnet_id
            and association.get("RouteTableId") == table_id
            and _state(association) in _LIVE_STATES
        ]

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        subnet_id, table_id = props["SubnetId"], props["RouteTableId"]
        ec2 = ctx.client("ec2")
        current = _current(ctx, subnet_id)
        if current is None:
            answer = ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)
            if (answer.get("AssociationState") or {}).get("State") == "associated":
                return Created(answer["AssociationId"])
            return answer["AssociationId"]
        association, table = current
        if table["RouteTableId"] == table_id:
            return association["RouteTableAssociationId"]
        if not ctx.owns_deployment(table.get("Tags")):
            # AWS's own answer (moto's AssociateRouteTable instead returns the existing
            # association, which would hand the subnet's other table to this node).
            raise ClientError(
                {
                    "Error": {
                        "Code": "Resource.AlreadyAssociated",
                        "Message": (
                            f"subnet {subnet_id} is already associated with route table "
                            f"{table['RouteTableId']}, which does not belong to this deployment"
                        ),
                    }
                },
                "AssociateRouteTable",
            )
        try:
            return ec2.replace_route_table_association(
                AssociationId=association["RouteTableAssociationId"], RouteTableId=table_id
            )["NewAssociationId"]
        except ClientError as exc:
            # Retried after a lost answer: the first call moved the subnet, so the old
            # association is gone. The subnet in this node's table is that call's work.
            moved = _current(ctx, subnet_id) if is_not_found(exc) else None
            if moved is None or moved[1]["RouteTableId"] != table_id:
                raise
            return moved[0]["RouteTableAssociationId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        association = _association(ctx, physical_id)
        if association is None:
            return not_visible_yet("route table association", physical_id)
        state = _state(association)
        if state == "associated":
            return Ready({})
        if state == "associating":
            return Pending("subnet is being associated with its route table")
        message = (association.get("AssociationState") or {}).get("StatusMessage")
        return Failed(
            f"route table association {physical_id} is {state}"
            + (f": {message}" if message else "")
        )

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        association = _association(ctx, physical_id)
        if association is None or _state(association) not in _LIVE_STATES:
            return None
        return {"SubnetId": association["SubnetId"], "RouteTableId": association["RouteTableId"]}

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").disassociate_route_table(AssociationId=physical_id)
        except ClientError as exc:
            if not is_not_found(exc):
                raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        association = _association(ctx, physical_id)
        if association is None or _state(association) == "disassociated":
            return Gone()
        return Pending("subnet is being disassociated from its route table")


HANDLER = RouteTableAssociationHandler()
