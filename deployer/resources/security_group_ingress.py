"""``AWS::EC2::SecurityGroupIngress``: one inbound rule, physical id ``sgr-...``.

All the logic is shared with the egress rule in :mod:`deployer.resources._rules`; this module only
names the direction and the peer property.
"""

from __future__ import annotations

from deployer.resources._rules import SecurityGroupRuleHandler


class SecurityGroupIngressHandler(SecurityGroupRuleHandler):
    type = "AWS::EC2::SecurityGroupIngress"
    direction = "ingress"
    peer_group_key = "SourceSecurityGroupId"


HANDLER = SecurityGroupIngressHandler()
