"""One security group rule handler, used for both directions.

``AWS::EC2::SecurityGroupIngress`` and ``AWS::EC2::SecurityGroupEgress`` differ only in the API
verb (authorize/revoke ingress or egress), the name of the peer property
(``SourceSecurityGroupId`` / ``DestinationSecurityGroupId``) and ``IsEgress`` on the rule, so the
two modules are thin subclasses of :class:`SecurityGroupRuleHandler`.

A rule is its own resource since 2021: it has an id (``sgr-...``, the physical id) and takes
tags in the authorize call (``TagSpecifications`` of type ``security-group-rule``), so find() looks
it up by the gantry tags like any other resource. A rule is also unique by its natural key (group,
direction, protocol, ports, peer): AWS answers ``InvalidPermission.Duplicate`` to a second
authorize of the same rule. That key is the fallback when no tagged rule is found (an emulator
that drops rule tags, or a rule created by hand before Gantry ran) and what a duplicate create
adopts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    error_code,
    is_not_found,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources.base import (
    TAG_DEPLOYMENT,
    TAG_LOGICAL_ID,
    AwsContext,
    Gone,
    Pending,
    Ready,
)
from designer.graph import ResourceNode

#: AWS accepts protocol numbers and some spellings; DescribeSecurityGroupRules answers with the
#: names below, so both sides are normalised before comparing.
_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}


def normalise_protocol(protocol: Any) -> str:
    """``"6"`` -> ``"tcp"``, ``-1``/``"all"`` -> ``"-1"``; names pass through lower-cased."""
    text = str(protocol).lower()
    return _PROTOCOLS.get(text, text)


class SecurityGroupRuleHandler:
    """One ingress or egress rule of a security group, physical id ``sgr-...``."""

    type: ClassVar[str]
    #: ``"ingress"`` or ``"egress"``: picks the API verbs and ``IsEgress``.
    direction: ClassVar[str]
    #: The CloudFormation property naming the peer security group for this direction.
    peer_group_key: ClassVar[str]

    @property
    def is_egress(self) -> bool:
        return self.direction == "egress"

    # --- the rule as AWS wants it, and as AWS describes it ----------------------------------

    def ip_permission(self, props: dict[str, Any]) -> dict[str, Any]:
        """The one ``IpPermissions`` entry for the CloudFormation properties."""
        protocol = normalise_protocol(props["IpProtocol"])
        permission: dict[str, Any] = {"IpProtocol": protocol}
        if protocol != "-1":
            permission["FromPort"] = int(props["FromPort"])
            permission["ToPort"] = int(props["ToPort"])
        described = {"Description": props["Description"]} if props.get("Description") else {}
        if props.get(self.peer_group_key):
            permission["UserIdGroupPairs"] = [{"GroupId": props[self.peer_group_key], **described}]
        elif props.get("CidrIp"):
            permission["IpRanges"] = [{"CidrIp": props["CidrIp"], **described}]
        elif props.get("CidrIpv6"):
            permission["Ipv6Ranges"] = [{"CidrIpv6": props["CidrIpv6"], **described}]
        else:
            raise ValueError(
                f"a security group {self.direction} rule needs {self.peer_group_key}, CidrIp or "
                "CidrIpv6"
            )
        return permission

    def matches(self, rule: dict[str, Any], props: dict[str, Any]) -> bool:
        """Whether a ``DescribeSecurityGroupRules`` item is the rule ``props`` describe (its
        natural key: group, direction, protocol, ports, peer; the description is not part of
        it, as AWS itself ignores it when detecting duplicates)."""
        if rule.get("GroupId") != props["GroupId"] or bool(rule.get("IsEgress")) != self.is_egress:
            return False
        protocol = normalise_protocol(props["IpProtocol"])
        if normalise_protocol(rule.get("IpProtocol", "")) != protocol:
            return False
        if protocol != "-1" and (
            rule.get("FromPort") != int(props["FromPort"])
            or rule.get("ToPort") != int(props["ToPort"])
        ):
            return False
        if props.get(self.peer_group_key):
            return (rule.get("ReferencedGroupInfo") or {}).get("GroupId") == props[
                self.peer_group_key
            ]
        if props.get("CidrIp"):
            return rule.get("CidrIpv4") == props["CidrIp"]
        return bool(props.get("CidrIpv6")) and rule.get("CidrIpv6") == props["CidrIpv6"]

    # --- contract -----------------------------------------------------------------------------

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        """Rules carrying the node's gantry tags; if none, the one rule with the natural key,
        unless it is tagged as another node's."""
        tagged = [
            rule["SecurityGroupRuleId"]
            for rule in _describe_rules(ctx, Filters=ctx.tag_filters(node))
            if ctx.owns(node, rule.get("Tags")) and bool(rule.get("IsEgress")) == self.is_egress
        ]
        if tagged:
            return tagged
        return [rule["SecurityGroupRuleId"] for rule in self._by_natural_key(ctx, node, props)]

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        ec2 = ctx.client("ec2")
        authorize = getattr(ec2, f"authorize_security_group_{self.direction}")
        try:
            response = authorize(
                GroupId=props["GroupId"],
                IpPermissions=[self.ip_permission(props)],
                TagSpecifications=tag_specifications(ctx, node, "security-group-rule", props),
            )
        except ClientError as exc:
            if error_code(exc) != "InvalidPermission.Duplicate":
                raise
            # The rule exists (a create whose answer was lost, or one made by hand): adopt it,
            # and tag it so the next find() sees it by its tags.
            existing = self._by_natural_key(ctx, node, props)
            if not existing:
                raise
            rule_id = existing[0]["SecurityGroupRuleId"]
            tags = tag_specifications(ctx, node, "security-group-rule", props)[0]["Tags"]
            ec2.create_tags(Resources=[rule_id], Tags=tags)
            return rule_id
        # One permission with one peer makes exactly one rule, echoed in the answer.
        return response["SecurityGroupRules"][0]["SecurityGroupRuleId"]

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        # Authorize is synchronous: a rule that can be described is in force.
        if _rule_by_id(ctx, physical_id) is None:
            return not_visible_yet(f"security group {self.direction} rule", physical_id)
        return Ready({})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        rule = _rule_by_id(ctx, physical_id)
        if rule is None:
            return
        revoke = getattr(ctx.client("ec2"), f"revoke_security_group_{self.direction}")
        try:
            revoke(GroupId=rule["GroupId"], SecurityGroupRuleIds=[physical_id])
        except ClientError as exc:
            # InvalidPermission.NotFound, InvalidGroup.NotFound: the rule or its group is gone.
            if not is_not_found(exc):
                raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _rule_by_id(ctx, physical_id) is None:
            return Gone()
        return Pending(f"security group {self.direction} rule {physical_id} is being revoked")

    # --- helpers ------------------------------------------------------------------------------

    def _by_natural_key(
        self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not props.get("GroupId"):
            return []
        try:
            rules = _describe_rules(
                ctx, Filters=[{"Name": "group-id", "Values": [props["GroupId"]]}]
            )
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        return [
            rule
            for rule in rules
            if self.matches(rule, props) and _not_claimed_by_other(rule, ctx, node)
        ]


def _tag_dict(rule: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in rule.get("Tags") or []}


def _not_claimed_by_other(rule: dict[str, Any], ctx: AwsContext, node: ResourceNode) -> bool:
    """A rule without gantry tags, or with this node's: never adopt another node's rule."""
    tags = _tag_dict(rule)
    if TAG_LOGICAL_ID not in tags and TAG_DEPLOYMENT not in tags:
        return True
    return ctx.owns(node, rule.get("Tags"))


def _describe_rules(ctx: AwsContext, **kwargs: Any) -> list[dict[str, Any]]:
    paginator = ctx.client("ec2").get_paginator("describe_security_group_rules")
    return [rule for page in paginator.paginate(**kwargs) for rule in page["SecurityGroupRules"]]


def _rule_by_id(ctx: AwsContext, rule_id: str) -> dict[str, Any] | None:
    """The rule, or ``None`` when AWS does not know it (``InvalidSecurityGroupRuleId.NotFound``
    or an empty answer)."""
    try:
        rules = ctx.client("ec2").describe_security_group_rules(SecurityGroupRuleIds=[rule_id])
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    found = rules.get("SecurityGroupRules") or []
    return found[0] if found else None


def rules_of_group(ctx: AwsContext, group_id: str) -> list[dict[str, Any]]:
    """Every rule of one security group (used by the security group handler to find the
    default allow-all egress rule)."""
    return _describe_rules(ctx, Filters=[{"Name": "group-id", "Values": [group_id]}])
