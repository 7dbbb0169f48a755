"""``AWS::EC2::NatGateway``: a public NAT gateway in a public subnet, with its Elastic IP.

CreateNatGateway takes a ClientToken, so a retried create returns the same gateway, and the
tags go in the create call. AWS takes 1-3 minutes to make a NAT gateway ``available`` and about
as long to delete it; check_ready and check_gone report those states without waiting. A
``failed`` gateway reports AWS's FailureMessage. A deleted gateway stays visible for about an
hour in state ``deleted``: find() ignores it (and ones ``deleting``).

In place: the tags. The subnet, the Elastic IP and the connectivity type are create-only: a new
NAT gateway (with a new address, since an address serves one gateway at a time).
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    Ec2Update,
    describe_by_id,
    find_by_tags,
    is_not_found,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready
from designer.graph import ResourceNode

_DESCRIBE = ("describe_nat_gateways", "NatGateways", "NatGatewayIds")
_DEAD_STATES = frozenset({"deleting", "deleted"})
#: States of a gateway that will never carry traffic again: AWS deletes a failed one itself.
_GONE_STATES = _DEAD_STATES | {"failed"}


def _nat_gateway(ctx: AwsContext, nat_gateway_id: str) -> dict[str, Any] | None:
    # AWS answers NatGatewayNotFound for an unknown id; moto answers an empty list: both None.
    return describe_by_id(ctx, *_DESCRIBE, nat_gateway_id)


class NatGatewayHandler(Ec2Update):
    type: ClassVar[str] = "AWS::EC2::NatGateway"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(
            ctx, node, _DESCRIBE[0], _DESCRIBE[1], "NatGatewayId", dead_states=_DEAD_STATES
        )

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        connectivity = props.get("ConnectivityType", "public")
        kwargs: dict[str, Any] = {
            "SubnetId": props["SubnetId"],
            "ConnectivityType": connectivity,
            "ClientToken": ctx.client_token(node),
            "TagSpecifications": tag_specifications(ctx, node, "natgateway", props),
        }
        if connectivity == "public":
            kwargs["AllocationId"] = props["AllocationId"]
        return ctx.client("ec2").create_nat_gateway(**kwargs)["NatGateway"]["NatGatewayId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        nat = _nat_gateway(ctx, physical_id)
        if nat is None:
            return not_visible_yet("NAT gateway", physical_id)
        state = nat.get("State")
        if state == "available":
            return Ready({"NatGatewayId": physical_id})
        if state == "pending":
            return Pending("NAT gateway is pending; AWS takes 1-3 minutes")
        if state == "failed":
            message = nat.get("FailureMessage") or "AWS gave no reason"
            code = nat.get("FailureCode")
            return Failed(
                f"NAT gateway {physical_id} failed: {message}" + (f" ({code})" if code else "")
            )
        # deleting / deleted: it can never become available again.
        return Failed(f"NAT gateway {physical_id} is {state}; something outside Gantry deleted it")

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """The gateway's subnet, primary address, connectivity and tags; None once it is
        deleting, deleted or failed (it never carries traffic again: a drift check says it is
        gone, and the repair makes a new one)."""
        nat = _nat_gateway(ctx, physical_id)
        if nat is None or nat.get("State") in _GONE_STATES:
            return None
        props: dict[str, Any] = {
            "SubnetId": nat.get("SubnetId"),
            "ConnectivityType": nat.get("ConnectivityType", "public"),
            "Tags": nat.get("Tags") or [],
        }
        primary = [a for a in nat.get("NatGatewayAddresses") or [] if a.get("IsPrimary", True)]
        if primary and primary[0].get("AllocationId"):
            props["AllocationId"] = primary[0]["AllocationId"]
        return props

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        # Look first: a gateway already deleting or deleted needs nothing more, and moto
        # answers a server error (not NotFound) for DeleteNatGateway of an unknown id.
        nat = _nat_gateway(ctx, physical_id)
        if nat is None or nat.get("State") in _DEAD_STATES:
            return
        try:
            ctx.client("ec2").delete_nat_gateway(NatGatewayId=physical_id)
        except ClientError as exc:
            if not is_not_found(exc):
                raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        nat = _nat_gateway(ctx, physical_id)
        if nat is None or nat.get("State") == "deleted":
            return Gone()
        if nat.get("State") == "deleting":
            return Pending(
                "NAT gateway is deleting; AWS takes a few minutes, then its Elastic IP can be "
                "released"
            )
        return Pending(f"NAT gateway is still {nat.get('State')}; its deletion has not started yet")


HANDLER = NatGatewayHandler()
