"""``AWS::EC2::SecurityGroup``: physical id ``sg-...`` (CloudFormation's ``Ref`` is the group id
for a VPC group).

AWS gives every new group a rule allowing all outbound traffic. Gantry's groups state their egress
explicitly (SG-Lambda may only reach SG-API and HTTPS), so for a node whose ``meta`` says
``revoke_default_egress`` create revokes that rule right after making the group, before any rule
node (they depend on the group) adds the planned ones. A group adopted by find() (a create whose
answer was lost) gets the same through ``update(..., {}, props)``, which looks at the group's rules
and revokes AWS's default ones. check_ready only looks.

A group is compared whole: ``read`` also returns ``Rules``, every rule AWS has on it (ingress and
egress) as :func:`~deployer.resources._rules.rule_text` lines, so a rule added by hand (a
world-open SSH ingress on SG-API) is drift. ``update`` with ``Rules`` in ``after`` revokes every
rule the group has that is not listed there, except the rules this deployment's own rule nodes
made (their records delete them, after what replaces them exists). Only the tags of a group
change in place; its name, description and VPC are create-only.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deployer.drift import RULES
from deployer.resources._ec2 import (
    describe_by_id,
    error_code,
    find_by_tags,
    is_not_found,
    network_interface_holders,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources._rules import permission_rules, rule_text, rules_of_group
from deployer.resources._update import refuse_create_only, sync_ec2_tags
from deployer.resources.base import (
    TAG_LOGICAL_ID,
    AwsContext,
    Created,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

_ALL_IPV4 = "0.0.0.0/0"
#: The rules AWS gives every new group, as rule_text spells them.
_DEFAULT_EGRESS = frozenset({f"egress all to {_ALL_IPV4}", "egress all to ::/0"})
#: AWS's default egress rule of a new group, as an IpPermissions entry.
_ALLOW_ALL = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": _ALL_IPV4}]}


def default_egress_rule_ids(ctx: AwsContext, group_id: str) -> list[str]:
    """The allow-all egress rules AWS added to the group (IPv4, and IPv6 when the VPC has an
    IPv6 block). A rule tagged as a Gantry node is never one of them, even if it allows all."""
    return [
        rule["SecurityGroupRuleId"]
        for rule in rules_of_group(ctx, group_id)
        if rule_text(rule) in _DEFAULT_EGRESS
        and not any(t.get("Key") == TAG_LOGICAL_ID for t in rule.get("Tags") or [])
    ]


def revoke_default_egress(ctx: AwsContext, group_id: str) -> None:
    """Revoke the allow-all egress rules AWS added to the group, if it still has them."""
    _revoke(ctx, group_id, [], default_egress_rule_ids(ctx, group_id))


def _revoke(ctx: AwsContext, group_id: str, ingress: list[str], egress: list[str]) -> None:
    """Revoke rules by id; one already gone (a concurrent pass, or AWS catching up) is fine.
    A revoke naming one rule that is gone revokes none of them, so then they go one by one."""
    ec2 = ctx.client("ec2")
    for call, rule_ids in (
        (ec2.revoke_security_group_ingress, ingress),
        (ec2.revoke_security_group_egress, egress),
    ):
        batches = [rule_ids] if rule_ids else []
        while batches:
            batch = batches.pop()
            try:
                call(GroupId=group_id, SecurityGroupRuleIds=batch)
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
                if len(batch) > 1:
                    batches += [[rule_id] for rule_id in batch]


class SecurityGroupHandler:
    type = "AWS::EC2::SecurityGroup"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        # Security groups have no deleting state: deletion is immediate.
        return find_by_tags(ctx, node, "describe_security_groups", "SecurityGroups", "GroupId")

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        ec2 = ctx.client("ec2")
        group_id = ec2.create_security_group(
            GroupName=props["GroupName"],
            Description=props.get("GroupDescription") or props["GroupName"],
            VpcId=props["VpcId"],
            TagSpecifications=tag_specifications(ctx, node, "security-group", props),
        )["GroupId"]
        if node.meta.get("revoke_default_egress"):
            # A new group has exactly AWS's IPv4 allow-all egress rule (Gantry's VPCs have no
            # IPv6 block), so it is revoked by its content without describing the group first.
            try:
                ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[_ALLOW_ALL])
            except ClientError as exc:
                if error_code(exc) == "InvalidGroup.NotFound":
                    # EC2 does not show the new group yet: the next pass finds it by its tags
                    # and revokes the rule through update().
                    raise RetryLater(
                        f"waiting for AWS to show the new security group {group_id}"
                    ) from exc
                if not is_not_found(exc):  # InvalidPermission.NotFound: there is none
                    raise
        # A security group has no state: usable once CreateSecurityGroup answers (and the
        # revoke above found it).
        return Created(group_id)

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        group = describe_by_id(
            ctx, "describe_security_groups", "SecurityGroups", "GroupIds", physical_id
        )
        if group is None:
            return not_visible_yet("security group", physical_id)
        return Ready({})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """The group's properties and every rule it has (``Rules``), from one
        DescribeSecurityGroups call (a group lists its rules in ``IpPermissions``)."""
        group = describe_by_id(
            ctx, "describe_security_groups", "SecurityGroups", "GroupIds", physical_id
        )
        if group is None:
            return None
        return {
            "GroupName": group.get("GroupName"),
            "GroupDescription": group.get("Description", ""),
            "VpcId": group.get("VpcId"),
            "Tags": group.get("Tags") or [],
            RULES: sorted(rule_text(rule) for rule in permission_rules(group)),
        }

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        refuse_create_only(self.type, before, after, ctx.region)
        sync_ec2_tags(ctx, physical_id, before, after)
        if RULES in after:
            self._revoke_unplanned(ctx, physical_id, set(after[RULES]))
        elif not before and node.meta.get("revoke_default_egress"):
            revoke_default_egress(ctx, physical_id)

    def _revoke_unplanned(self, ctx: AwsContext, group_id: str, keep: set[str]) -> None:
        """Revoke every rule of the group that ``keep`` does not list, whatever ``before``
        said (a rule added since the last look goes too). Rules this deployment's rule nodes
        made are left to their own records: a replaced rule is deleted only once its successor
        exists."""
        doomed = [
            rule
            for rule in rules_of_group(ctx, group_id)
            if rule_text(rule) not in keep and not ctx.owns_deployment(rule.get("Tags"))
        ]
        _revoke(
            ctx,
            group_id,
            [r["SecurityGroupRuleId"] for r in doomed if not r.get("IsEgress")],
            [r["SecurityGroupRuleId"] for r in doomed if r.get("IsEgress")],
        )

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
