"""``AWS::EC2::SecurityGroupEgress``: one outbound rule, physical id ``sgr-...``.

All the logic is shared with the ingress rule in :mod:`deployer.resources._rules`; this module only
names the direction and the peer property.
"""

from __future__ import annotations

from deployer.resources._rules import SecurityGroupRuleHandler


class SecurityGroupEgressHandler(SecurityGroupRuleHandler):
    type = "AWS::EC2::SecurityGroupEgress"
    direction = "egress"
    peer_group_key = "DestinationSecurityGroupId"


HANDLER = SecurityGroupEgressHandler()
