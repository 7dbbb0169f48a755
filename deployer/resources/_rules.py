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

Every property of a rule is create-only except ``Description``, which ``update`` changes in
place (``UpdateSecurityGroupRuleDescriptionsIngress``/``Egress``, naming the rule by its natural
key). :func:`rule_text` and :func:`rule_text_of_props` spell a rule as one canonical line
(``"ingress tcp 443 from sg-0abc"``, ``"egress all to 0.0.0.0/0"``): a security group's ``read``
lists every rule AWS has on it that way, and the drift check builds the planned list from the
rule nodes, so a rule added by hand shows as drift.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    describe_by_id,
    error_code,
    is_not_found,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources._update import changed, refuse_create_only
from deployer.resources.base import (
    TAG_DEPLOYMENT,
    TAG_LOGICAL_ID,
    AwsContext,
    Created,
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


#: The CloudFormation property naming each kind of peer, per direction.
_PEER_KEYS = {
    "ingress": ("SourceSecurityGroupId", "CidrIp", "CidrIpv6", "SourcePrefixListId"),
    "egress": ("DestinationSecurityGroupId", "CidrIp", "CidrIpv6", "DestinationPrefixListId"),
}


def _port(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _canonical(egress: bool, protocol: Any, from_port: Any, to_port: Any, peer: str) -> str:
    protocol = normalise_protocol(protocol)
    words = ["egress" if egress else "ingress", "all" if protocol == "-1" else protocol]
    low, high = _port(from_port), _port(to_port)
    # All traffic has no ports; ICMP's "all types" is -1/-1.
    if protocol != "-1" and not (low in (None, -1) and high in (None, -1)):
        words.append(str(low) if low == high else f"{low}-{high}")
    words += ["to" if egress else "from", peer]
    return " ".join(words)


def rule_text(rule: dict[str, Any]) -> str:
    """One rule as AWS describes it (a ``DescribeSecurityGroupRules`` item, or one peer of a
    group's ``IpPermissions`` as :func:`permission_rules` spells it), as a canonical line:
    ``"ingress tcp 443 from sg-0abc"``, ``"egress tcp 1000-2000 to 10.0.0.0/16"``,
    ``"egress all to 0.0.0.0/0"``. The description is not part of it (it is not part of a
    rule's identity either: AWS ignores it when it detects duplicates)."""
    peer = (
        (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
        or rule.get("CidrIpv4")
        or rule.get("CidrIpv6")
        or rule.get("PrefixListId")
        or "nothing"
    )
    return _canonical(
        bool(rule.get("IsEgress")),
        rule.get("IpProtocol", "-1"),
        rule.get("FromPort"),
        rule.get("ToPort"),
        str(peer),
    )


def rule_text_of_props(props: dict[str, Any], *, egress: bool) -> str:
    """A rule node's resolved properties (an ``AWS::EC2::SecurityGroupEgress`` with
    ``egress=True``, an ``...Ingress`` with ``False``) as the line :func:`rule_text` gives for
    the rule AWS makes of them."""
    direction = "egress" if egress else "ingress"
    peer = next((props[key] for key in _PEER_KEYS[direction] if props.get(key)), "nothing")
    return _canonical(
        egress,
        props.get("IpProtocol", "-1"),
        props.get("FromPort"),
        props.get("ToPort"),
        str(peer),
    )


#: Where a group's ``IpPermissions`` entry lists its peers, and how each peer is spelled in a
#: ``DescribeSecurityGroupRules`` item.
_PERMISSION_PEERS = (
    ("UserIdGroupPairs", lambda p: {"ReferencedGroupInfo": {"GroupId": p.get("GroupId")}}),
    ("IpRanges", lambda p: {"CidrIpv4": p.get("CidrIp")}),
    ("Ipv6Ranges", lambda p: {"CidrIpv6": p.get("CidrIpv6")}),
    ("PrefixListIds", lambda p: {"PrefixListId": p.get("PrefixListId")}),
)


def permission_rules(group: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``DescribeSecurityGroups`` item's ``IpPermissions`` and ``IpPermissionsEgress`` as one
    ``DescribeSecurityGroupRules``-shaped item per peer (without the rule ids), so one describe
    of the group gives every rule of it."""
    rules: list[dict[str, Any]] = []
    for key, egress in (("IpPermissions", False), ("IpPermissionsEgress", True)):
        for permission in group.get(key) or []:
            base = {
                "GroupId": group.get("GroupId"),
                "IsEgress": egress,
                "IpProtocol": permission.get("IpProtocol", "-1"),
                "FromPort": permission.get("FromPort"),
                "ToPort": permission.get("ToPort"),
            }
            for list_key, peer_of in _PERMISSION_PEERS:
                for entry in permission.get(list_key) or []:
                    rule = {**base, **peer_of(entry)}
                    if "Description" in entry:
                        rule["Description"] = entry["Description"]
                    rules.append(rule)
    return rules


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

    def ip_permission(
        self, props: dict[str, Any], *, description: str | None = None
    ) -> dict[str, Any]:
        """The one ``IpPermissions`` entry for the CloudFormation properties. ``description``
        overrides theirs (``""`` to clear it, as UpdateSecurityGroupRuleDescriptions* does)."""
        protocol = normalise_protocol(props["IpProtocol"])
        permission: dict[str, Any] = {"IpProtocol": protocol}
        if protocol != "-1":
            permission["FromPort"] = int(props["FromPort"])
            permission["ToPort"] = int(props["ToPort"])
        if description is None:
            described = {"Description": props["Description"]} if props.get("Description") else {}
        else:
            described = {"Description": description}
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
        return rule.get("GroupId") == props["GroupId"] and rule_text(rule) == rule_text_of_props(
            props, egress=self.is_egress
        )

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
        # One permission with one peer makes exactly one rule, echoed in the answer; Authorize
        # is synchronous, so it is in force.
        return Created(response["SecurityGroupRules"][0]["SecurityGroupRuleId"])

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        # Authorize is synchronous: a rule that can be described is in force.
        if _rule_by_id(ctx, physical_id) is None:
            return not_visible_yet(f"security group {self.direction} rule", physical_id)
        return Ready({})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """The rule's CloudFormation properties, from one DescribeSecurityGroupRules call.

        ``Description`` is ``""`` when the rule has none (so a description removed by hand is
        seen). The moto emulator leaves it out of DescribeSecurityGroupRules for rules that
        reference a group (AWS reports it); only then is it taken from the group's own
        description of its rules (DescribeSecurityGroups), which on AWS gives the same answer.
        """
        rule = _rule_by_id(ctx, physical_id)
        if rule is None or bool(rule.get("IsEgress")) != self.is_egress:
            return None
        protocol = normalise_protocol(rule.get("IpProtocol", "-1"))
        props: dict[str, Any] = {"GroupId": rule.get("GroupId"), "IpProtocol": protocol}
        if protocol != "-1":
            props["FromPort"], props["ToPort"] = rule.get("FromPort"), rule.get("ToPort")
        peer_group = (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
        if peer_group:
            props[self.peer_group_key] = peer_group
        elif rule.get("CidrIpv4"):
            props["CidrIp"] = rule["CidrIpv4"]
        elif rule.get("CidrIpv6"):
            props["CidrIpv6"] = rule["CidrIpv6"]
        elif rule.get("PrefixListId"):
            props[_PEER_KEYS[self.direction][3]] = rule["PrefixListId"]
        if "Description" in rule:
            props["Description"] = rule["Description"]
        else:
            props["Description"] = _group_description_of(ctx, rule) if peer_group else ""
        return props

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """Only the description changes in place; every other property of a rule is its
        identity (create-only: a changed port or peer is a new rule)."""
        refuse_create_only(self.type, before, after, ctx.region)
        if not changed(before, after, "Description"):
            return
        describe = getattr(
            ctx.client("ec2"), f"update_security_group_rule_descriptions_{self.direction}"
        )
        # Named by its natural key (the form both AWS and the emulator accept).
        describe(
            GroupId=after["GroupId"],
            IpPermissions=[self.ip_permission(after, description=after.get("Description") or "")],
        )

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
    """Every rule of one security group, with its id (used by the security group handler to
    revoke the default allow-all egress rule and the rules nobody planned)."""
    return _describe_rules(ctx, Filters=[{"Name": "group-id", "Values": [group_id]}])


def _group_description_of(ctx: AwsContext, rule: dict[str, Any]) -> str:
    """A rule's description as its group's ``IpPermissions`` give it (see ``read``)."""
    group = describe_by_id(
        ctx, "describe_security_groups", "SecurityGroups", "GroupIds", rule.get("GroupId", "")
    )
    text = rule_text(rule)
    for described in permission_rules(group or {}):
        if rule_text(described) == text:
            return str(described.get("Description") or "")
    return ""
