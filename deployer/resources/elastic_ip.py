"""``AWS::EC2::EIP``: an Elastic IP in the VPC domain, for a NAT gateway.

Physical id: CloudFormation's Ref of an EIP is its public IP, but Gantry uses the
**AllocationId** instead, because every VPC API takes that (CreateNatGateway, ReleaseAddress,
DescribeAddresses) and a public IP is not a stable key for a VPC address. Both are returned as
the attributes ``AllocationId`` and ``PublicIp``.

Release must wait for the NAT gateway that uses the address: the NAT gateway node depends on
this one, so destroy deletes it first and waits for it to be gone; while AWS is still tearing
it down, ReleaseAddress fails and delete() asks to be retried.

In place: the tags. The domain cannot change (an address is allocated in the VPC domain for
good): a different one raises CannotUpdate.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    Ec2Update,
    describe_by_id,
    error_code,
    find_by_tags,
    is_not_found,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources._update import changed
from deployer.resources.base import (
    AwsContext,
    CannotUpdate,
    Created,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

_DESCRIBE = ("describe_addresses", "Addresses", "AllocationIds")

#: What AWS answers when releasing an address that is still associated. AuthFailure is also a
#: real permission error, so it only counts when the address is indeed still associated.
_IN_USE_CODES = frozenset({"InvalidIPAddress.InUse", "DependencyViolation"})


class ElasticIpHandler(Ec2Update):
    type: ClassVar[str] = "AWS::EC2::EIP"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(ctx, node, _DESCRIBE[0], _DESCRIBE[1], "AllocationId")

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        address = ctx.client("ec2").allocate_address(
            Domain=props.get("Domain", "vpc"),
            TagSpecifications=tag_specifications(ctx, node, "elastic-ip", props),
        )
        # Allocated when AllocateAddress answers, with its address.
        return Created(
            address["AllocationId"],
            {"AllocationId": address["AllocationId"], "PublicIp": address["PublicIp"]},
        )

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        # An address has no lifecycle state: it is usable once visible.
        address = describe_by_id(ctx, *_DESCRIBE, physical_id)
        if address is None:
            return not_visible_yet("Elastic IP", physical_id)
        return Ready({"AllocationId": physical_id, "PublicIp": address["PublicIp"]})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        address = describe_by_id(ctx, *_DESCRIBE, physical_id)
        if address is None:
            return None
        return {"Domain": address.get("Domain", "vpc"), "Tags": address.get("Tags") or []}

    def change(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        if "Domain" in before and "Domain" in after and changed(before, after, "Domain"):
            raise CannotUpdate(
                f"Elastic IP {physical_id} is in the {before['Domain']} domain; an address in "
                f"the {after['Domain']} domain is a new address"
            )

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").release_address(AllocationId=physical_id)
        except ClientError as exc:
            if is_not_found(exc):
                return
            code = error_code(exc)
            if code in _IN_USE_CODES or (
                code == "AuthFailure" and self._associated(ctx, physical_id)
            ):
                raise RetryLater(
                    f"Elastic IP {physical_id} is still associated: the NAT gateway that uses "
                    f"this address is still being deleted"
                ) from exc
            raise

    @staticmethod
    def _associated(ctx: AwsContext, allocation_id: str) -> bool:
        address = describe_by_id(ctx, *_DESCRIBE, allocation_id)
        return bool(address and address.get("AssociationId"))

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if describe_by_id(ctx, *_DESCRIBE, physical_id) is None:
            return Gone()
        return Pending("Elastic IP is still being released")


HANDLER = ElasticIpHandler()
