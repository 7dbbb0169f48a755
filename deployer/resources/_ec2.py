"""Small helpers shared by the EC2 handlers, so each rule lives in one place.

- :func:`error_code` / :func:`is_not_found`: read a botocore ``ClientError``. EC2 names every
  "no such resource" error ``...NotFound`` (``InvalidVpcID.NotFound``, ``NatGatewayNotFound``), so
  one suffix test covers them all.
- :func:`tag_specifications`: the ``TagSpecifications`` argument of an EC2 create call, so tags
  are written atomically with the resource (nothing untagged can leak if a response is lost).
- :func:`find_by_tags`: the find-before-create lookup of a taggable resource.
- :func:`describe_by_id`: one describe of one resource, ``None`` when AWS does not know it.
- :func:`composite_id` / :func:`split_id`: the ``a|b`` physical ids of untaggable resources
  (``igw-1|vpc-2``, ``rtb-1|0.0.0.0/0``), built and read in one place.
- :func:`network_interface_holders`: say in words what holds a subnet or security group when
  AWS answers ``DependencyViolation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources.base import (
    AwsContext,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

#: How long the usual holder of a subnet or security group takes to go, said in every
#: DependencyViolation explanation that involves a Lambda function.
LAMBDA_ENI_DELAY = (
    "AWS releases a deleted Lambda function's network interfaces within ~20-40 minutes"
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(exc: BaseException) -> bool:
    """True when EC2 says the resource does not exist (every such code ends in ``NotFound``)."""
    return error_code(exc).endswith("NotFound")


def tag_specifications(
    ctx: AwsContext, node: ResourceNode, resource_type: str, props: dict[str, Any]
) -> list[dict[str, Any]]:
    """``TagSpecifications`` for an EC2 create call: the node's CloudFormation ``Tags`` with the
    context's tags (spec tags, ``Name`` and the two gantry tags) winning on a clash, because the
    gantry tags are what :func:`find_by_tags` looks resources up by."""
    tags = {t["Key"]: t["Value"] for t in props.get("Tags") or []}
    tags.update(ctx.tag_dict(node))
    return [
        {"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    ]


def describe_all(ctx: AwsContext, operation: str, key: str, **kwargs: Any) -> list[dict]:
    """Every item of an EC2 ``Describe*`` call, following pagination when the call has it."""
    ec2 = ctx.client("ec2")
    if ec2.can_paginate(operation):
        return [
            item for page in ec2.get_paginator(operation).paginate(**kwargs) for item in page[key]
        ]
    return list(getattr(ec2, operation)(**kwargs)[key])


def find_by_tags(
    ctx: AwsContext,
    node: ResourceNode,
    operation: str,
    key: str,
    id_key: str,
    dead_states: Iterable[str] = (),
) -> list[str]:
    """Ids of the node's resources: ``operation`` (e.g. ``"describe_vpcs"``) filtered by the
    gantry tags, minus those whose ``State`` is in ``dead_states`` (deleting/deleted).

    The tags are also checked on every returned item: AWS applies the ``tag:`` filters itself,
    but the moto emulator ignores them for some types (NAT gateways), and a filter that is
    silently dropped must not make find() adopt another deployment's resource.
    """
    dead = set(dead_states)
    items = describe_all(ctx, operation, key, Filters=ctx.tag_filters(node))
    return [
        item[id_key]
        for item in items
        if ctx.owns(node, item.get("Tags")) and item.get("State") not in dead
    ]


def describe_by_id(
    ctx: AwsContext, operation: str, key: str, ids_param: str, physical_id: str
) -> dict[str, Any] | None:
    """The one resource ``physical_id`` as ``operation`` describes it, or ``None`` when AWS does
    not know it (a ``...NotFound`` error, or, as some describe calls and moto answer, an empty
    list)."""
    try:
        items = getattr(ctx.client("ec2"), operation)(**{ids_param: [physical_id]})[key]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return items[0] if items else None


def composite_id(*parts: str) -> str:
    """The physical id of an untaggable resource, from its natural key (``rtb-1|0.0.0.0/0``)."""
    return "|".join(parts)


def split_id(physical_id: str, count: int) -> list[str]:
    """The natural key back from :func:`composite_id`; a malformed id is a bug, said plainly."""
    parts = physical_id.split("|")
    if len(parts) != count:
        raise ValueError(f"{physical_id!r} is not a physical id made of {count} parts")
    return parts


def not_visible_yet(what: str, physical_id: str) -> Pending:
    """EC2 is eventually consistent: a describe right after a create can answer NotFound for a
    few seconds. check_ready reports that as pending rather than as a failure."""
    return Pending(f"waiting for AWS to show the new {what} {physical_id}")


def network_interface_holders(ctx: AwsContext, filter_name: str, value: str) -> str:
    """Plain words for the network interfaces that keep ``value`` (a subnet id with
    ``filter_name="subnet-id"``, a security group id with ``"group-id"``) from being deleted,
    e.g. ``"1 network interface (AWS Lambda VPC ENI-fn-1a2b); AWS releases ..."``: the
    interfaces' descriptions, then how long AWS takes when one belongs to a Lambda function.

    Only used to explain a ``DependencyViolation``; if the lookup itself fails the explanation
    falls back to the usual cause instead of hiding the original condition.
    """
    try:
        enis = describe_all(
            ctx,
            "describe_network_interfaces",
            "NetworkInterfaces",
            Filters=[{"Name": filter_name, "Values": [value]}],
        )
    except ClientError:
        return f"network interfaces (usually a deleted Lambda function's); {LAMBDA_ENI_DELAY}"
    if not enis:
        return f"network interfaces that AWS is still releasing; {LAMBDA_ENI_DELAY}"
    kinds = [
        eni.get("Description") or eni.get("InterfaceType") or eni["NetworkInterfaceId"]
        for eni in enis
    ]
    plural = "s" if len(enis) > 1 else ""
    text = f"{len(enis)} network interface{plural} ({', '.join(kinds)})"
    if any(eni.get("InterfaceType") == "lambda" for eni in enis):
        text += f"; {LAMBDA_ENI_DELAY}"
    return text


class StatelessEc2Handler:
    """The four lookups and the delete of an EC2 resource with no lifecycle state of its own
    (internet gateways, route tables): found by its tags, usable once visible, deleted by one
    call, gone once no longer visible. ``DependencyViolation`` on delete means the nodes that
    hang on it (which destroy removes first) are still being removed by AWS: wait it out.

    Subclasses give ``type``, ``create`` and the class attributes below.
    """

    #: (Describe operation, result key, ids parameter), e.g. ("describe_route_tables", ...).
    describe: ClassVar[tuple[str, str, str]]
    id_key: ClassVar[str]  # the id field in a described item, and the Ready attribute
    noun: ClassVar[str]  # "route table"
    delete_operation: ClassVar[str]  # "delete_route_table"
    #: Why a delete is refused, with ``{id}``: "... is still associated with subnets; ...".
    held_reason: ClassVar[str]

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(ctx, node, self.describe[0], self.describe[1], self.id_key)

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        if describe_by_id(ctx, *self.describe, physical_id) is None:
            return not_visible_yet(self.noun, physical_id)
        return Ready({self.id_key: physical_id})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            getattr(ctx.client("ec2"), self.delete_operation)(**{self.id_key: physical_id})
        except ClientError as exc:
            if is_not_found(exc):
                return
            if error_code(exc) == "DependencyViolation":
                raise RetryLater(self.held_reason.format(id=physical_id)) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if describe_by_id(ctx, *self.describe, physical_id) is None:
            return Gone()
        return Pending(f"{self.noun} is still being deleted")
