"""``AWS::EC2::SecurityGroup``: physical id ``sg-...`` (CloudFormation's ``Ref`` is the group id
for a VPC group).

AWS gives every new group a rule allowing all outbound traffic. Gantry's groups state their egress
explicitly (SG-Lambda may only reach SG-API and HTTPS), so a node whose ``meta`` says
``revoke_default_egress`` is ready only once that rule is gone. check_ready revokes it, which makes
the step idempotent: a create whose answer was lost, or a group adopted by find(), is handled the
same way on the next check. The rule nodes of the group depend on it, so its own egress rules are
authorized only after the default one is revoked.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    describe_by_id,
    error_code,
    find_by_tags,
    is_not_found,
    network_interface_holders,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources._rules import normalise_protocol, rules_of_group
from deployer.resources.base import TAG_LOGICAL_ID, AwsContext, Gone, Pending, Ready, RetryLater
from designer.graph import ResourceNode

_ALL_IPV4 = "0.0.0.0/0"
_ALL_IPV6 = "::/0"


def default_egress_rule_ids(ctx: AwsContext, group_id: str) -> list[str]:
    """The allow-all egress rules AWS added to the group (IPv4, and IPv6 when the VPC has an
    IPv6 block). A rule tagged as a Gantry node is never one of them, even if it allows all."""
    return [
        rule["SecurityGroupRuleId"]
        for rule in rules_of_group(ctx, group_id)
        if rule.get("IsEgress")
        and normalise_protocol(rule.get("IpProtocol", "")) == "-1"
        and (rule.get("CidrIpv4") == _ALL_IPV4 or rule.get("CidrIpv6") == _ALL_IPV6)
        and not any(t.get("Key") == TAG_LOGICAL_ID for t in rule.get("Tags") or [])
    ]


class SecurityGroupHandler:
    type = "AWS::EC2::SecurityGroup"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        # Security groups have no deleting state: deletion is immediate.
        return find_by_tags(ctx, node, "describe_security_groups", "SecurityGroups", "GroupId")

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        response = ctx.client("ec2").create_security_group(
            GroupName=props["GroupName"],
            Description=props.get("GroupDescription") or props["GroupName"],
            VpcId=props["VpcId"],
            TagSpecifications=tag_specifications(ctx, node, "security-group", props),
        )
        return response["GroupId"]

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        group = describe_by_id(
            ctx, "describe_security_groups", "SecurityGroups", "GroupIds", physical_id
        )
        if group is None:
            return not_visible_yet("security group", physical_id)
        if node.meta.get("revoke_default_egress"):
            defaults = default_egress_rule_ids(ctx, physical_id)
            if defaults:
                try:
                    ctx.client("ec2").revoke_security_group_egress(
                        GroupId=physical_id, SecurityGroupRuleIds=defaults
                    )
                except ClientError as exc:
                    # Already revoked (a concurrent pass, or AWS catching up): nothing to do.
                    if not is_not_found(exc):
                        raise
                return Pending("removing the default allow-all egress rule")
        return Ready({})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").delete_security_group(GroupId=physical_id)
        except ClientError as exc:
            if is_not_found(exc):
                return
            if error_code(exc) == "DependencyViolation":
                raise RetryLater(
                    f"security group {physical_id} cannot be deleted yet: "
                    f"{_why_in_use(ctx, physical_id)}"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        group = describe_by_id(
            ctx, "describe_security_groups", "SecurityGroups", "GroupIds", physical_id
        )
        return Gone() if group is None else Pending(f"security group {physical_id} still exists")


def _why_in_use(ctx: AwsContext, group_id: str) -> str:
    """Plain words for what holds the group: another group's rule that references it, or the
    network interfaces that use it (usually a deleted Lambda function's)."""
    referencing: list[str] = []
    for filter_name in ("ip-permission.group-id", "egress.ip-permission.group-id"):
        try:
            groups = ctx.client("ec2").describe_security_groups(
                Filters=[{"Name": filter_name, "Values": [group_id]}]
            )["SecurityGroups"]
        except ClientError:
            continue  # only an explanation: fall back to the network interfaces
        referencing += [
            g["GroupId"]
            for g in groups
            if g["GroupId"] != group_id and g["GroupId"] not in referencing
        ]
    if referencing:
        return (
            f"a rule of security group {', '.join(referencing)} still references it; it is "
            "released when that rule is revoked"
        )
    return f"it is still used by {network_interface_holders(ctx, 'group-id', group_id)}"


HANDLER = SecurityGroupHandler()
