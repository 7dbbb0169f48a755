"""``AWS::EC2::SubnetRouteTableAssociation``: a subnet's explicit route table.

An association cannot be tagged: find() looks it up by its natural key (subnet + route table).
Its physical id is the association id (``rtbassoc-...``), as CloudFormation's Ref returns, since
DisassociateRouteTable takes exactly that.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import is_not_found, not_visible_yet
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready
from designer.graph import ResourceNode

#: Association states that mean "associated or on its way".
_LIVE_STATES = frozenset({"associating", "associated"})


def _associations(ctx: AwsContext, **filters: str) -> list[dict[str, Any]]:
    """Subnet associations of the route tables matching ``filters`` (filter name -> value)."""
    tables = ctx.client("ec2").describe_route_tables(
        Filters=[{"Name": name, "Values": [value]} for name, value in filters.items()]
    )
    return [
        association
        for table in tables["RouteTables"]
        for association in table.get("Associations") or []
        if association.get("SubnetId")
    ]


def _association(ctx: AwsContext, association_id: str) -> dict[str, Any] | None:
    by_id = {"association.route-table-association-id": association_id}
    for association in _associations(ctx, **by_id):
        if association["RouteTableAssociationId"] == association_id:
            return association
    return None


def _state(association: dict[str, Any]) -> str:
    # Older responses (and moto's) may omit AssociationState for a settled association.
    return (association.get("AssociationState") or {}).get("State", "associated")


class RouteTableAssociationHandler:
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
        response = ctx.client("ec2").associate_route_table(
            RouteTableId=props["RouteTableId"], SubnetId=props["SubnetId"]
        )
        return response["AssociationId"]

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
