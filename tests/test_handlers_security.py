"""The security, secrets, identity and logging handlers (security groups and their rules, the
Secrets Manager endpoint and secret, IAM roles, inline policies, instance profiles, the Lambda's
log group) against the moto server over HTTP.

Nodes come from a real plan, driven by ``tests.support.HandlerDriver``: each node's Refs are
resolved by the engine's own ``resolve`` (Ref -> the physical id, Ref(x, attr) -> x's Ready
attribute). The VPC and subnets belong to the network handlers and are made with plain boto3. The last section feeds the handlers answers real
AWS gives but the emulator never does (pending and failed endpoint states, DependencyViolation):
a botocore Stubber in front of a real client, which checks every stubbed answer against AWS's own
service model.

Live stacks: for every type, what ``read`` gives back after a create is what was applied
(``drift.compare`` finds nothing), ``update`` makes the changes a new design version brings (tags)
and reads back, a change made by hand (boto3 straight to the emulator) shows in ``compare`` and
``update(before=read, after=props)`` puts it right, and a deleted resource reads as ``None``.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from deployer.drift import RULES, Difference, compare
from deployer.resources import handler_for
from deployer.resources._rules import rule_text, rule_text_of_props
from deployer.resources.base import (
    TAG_DEPLOYMENT,
    TAG_INSTALLATION,
    TAG_LOGICAL_ID,
    AwsContext,
    CannotUpdate,
    Failed,
    Pending,
    Ready,
    RetryLater,
    tag_map,
)
from deployer.resources.vpc_endpoint import endpoint_status
from designer.graph import Ref
from designer.plan import LAMBDA_MANAGED_POLICIES, plan
from designer.spec import Spec
from tests.support import HandlerDriver

#: No NAT: the plan has the Secrets Manager endpoint, its security group and their rules.
SPEC = Spec(
    name="demo",
    region="us-east-1",
    vpc_cidr="10.0.0.0/16",
    public_subnet_cidrs=(),
    lambda_subnet_cidrs=("10.0.1.0/24", "10.0.4.0/24"),
    api_subnet_cidrs=("10.0.2.0/24", "10.0.3.0/24"),
    api_port=8443,
    nat="none",
    api_kind="ec2",
    tags=(("team", "payments"),),
)
#: With a NAT the Lambda's HTTPS egress is a CIDR rule.
NAT_SPEC = dataclasses.replace(SPEC, public_subnet_cidrs=("10.0.0.0/24",), nat="single")
SPEC_TAGS = {"team": "payments"}
REGION = "us-east-1"


#: The CloudFormation type of each rule node: whether it is an egress rule.
EGRESS = {"AWS::EC2::SecurityGroupIngress": False, "AWS::EC2::SecurityGroupEgress": True}


class Deployment(HandlerDriver):
    """The handler driver, with the network these handlers need made by plain boto3, and the
    live-stack calls (read, update, and the drift check's comparison)."""

    spec: Spec

    def read(self, logical_id: str) -> dict[str, Any] | None:
        return self.handler(logical_id).read(self.ctx, self.node(logical_id), self.ids[logical_id])

    def update(
        self, logical_id: str, before: dict[str, Any], after: dict[str, Any] | None = None
    ) -> None:
        """``update`` to ``after`` (the node's properties when not given); a new physical id
        it returns (an inline policy moved to other roles) is recorded as the engine would."""
        new_id = self.handler(logical_id).update(
            self.ctx,
            self.node(logical_id),
            self.ids[logical_id],
            before,
            self.props(logical_id) if after is None else after,
        )
        if isinstance(new_id, str):
            self.ids[logical_id] = new_id

    def drift(self, logical_id: str, expected: dict[str, Any] | None = None) -> list[Difference]:
        live = self.read(logical_id)
        assert live is not None, f"{logical_id} does not exist"
        wanted = self.props(logical_id) if expected is None else expected
        return compare(self.node(logical_id).type, wanted, live, REGION)

    def planned_rules(self, group: str) -> list[str]:
        """The rule lines of every rule node on ``group`` that exists, as the drift check
        builds the group's expected ``Rules``."""
        return sorted(
            rule_text_of_props(self.props(node.logical_id), egress=EGRESS[node.type])
            for node in self.graph
            if node.type in EGRESS
            and node.properties["GroupId"] == Ref(group)
            and node.logical_id in self.ids
        )

    def retagged(self, tags: dict[str, str]) -> Deployment:
        """The same deployment driven by a later design version whose only change is its tags
        (the change set modifies every tagged resource in place)."""
        spec = dataclasses.replace(self.spec, tags=tuple(tags.items()))
        other = Deployment(dataclasses.replace(self.ctx, spec_tags=tags), plan(spec))
        other.spec, other.ids, other.attributes = spec, self.ids, self.attributes
        return other

    def network(self, ec2: Any) -> None:
        """The VPC and Lambda subnets (the network handlers' job), made with plain boto3."""
        self.ids["Vpc"] = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        for logical_id, cidr, az in (
            ("LambdaSubnet1", "10.0.1.0/24", "us-east-1a"),
            ("LambdaSubnet2", "10.0.4.0/24", "us-east-1b"),
        ):
            self.ids[logical_id] = ec2.create_subnet(
                VpcId=self.ids["Vpc"], CidrBlock=cidr, AvailabilityZone=az
            )["Subnet"]["SubnetId"]


@pytest.fixture
def clients(moto_endpoint) -> dict[str, Any]:
    return {
        service: boto3.client(service, region_name=REGION, endpoint_url=moto_endpoint)
        for service in ("ec2", "iam", "secretsmanager", "logs")
    }


def unique(spec: Spec) -> Spec:
    """The spec under a fresh name: secret, log group and security group names derive from it
    and are account-wide, while the moto server lives for the whole test session."""
    return dataclasses.replace(spec, name=f"sec-{uuid.uuid4().hex[:8]}")


def deployment(aws_context, clients, spec: Spec) -> Deployment:
    spec = unique(spec)
    driver = Deployment(aws_context(spec_tags=SPEC_TAGS), plan(spec))
    driver.spec = spec
    driver.network(clients["ec2"])
    return driver


@pytest.fixture
def dep(aws_context, clients) -> Deployment:
    return deployment(aws_context, clients, SPEC)


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or []}


def assert_gantry_tags(dep: Deployment, logical_id: str, tags: dict[str, str]) -> None:
    assert tags[TAG_DEPLOYMENT] == dep.ctx.deployment_tag
    assert tags[TAG_LOGICAL_ID] == logical_id
    assert tags["Name"] == dep.node(logical_id).meta["name"]
    assert tags["team"] == "payments"


def code_of(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


# --- Security groups ---------------------------------------------------------------------------


def egress_rules(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "SecurityGroupRules"
    ]
    return [r for r in rules if r["IsEgress"]]


def test_security_group_lifecycle_revokes_the_default_egress(dep: Deployment, clients) -> None:
    ec2 = clients["ec2"]
    group_id = dep.create("LambdaSecurityGroup")
    assert group_id.startswith("sg-")
    # AWS's allow-all egress rule is gone as soon as create returns: before any rule node of
    # the group runs, and without check_ready doing anything.
    assert egress_rules(ec2, group_id) == []
    ready, reasons = dep.settle("LambdaSecurityGroup")
    assert reasons == []
    assert ready.attributes == {}

    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    props = dep.props("LambdaSecurityGroup")
    assert group["GroupName"] == props["GroupName"]
    assert group["Description"] == props["GroupDescription"]
    assert group["VpcId"] == dep.ids["Vpc"]
    assert_gantry_tags(dep, "LambdaSecurityGroup", tags_of(group))
    # What read gives back is what was applied, and the group has no rule at all yet.
    assert dep.drift("LambdaSecurityGroup") == []
    assert dep.read("LambdaSecurityGroup")[RULES] == []

    assert dep.find("LambdaSecurityGroup") == [group_id]
    # A duplicate left by a lost create response (same tags) is found too.
    duplicate = ec2.create_security_group(
        GroupName="duplicate",
        Description="d",
        VpcId=dep.ids["Vpc"],
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": dep.ctx.tags(dep.node("LambdaSecurityGroup")),
            }
        ],
    )["GroupId"]
    assert sorted(dep.find("LambdaSecurityGroup")) == sorted([group_id, duplicate])

    dep.destroy("LambdaSecurityGroup")
    assert dep.find("LambdaSecurityGroup") == [duplicate]
    assert dep.read("LambdaSecurityGroup") is None


def test_security_group_without_the_revoke_flag_keeps_aws_default(dep: Deployment, clients) -> None:
    node = dep.node("ApiSecurityGroup")
    dep.graph.nodes["ApiSecurityGroup"] = dataclasses.replace(
        node, meta={**node.meta, "revoke_default_egress": False}
    )
    group_id = dep.create("ApiSecurityGroup")
    assert dep.settle("ApiSecurityGroup")[1] == []
    dep.update("ApiSecurityGroup", {})
    assert len(egress_rules(clients["ec2"], group_id)) == 1
    assert dep.read("ApiSecurityGroup")[RULES] == ["egress all to 0.0.0.0/0"]


def test_default_egress_revocation_converges_on_an_adopted_group(dep: Deployment, clients) -> None:
    """A group found by its tags (its create answer lost) loses the default rule through the
    update the engine runs on what it adopts; check_ready only looks."""
    ec2 = clients["ec2"]
    props = dep.props("ApiSecurityGroup")
    group_id = ec2.create_security_group(
        GroupName=props["GroupName"],
        Description=props["GroupDescription"],
        VpcId=dep.ids["Vpc"],
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": dep.ctx.tags(dep.node("ApiSecurityGroup"))}
        ],
    )["GroupId"]
    assert dep.find("ApiSecurityGroup") == [group_id]
    dep.ids["ApiSecurityGroup"] = group_id
    assert dep.settle("ApiSecurityGroup")[1] == []
    assert len(egress_rules(ec2, group_id)) == 1  # check_ready changed nothing
    dep.update("ApiSecurityGroup", {})
    assert egress_rules(ec2, group_id) == []
    dep.update("ApiSecurityGroup", {})  # nothing left to revoke: harmless
    assert dep.drift("ApiSecurityGroup") == []


def test_security_group_rules_compared_whole(dep: Deployment, clients) -> None:
    """The case that matters most: a world-open SSH ingress added by hand to SG-API is drift,
    and the update that repairs it revokes it and nothing Gantry planned."""
    ec2 = clients["ec2"]
    dep.up("LambdaSecurityGroup", "ApiSecurityGroup")
    dep.up("LambdaToApiEgress", "ApiFromLambdaIngress")
    lambda_sg, api_sg = dep.ids["LambdaSecurityGroup"], dep.ids["ApiSecurityGroup"]
    assert dep.planned_rules("ApiSecurityGroup") == [f"ingress tcp 8443 from {lambda_sg}"]
    assert dep.planned_rules("LambdaSecurityGroup") == [f"egress tcp 8443 to {api_sg}"]
    for group in ("LambdaSecurityGroup", "ApiSecurityGroup"):
        live = dep.read(group)
        # The group's own listing (one describe) says what DescribeSecurityGroupRules says.
        described = egress_rules(ec2, dep.ids[group]) + [
            r
            for r in ec2.describe_security_group_rules(
                Filters=[{"Name": "group-id", "Values": [dep.ids[group]]}]
            )["SecurityGroupRules"]
            if not r["IsEgress"]
        ]
        assert live[RULES] == sorted(rule_text(r) for r in described) == dep.planned_rules(group)
        assert dep.drift(group, {**dep.props(group), RULES: dep.planned_rules(group)}) == []
    # The rules themselves read back as applied, description included (DescribeSecurityGroupRules
    # on the emulator leaves it out for rules whose peer is a group; AWS reports it).
    for logical_id in ("LambdaToApiEgress", "ApiFromLambdaIngress"):
        assert dep.drift(logical_id) == []
        assert dep.read(logical_id)["Description"] == dep.props(logical_id)["Description"]
    assert dep.read("ApiFromLambdaIngress")["SourceSecurityGroupId"] == lambda_sg
    assert dep.read("LambdaToApiEgress")["DestinationSecurityGroupId"] == api_sg
    # An ingress rule is never read as the egress one (or the other way round).
    egress_handler = handler_for("AWS::EC2::SecurityGroupEgress")
    assert (
        egress_handler.read(dep.ctx, dep.node("LambdaToApiEgress"), dep.ids["ApiFromLambdaIngress"])
        is None
    )

    ec2.authorize_security_group_ingress(
        GroupId=api_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    ec2.authorize_security_group_egress(
        GroupId=lambda_sg,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    for group, added in (
        ("ApiSecurityGroup", "ingress tcp 22 from 0.0.0.0/0"),
        ("LambdaSecurityGroup", "egress all to 0.0.0.0/0"),
    ):
        expected = {**dep.props(group), RULES: dep.planned_rules(group)}
        live = dep.read(group)
        assert dep.drift(group, expected) == [
            Difference(RULES, expected[RULES], sorted([*expected[RULES], added]))
        ]
        dep.update(group, live, expected)
        assert dep.drift(group, expected) == []
    # The planned rules are still the very rules the rule nodes made.
    assert dep.read("ApiFromLambdaIngress") is not None
    assert dep.read("LambdaToApiEgress") is not None

    # A rule of this deployment's own rule nodes is never revoked by the group (its record
    # deletes it once whatever replaces it exists), even when the list leaves it out.
    dep.update("ApiSecurityGroup", {}, {**dep.props("ApiSecurityGroup"), RULES: []})
    assert dep.read("ApiSecurityGroup")[RULES] == dep.planned_rules("ApiSecurityGroup")

    # Revoked by hand: the group's read shows it, and the rule itself reads as gone.
    ec2.revoke_security_group_ingress(
        GroupId=api_sg, SecurityGroupRuleIds=[dep.ids["ApiFromLambdaIngress"]]
    )
    assert dep.read("ApiSecurityGroup")[RULES] == []
    assert dep.read("ApiFromLambdaIngress") is None


# --- Security group rules ----------------------------------------------------------------------


def rule(ec2: Any, rule_id: str) -> dict[str, Any]:
    return ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"][
        0
    ]


def test_ingress_and_egress_rules_reference_groups(dep: Deployment, clients) -> None:
    ec2 = clients["ec2"]
    dep.up("LambdaSecurityGroup", "ApiSecurityGroup")
    lambda_sg, api_sg = dep.ids["LambdaSecurityGroup"], dep.ids["ApiSecurityGroup"]

    ingress_id = dep.create("ApiFromLambdaIngress")
    egress_id = dep.create("LambdaToApiEgress")
    for logical_id, rule_id in (
        ("ApiFromLambdaIngress", ingress_id),
        ("LambdaToApiEgress", egress_id),
    ):
        assert rule_id.startswith("sgr-")
        assert dep.settle(logical_id)[0].attributes == {}
        assert dep.find(logical_id) == [rule_id]
        # Tagged like everything else (rules are untagged in CloudFormation, not in EC2).
        assert_gantry_tags(dep, logical_id, tags_of(rule(ec2, rule_id)))

    ingress = rule(ec2, ingress_id)
    assert (ingress["GroupId"], ingress["IsEgress"]) == (api_sg, False)
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 8443, 8443)
    assert ingress["ReferencedGroupInfo"]["GroupId"] == lambda_sg
    egress = rule(ec2, egress_id)
    assert (egress["GroupId"], egress["IsEgress"]) == (lambda_sg, True)
    assert egress["ReferencedGroupInfo"]["GroupId"] == api_sg
    # SG-Lambda now allows exactly one thing out: the API port to SG-API.
    assert [r["SecurityGroupRuleId"] for r in egress_rules(ec2, lambda_sg)] == [egress_id]

    # The ingress rule is not mistaken for the egress one and vice versa.
    assert dep.find("ApiFromLambdaIngress") == [ingress_id]

    dep.destroy("LambdaToApiEgress")
    dep.destroy("ApiFromLambdaIngress")
    assert dep.find("LambdaToApiEgress") == []
    assert dep.find("ApiFromLambdaIngress") == []
    # With their rules gone, the groups go too.
    dep.destroy("ApiSecurityGroup")
    dep.destroy("LambdaSecurityGroup")


def test_cidr_egress_rule(aws_context, clients) -> None:
    dep = Deployment(aws_context(spec_tags=SPEC_TAGS), plan(unique(NAT_SPEC)))
    dep.network(clients["ec2"])
    dep.up("LambdaSecurityGroup")
    rule_id = dep.create("LambdaHttpsEgress")
    dep.settle("LambdaHttpsEgress")
    described = rule(clients["ec2"], rule_id)
    assert described["CidrIpv4"] == "0.0.0.0/0"
    assert (described["IpProtocol"], described["FromPort"], described["ToPort"]) == (
        "tcp",
        443,
        443,
    )
    assert described["Description"] == dep.props("LambdaHttpsEgress")["Description"]
    assert dep.find("LambdaHttpsEgress") == [rule_id]
    dep.destroy("LambdaHttpsEgress")


def test_rule_create_adopts_an_existing_identical_rule(dep: Deployment, clients) -> None:
    """InvalidPermission.Duplicate: the rule is already there (made without tags, e.g. by hand);
    create adopts it and tags it, so the next find() sees it by its tags."""
    ec2 = clients["ec2"]
    dep.up("LambdaSecurityGroup", "ApiSecurityGroup")
    props = dep.props("LambdaToApiEgress")
    existing = ec2.authorize_security_group_egress(
        GroupId=props["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 8443,
                "ToPort": 8443,
                "UserIdGroupPairs": [
                    {
                        "GroupId": props["DestinationSecurityGroupId"],
                        "Description": props["Description"],
                    }
                ],
            }
        ],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    # Untagged, it is still found by its natural key (group, direction, protocol, ports, peer).
    assert dep.find("LambdaToApiEgress") == [existing]
    assert dep.create("LambdaToApiEgress") == existing
    assert_gantry_tags(dep, "LambdaToApiEgress", tags_of(rule(ec2, existing)))
    assert len(egress_rules(ec2, props["GroupId"])) == 1


def test_rule_find_never_adopts_another_nodes_rule(dep: Deployment, clients) -> None:
    dep.up("LambdaSecurityGroup", "ApiSecurityGroup", "EndpointSecurityGroup")
    dep.create("LambdaToApiEgress")
    # Same group, same direction, a different node: not a match.
    assert dep.find("LambdaToEndpointEgress") == []
    # A rule with the same natural key tagged as another node's is not adopted either.
    clients["ec2"].create_tags(
        Resources=[dep.ids["LambdaToApiEgress"]],
        Tags=[{"Key": TAG_LOGICAL_ID, "Value": "SomethingElse"}],
    )
    assert dep.find("LambdaToApiEgress") == []


def as_cidr_ingress(dep: Deployment, logical_id: str, cidr: str) -> None:
    """Turn a planned group-to-group ingress rule into one from a CIDR (see below)."""
    node = dep.node(logical_id)
    properties = {k: v for k, v in node.properties.items() if k != "SourceSecurityGroupId"}
    dep.graph.nodes[logical_id] = dataclasses.replace(
        node, properties={**properties, "CidrIp": cidr}
    )


@pytest.mark.parametrize(
    ("spec", "logical_id"),
    [(NAT_SPEC, "LambdaHttpsEgress"), (SPEC, "ApiFromLambdaIngress")],
)
def test_rule_read_and_description_update(
    aws_context, clients, spec: Spec, logical_id: str
) -> None:
    """The emulator changes the description only of rules whose peer is a CIDR (it compares a
    group peer's old description with the new one and never finds the rule), so the round
    trip is made on CIDR rules in both directions; the call for a group peer is checked
    against AWS's service model in the last section."""
    ec2 = clients["ec2"]
    dep = deployment(aws_context, clients, spec)
    if logical_id == "ApiFromLambdaIngress":
        as_cidr_ingress(dep, logical_id, "10.0.1.0/24")
    dep.up("LambdaSecurityGroup", "ApiSecurityGroup")
    rule_id = dep.create(logical_id)
    dep.settle(logical_id)
    props = dep.props(logical_id)
    assert dep.drift(logical_id) == []
    assert dep.read(logical_id)["Description"] == props["Description"]

    # The description is the one property that changes in place: same rule, new text.
    dep.update(logical_id, props, {**props, "Description": "changed in a new version"})
    assert dep.ids[logical_id] == rule_id
    assert dep.read(logical_id)["Description"] == "changed in a new version"
    dep.update(logical_id, {}, props)
    assert dep.drift(logical_id) == []

    # Changed by hand to nothing: drift, put back by the update a repair runs.
    handler = dep.handler(logical_id)
    getattr(ec2, f"update_security_group_rule_descriptions_{handler.direction}")(
        GroupId=props["GroupId"], IpPermissions=[handler.ip_permission(props, description="")]
    )
    live = dep.read(logical_id)
    assert dep.drift(logical_id) == [Difference("Description", props["Description"], "")]
    dep.update(logical_id, live)
    assert dep.drift(logical_id) == []

    # Another port is another rule: the change set replaces it, update refuses it.
    with pytest.raises(CannotUpdate, match="FromPort, ToPort"):
        dep.update(logical_id, props, {**props, "FromPort": 22, "ToPort": 22})
    dep.destroy(logical_id)
    assert dep.read(logical_id) is None


@pytest.mark.parametrize(
    ("described", "text"),
    [
        (
            {
                "IsEgress": False,
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "ReferencedGroupInfo": {"GroupId": "sg-0abc", "UserId": "123456789012"},
            },
            "ingress tcp 443 from sg-0abc",
        ),
        (
            {
                "IsEgress": True,
                "IpProtocol": "6",
                "FromPort": 443,
                "ToPort": 443,
                "CidrIpv4": "0/0",
            },
            "egress tcp 443 to 0/0",
        ),
        (
            {
                "IsEgress": True,
                "IpProtocol": "-1",
                "FromPort": -1,
                "ToPort": -1,
                "CidrIpv4": "0.0.0.0/0",
            },
            "egress all to 0.0.0.0/0",
        ),
        (
            {
                "IsEgress": False,
                "IpProtocol": "tcp",
                "FromPort": 1000,
                "ToPort": 2000,
                "CidrIpv4": "10.0.0.0/16",
            },
            "ingress tcp 1000-2000 from 10.0.0.0/16",
        ),
        (
            {
                "IsEgress": False,
                "IpProtocol": "icmp",
                "FromPort": -1,
                "ToPort": -1,
                "CidrIpv6": "::/0",
            },
            "ingress icmp from ::/0",
        ),
        (
            {
                "IsEgress": True,
                "IpProtocol": "udp",
                "FromPort": 53,
                "ToPort": 53,
                "PrefixListId": "pl-1",
            },
            "egress udp 53 to pl-1",
        ),
    ],
)
def test_rule_text_of_a_described_rule(described: dict[str, Any], text: str) -> None:
    assert rule_text(described) == text


@pytest.mark.parametrize(
    ("props", "egress", "text"),
    [
        (
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "SourceSecurityGroupId": "sg-1"},
            False,
            "ingress tcp 443 from sg-1",
        ),
        (
            {
                "IpProtocol": "tcp",
                "FromPort": "8443",
                "ToPort": "8443",
                "DestinationSecurityGroupId": "sg-2",
            },
            True,
            "egress tcp 8443 to sg-2",
        ),
        ({"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}, True, "egress all to 0.0.0.0/0"),
        (
            {"IpProtocol": "tcp", "FromPort": 1000, "ToPort": 2000, "CidrIp": "10.0.0.0/16"},
            False,
            "ingress tcp 1000-2000 from 10.0.0.0/16",
        ),
    ],
)
def test_rule_text_of_a_rule_node(props: dict[str, Any], egress: bool, text: str) -> None:
    assert rule_text_of_props(props, egress=egress) == text


# --- VPC endpoint ------------------------------------------------------------------------------


def test_vpc_endpoint_lifecycle(dep: Deployment, clients) -> None:
    ec2 = clients["ec2"]
    dep.up("EndpointSecurityGroup")
    endpoint_id = dep.create("SecretsManagerEndpoint")
    assert endpoint_id.startswith("vpce-")
    assert dep.settle("SecretsManagerEndpoint")[0].attributes == {}

    endpoint = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["ServiceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert endpoint["PrivateDnsEnabled"] is True
    assert sorted(endpoint["SubnetIds"]) == sorted(
        [dep.ids["LambdaSubnet1"], dep.ids["LambdaSubnet2"]]
    )
    assert [g["GroupId"] for g in endpoint["Groups"]] == [dep.ids["EndpointSecurityGroup"]]
    assert_gantry_tags(dep, "SecretsManagerEndpoint", tags_of(endpoint))

    assert dep.find("SecretsManagerEndpoint") == [endpoint_id]
    props = dep.props("SecretsManagerEndpoint")
    duplicate = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=props["VpcId"],
        ServiceName=props["ServiceName"],
        SubnetIds=props["SubnetIds"],
        TagSpecifications=[
            {
                "ResourceType": "vpc-endpoint",
                "Tags": dep.ctx.tags(dep.node("SecretsManagerEndpoint")),
            }
        ],
    )["VpcEndpoint"]["VpcEndpointId"]
    assert sorted(dep.find("SecretsManagerEndpoint")) == sorted([endpoint_id, duplicate])

    dep.destroy("SecretsManagerEndpoint")
    # A deleted endpoint (still described, state "deleted") is not found.
    assert dep.find("SecretsManagerEndpoint") == [duplicate]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("pendingAcceptance", Pending("VPC endpoint is pending acceptance by the service")),
        ("pending", Pending("VPC endpoint is pending")),
        ("available", Ready({})),
        ("failed", Failed("VPC endpoint vpce-1 is failed: no capacity in us-east-1e")),
        ("rejected", Failed("VPC endpoint vpce-1 is rejected: no capacity in us-east-1e")),
        ("deleted", Failed("VPC endpoint vpce-1 was deleted outside Gantry")),
    ],
)
def test_vpc_endpoint_states(state: str, expected: Ready | Pending | Failed) -> None:
    endpoint = {
        "VpcEndpointId": "vpce-1",
        "State": state,
        "LastError": {"Code": "Capacity", "Message": "no capacity in us-east-1e"},
    }
    assert endpoint_status(endpoint) == expected


# --- Secret ------------------------------------------------------------------------------------


def test_secret_is_created_without_a_value(dep: Deployment, clients) -> None:
    sm = clients["secretsmanager"]
    arn = dep.create("ApiSecret")
    assert arn.startswith("arn:aws:secretsmanager:us-east-1:")
    assert dep.settle("ApiSecret")[0].attributes == {}
    described = sm.describe_secret(SecretId=arn)
    props = dep.props("ApiSecret")
    assert described["Name"] == props["Name"]
    assert described["Description"] == props["Description"]
    assert_gantry_tags(dep, "ApiSecret", tags_of(described))
    # Gantry never put a value: the API instance generates and stores it at first boot.
    assert not described.get("VersionIdsToStages")
    with pytest.raises(ClientError) as raised:
        sm.get_secret_value(SecretId=arn)
    assert code_of(raised.value) == "ResourceNotFoundException"

    assert dep.find("ApiSecret") == [arn]
    # A create repeated after a lost answer adopts the secret instead of failing on the name.
    assert dep.create("ApiSecret") == arn
    # Another secret with the same tags (under another name) is found as a duplicate.
    duplicate = sm.create_secret(
        Name=props["Name"] + "-twin", Tags=dep.ctx.tags(dep.node("ApiSecret"))
    )["ARN"]
    assert sorted(dep.find("ApiSecret")) == sorted([arn, duplicate])

    dep.destroy("ApiSecret")
    assert dep.find("ApiSecret") == [duplicate]
    # Deleted without a recovery window: the same design can be deployed again at once.
    assert dep.create("ApiSecret") != arn
    dep.destroy("ApiSecret")


def test_secret_name_taken_by_someone_else_fails(dep: Deployment, clients) -> None:
    clients["secretsmanager"].create_secret(Name=dep.props("ApiSecret")["Name"])
    with pytest.raises(ClientError) as raised:
        dep.create("ApiSecret")
    assert code_of(raised.value) == "ResourceExistsException"
    assert dep.find("ApiSecret") == []


def test_secret_name_held_by_a_deleted_secret_is_retried(dep: Deployment, clients) -> None:
    sm = clients["secretsmanager"]
    name = dep.props("ApiSecret")["Name"]
    sm.delete_secret(SecretId=sm.create_secret(Name=name)["ARN"], RecoveryWindowInDays=7)
    with pytest.raises(RetryLater, match="still held by a deleted secret"):
        dep.create("ApiSecret")


def test_our_secret_deleted_by_hand_is_restored_with_its_value(dep: Deployment, clients) -> None:
    """A drift repair of a secret someone deleted (recoverably) restores it: the credential
    the API instance stored survives, as every change keeps it."""
    sm = clients["secretsmanager"]
    arn = dep.create("ApiSecret")
    sm.put_secret_value(SecretId=arn, SecretString="stored-at-first-boot")  # as the instance does
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    assert dep.read("ApiSecret") is None  # drift sees it deleted
    assert dep.create("ApiSecret") == arn
    assert not sm.describe_secret(SecretId=arn).get("DeletedDate")
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "stored-at-first-boot"
    dep.destroy("ApiSecret")


@pytest.fixture
def recorded_secrets(dep: Deployment, moto_endpoint) -> list[tuple[str, dict[str, Any]]]:
    """Every Secrets Manager call the handler makes, with its parameters: the deployment's
    client for that service is one of the test's own, with a botocore hook that records."""
    calls: list[tuple[str, dict[str, Any]]] = []
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint)
    sm.meta.events.register(
        "before-parameter-build.secrets-manager",
        lambda params, model, **_: calls.append((model.name, dict(params))),
    )
    factory = dep.ctx.client
    dep.ctx = dataclasses.replace(
        dep.ctx, client=lambda service: sm if service == "secretsmanager" else factory(service)
    )
    return calls


def test_secret_read_and_update_never_touch_the_value(
    dep: Deployment, clients, recorded_secrets
) -> None:
    sm = clients["secretsmanager"]
    arn = dep.create("ApiSecret")
    dep.settle("ApiSecret")
    # The API instance stores the credential at first boot (not Gantry).
    sm.put_secret_value(SecretId=arn, SecretString="s3cr3t-value-of-the-instance")
    recorded_secrets.clear()

    assert dep.drift("ApiSecret") == []
    assert [name for name, _ in recorded_secrets] == ["DescribeSecret"]
    live = dep.read("ApiSecret")
    assert "s3cr3t" not in json.dumps(live, default=str)
    assert "GenerateSecretString" not in live  # write-only: never compared

    props = dep.props("ApiSecret")
    dep.update("ApiSecret", props, {**props, "Description": "the API's credential"})
    assert dep.read("ApiSecret")["Description"] == "the API's credential"
    # Changed by hand: put back.
    sm.update_secret(SecretId=arn, Description="edited in the console")
    sm.untag_resource(SecretId=arn, TagKeys=["team"])
    live = dep.read("ApiSecret")
    assert {d.property for d in dep.drift("ApiSecret")} == {"Description", "Tags"}
    dep.update("ApiSecret", live)
    assert dep.drift("ApiSecret") == []
    # A new design version with another generator setting changes nothing of the value.
    dep.update("ApiSecret", props, {**props, "GenerateSecretString": {"PasswordLength": 64}})

    operations = {name for name, _ in recorded_secrets}
    assert operations <= {"DescribeSecret", "UpdateSecret", "TagResource", "UntagResource"}
    for _, params in recorded_secrets:
        assert not {"SecretString", "SecretBinary"} & set(params)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "s3cr3t-value-of-the-instance"
    assert len(sm.list_secret_version_ids(SecretId=arn)["Versions"]) == 1

    with pytest.raises(CannotUpdate, match="Name"):
        dep.update("ApiSecret", props, {**props, "Name": props["Name"] + "-2"})

    # Scheduled for deletion by hand: it reads as gone (it can no longer be used).
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    assert dep.read("ApiSecret") is None
    sm.restore_secret(SecretId=arn)
    dep.destroy("ApiSecret")
    assert dep.read("ApiSecret") is None


#: A valid policy document that is not any node's.
OTHER_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:CreateLogStream", "Resource": "*"}],
    }
)


# --- IAM role ----------------------------------------------------------------------------------


def attached(iam: Any, role: str) -> list[str]:
    return sorted(
        p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    )


def test_role_lifecycle(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    name = dep.create("LambdaRole")
    assert name == dep.ctx.physical_name(dep.node("LambdaRole"), 64)
    # The design's name and the node's first, then the deployment's identity: readable, and
    # unique to this deployment (so an equally named design elsewhere never collides).
    assert name == f"lambda-private-api-lambda-role-{dep.ctx.name_suffix}"
    # The managed policies (AWS's own, loaded in the emulator) are attached by create itself.
    assert attached(iam, name) == sorted(LAMBDA_MANAGED_POLICIES)
    ready, reasons = dep.settle("LambdaRole")
    assert reasons == []
    role = iam.get_role(RoleName=name)["Role"]
    assert ready.attributes == {"Arn": role["Arn"]}
    assert role["AssumeRolePolicyDocument"] == dep.props("LambdaRole")["AssumeRolePolicyDocument"]
    assert role["Description"] == dep.props("LambdaRole")["Description"]
    assert_gantry_tags(dep, "LambdaRole", tags_of(role))
    assert dep.drift("LambdaRole") == []

    assert dep.find("LambdaRole") == [name]
    assert dep.create("LambdaRole") == name  # a repeated create adopts the role

    # Delete detaches the managed policies and removes inline ones itself.
    iam.put_role_policy(RoleName=name, PolicyName="extra", PolicyDocument=OTHER_POLICY)
    dep.destroy("LambdaRole")
    assert dep.find("LambdaRole") == []
    assert dep.read("LambdaRole") is None


def test_role_changes_in_place_and_drift_is_repaired(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    props = dep.props("LambdaRole")
    # Made as a create whose answer was lost before its policies were attached would leave
    # it: the engine's update on what it adopts attaches them.
    name = dep.ctx.physical_name(dep.node("LambdaRole"), 64)
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        Description=props["Description"],
        Tags=dep.ctx.tags(dep.node("LambdaRole")),
    )
    assert dep.find("LambdaRole") == [name]
    dep.ids["LambdaRole"] = name
    dep.update("LambdaRole", {})
    assert attached(iam, name) == sorted(LAMBDA_MANAGED_POLICIES)
    assert dep.drift("LambdaRole") == []
    xray, vpc_access = LAMBDA_MANAGED_POLICIES[1], LAMBDA_MANAGED_POLICIES[0]
    readonly = "arn:aws:iam::aws:policy/ReadOnlyAccess"

    # Detached by hand, and an over-broad one attached: both show, and check_ready (which
    # only looks) puts neither right.
    iam.detach_role_policy(RoleName=name, PolicyArn=xray)
    iam.attach_role_policy(RoleName=name, PolicyArn=readonly)
    assert isinstance(dep.check("LambdaRole"), Ready)
    assert attached(iam, name) == sorted([vpc_access, readonly])
    live = dep.read("LambdaRole")
    assert dep.drift("LambdaRole") == [
        Difference("ManagedPolicyArns", props["ManagedPolicyArns"], sorted([readonly, vpc_access]))
    ]
    dep.update("LambdaRole", live)
    assert attached(iam, name) == sorted(LAMBDA_MANAGED_POLICIES)
    assert dep.drift("LambdaRole") == []

    # What can change in place does, read back from IAM.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    changed = {
        **props,
        "Description": "another description",
        "AssumeRolePolicyDocument": trust,
        "ManagedPolicyArns": [vpc_access],
        "MaxSessionDuration": 7200,
    }
    dep.update("LambdaRole", props, changed)
    assert attached(iam, name) == [vpc_access]
    live = dep.read("LambdaRole")
    assert (live["Description"], live["MaxSessionDuration"]) == ("another description", 7200)
    assert compare("AWS::IAM::Role", changed, live) == []
    # ...and back, from what a drift check would read.
    dep.update("LambdaRole", live, props)
    assert dep.drift("LambdaRole") == []

    with pytest.raises(CannotUpdate, match="Path"):
        dep.update("LambdaRole", {**props, "Path": "/"}, {**props, "Path": "/gantry/"})


def test_role_with_the_name_but_not_the_tags_is_not_ours(dep: Deployment, clients) -> None:
    clients["iam"].create_role(
        RoleName=dep.ctx.physical_name(dep.node("ApiInstanceRole"), 64),
        AssumeRolePolicyDocument="{}",
    )
    assert dep.find("ApiInstanceRole") == []
    with pytest.raises(ClientError) as raised:
        dep.create("ApiInstanceRole")
    assert code_of(raised.value) == "EntityAlreadyExists"


def test_replacement_role_has_a_name_of_its_own(dep: Deployment) -> None:
    """A role created again (its predecessor deleted by hand, or replaced) is the node's next
    generation: another name, so it never collides with what it replaces."""
    node = dep.node("ApiInstanceRole")
    first = dep.create("ApiInstanceRole")
    dep.graph.nodes["ApiInstanceRole"] = dataclasses.replace(
        node, meta={**node.meta, "generation": 1}
    )
    second = dep.create("ApiInstanceRole")
    assert second != first
    assert dep.find("ApiInstanceRole") == [second]


def test_role_held_by_an_instance_profile_is_retried(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    dep.up("ApiInstanceRole")
    profile = f"{dep.ctx.deployment_tag}-by-hand"
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(
        InstanceProfileName=profile, RoleName=dep.ids["ApiInstanceRole"]
    )
    with pytest.raises(RetryLater, match="still in use"):
        dep.delete("ApiInstanceRole")
    iam.remove_role_from_instance_profile(
        InstanceProfileName=profile, RoleName=dep.ids["ApiInstanceRole"]
    )
    dep.destroy("ApiInstanceRole")


# --- IAM inline policy -------------------------------------------------------------------------


def test_inline_policy_lifecycle(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    dep.up("ApiSecret", "ApiInstanceRole")
    role = dep.ids["ApiInstanceRole"]
    assert dep.find("ApiInstanceSecretReadPolicy") == []
    policy_id = dep.create("ApiInstanceSecretReadPolicy")
    assert policy_id == f"{role}|read-api-credential"
    assert dep.settle("ApiInstanceSecretReadPolicy")[0].attributes == {}
    document = iam.get_role_policy(RoleName=role, PolicyName="read-api-credential")[
        "PolicyDocument"
    ]
    assert document["Statement"][0]["Resource"] == dep.ids["ApiSecret"]
    assert document == dep.props("ApiInstanceSecretReadPolicy")["PolicyDocument"]
    assert dep.find("ApiInstanceSecretReadPolicy") == [policy_id]
    assert dep.drift("ApiInstanceSecretReadPolicy") == []

    # A policy changed outside Gantry is not adopted: create puts the planned one back.
    iam.put_role_policy(
        RoleName=role, PolicyName="read-api-credential", PolicyDocument=OTHER_POLICY
    )
    assert dep.find("ApiInstanceSecretReadPolicy") == []
    assert dep.create("ApiInstanceSecretReadPolicy") == policy_id
    assert dep.find("ApiInstanceSecretReadPolicy") == [policy_id]

    dep.destroy("ApiInstanceSecretReadPolicy")
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []
    assert dep.read("ApiInstanceSecretReadPolicy") is None
    dep.destroy("ApiInstanceRole")
    # With its role gone, the policy is still gone and deleting it again is harmless.
    dep.destroy("ApiInstanceSecretReadPolicy")
    assert dep.read("ApiInstanceSecretReadPolicy") is None


def test_inline_policy_changes_in_place_and_drift_is_repaired(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    dep.up("ApiSecret", "ApiInstanceRole", "LambdaRole", "ApiInstanceSecretReadPolicy")
    lid = "ApiInstanceSecretReadPolicy"
    props = dep.props(lid)
    api_role, lambda_role = dep.ids["ApiInstanceRole"], dep.ids["LambdaRole"]

    # Widened by hand (any secret, any action): drift, and the repair puts the planned one.
    iam.put_role_policy(
        RoleName=api_role, PolicyName=props["PolicyName"], PolicyDocument=OTHER_POLICY
    )
    live = dep.read(lid)
    assert [d.property for d in dep.drift(lid)] == ["PolicyDocument"]
    dep.update(lid, live)
    assert dep.drift(lid) == []

    # Roles and name change in place; the physical id follows.
    moved = {**props, "PolicyName": "read-the-credential", "Roles": [api_role, lambda_role]}
    dep.update(lid, props, moved)
    assert dep.ids[lid] == f"{api_role}|{lambda_role}|read-the-credential"
    for role in (api_role, lambda_role):
        assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["read-the-credential"]
    assert compare("AWS::IAM::Policy", moved, dep.read(lid)) == []
    back = {**moved, "Roles": [lambda_role]}
    dep.update(lid, moved, back)
    assert iam.list_role_policies(RoleName=api_role)["PolicyNames"] == []
    assert dep.read(lid) == {
        "PolicyName": "read-the-credential",
        "Roles": [lambda_role],
        "PolicyDocument": props["PolicyDocument"],
    }


# --- Instance profile --------------------------------------------------------------------------


def profile_roles(iam: Any, name: str) -> list[str]:
    profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    return [r["RoleName"] for r in profile["Roles"]]


def test_instance_profile_lifecycle(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    dep.up("ApiInstanceRole")
    assert dep.find("ApiInstanceProfile") == []
    name = dep.create("ApiInstanceProfile")
    assert name == dep.ctx.physical_name(dep.node("ApiInstanceProfile"))
    # The role is in as soon as create returns.
    assert profile_roles(iam, name) == [dep.ids["ApiInstanceRole"]]
    ready, reasons = dep.settle("ApiInstanceProfile")
    assert reasons == []
    profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    assert ready.attributes == {"Arn": profile["Arn"]}
    assert_gantry_tags(dep, "ApiInstanceProfile", tags_of(profile))
    assert dep.drift("ApiInstanceProfile") == []

    assert dep.find("ApiInstanceProfile") == [name]
    assert dep.create("ApiInstanceProfile") == name  # a repeated create adopts the profile
    assert profile_roles(iam, name) == [dep.ids["ApiInstanceRole"]]  # not added twice

    # The profile's delete removes the role, which frees the role for its own delete.
    dep.destroy("ApiInstanceProfile")
    assert dep.find("ApiInstanceProfile") == []
    assert dep.read("ApiInstanceProfile") is None
    dep.destroy("ApiInstanceRole")


def test_instance_profile_role_swapped_by_hand_is_put_back(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    dep.up("ApiInstanceRole", "ApiInstanceProfile")
    name, ours = dep.ids["ApiInstanceProfile"], dep.ids["ApiInstanceRole"]
    other = f"{dep.ctx.deployment_tag}-other"
    iam.create_role(RoleName=other, AssumeRolePolicyDocument="{}")
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=ours)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=other)
    assert isinstance(dep.check("ApiInstanceProfile"), Ready)  # it only looks
    live = dep.read("ApiInstanceProfile")
    assert dep.drift("ApiInstanceProfile") == [Difference("Roles", [ours], [other])]
    dep.update("ApiInstanceProfile", live)
    assert profile_roles(iam, name) == [ours]
    assert dep.drift("ApiInstanceProfile") == []

    # Removed by hand and nothing in its place: an update from a wrong "before" (what was
    # applied) still converges, because the profile is looked at.
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=ours)
    dep.update("ApiInstanceProfile", {})
    assert profile_roles(iam, name) == [ours]


# --- Log group ---------------------------------------------------------------------------------


def test_log_group_lifecycle(dep: Deployment, clients) -> None:
    logs = clients["logs"]
    name = dep.create("LambdaLogGroup")
    assert name == dep.props("LambdaLogGroup")["LogGroupName"]
    assert name.startswith("/aws/lambda/sec-")
    # The retention is set by create itself.
    group = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
    assert group["retentionInDays"] == 30
    ready, reasons = dep.settle("LambdaLogGroup")
    assert reasons == []
    assert ready.attributes == {}
    tags = logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"]
    assert_gantry_tags(dep, "LambdaLogGroup", tags)
    assert dep.drift("LambdaLogGroup") == []

    assert dep.find("LambdaLogGroup") == [name]
    assert dep.create("LambdaLogGroup") == name  # ours: adopted

    # Another retention set by hand: check_ready only looks; the drift shows and is repaired.
    logs.put_retention_policy(logGroupName=name, retentionInDays=7)
    assert isinstance(dep.check("LambdaLogGroup"), Ready)
    live = dep.read("LambdaLogGroup")
    assert dep.drift("LambdaLogGroup") == [Difference("RetentionInDays", 30, 7)]
    dep.update("LambdaLogGroup", live)
    assert dep.drift("LambdaLogGroup") == []
    # Kept forever (the retention removed): seen, and put back.
    logs.delete_retention_policy(logGroupName=name)
    live = dep.read("LambdaLogGroup")
    assert dep.drift("LambdaLogGroup") == [Difference("RetentionInDays", 30, None)]
    dep.update("LambdaLogGroup", live)
    assert dep.drift("LambdaLogGroup") == []
    # A new retention changes in place; the name cannot.
    props = dep.props("LambdaLogGroup")
    dep.update("LambdaLogGroup", props, {**props, "RetentionInDays": 90})
    assert dep.read("LambdaLogGroup")["RetentionInDays"] == 90
    with pytest.raises(CannotUpdate, match="LogGroupName"):
        dep.update("LambdaLogGroup", props, {**props, "LogGroupName": name + "-2"})

    dep.destroy("LambdaLogGroup")
    assert dep.find("LambdaLogGroup") == []
    assert dep.read("LambdaLogGroup") is None


def test_log_group_of_someone_else_is_not_taken_over(dep: Deployment, clients) -> None:
    # Someone holds the very name this deployment's log group gets (made by hand, or by a
    # deployment of another installation that drew the same identity): never adopted.
    name = dep.props("LambdaLogGroup")["LogGroupName"]
    clients["logs"].create_log_group(logGroupName=name, tags={"owner": "someone-else"})
    assert dep.find("LambdaLogGroup") == []
    with pytest.raises(ClientError, match="already exists and does not belong to this deployment"):
        dep.create("LambdaLogGroup")
    clients["logs"].delete_log_group(logGroupName=name)


def test_equally_named_designs_deploy_side_by_side(dep: Deployment, clients, aws_context) -> None:
    """The same design deployed twice (two teams, two installations) in one account: the
    names AWS makes unique per account carry each deployment's identity, so neither collides
    with nor adopts the other's."""
    other = Deployment(aws_context(spec_tags=SPEC_TAGS), dep.graph)
    for logical_id in ("LambdaLogGroup", "ApiSecret", "LambdaRole"):
        mine, theirs = dep.create(logical_id), other.create(logical_id)
        assert mine != theirs
        assert dep.find(logical_id) == [mine] and other.find(logical_id) == [theirs]
    group = dep.props("LambdaLogGroup")["LogGroupName"]
    assert group.startswith(f"/aws/lambda/{dep.graph['LambdaFunction'].meta['name']}-")
    assert group.endswith(dep.ctx.name_suffix)
    for driver in (dep, other):
        for logical_id in ("LambdaLogGroup", "ApiSecret", "LambdaRole"):
            driver.destroy(logical_id)


# --- Tags: the change every tagged type makes in place ----------------------------------------


def untag_by_hand(clients: dict[str, Any], type_name: str, physical_id: str, key: str) -> None:
    """Remove one tag the way someone in the console would, straight to the emulator."""
    if type_name == "AWS::EC2::SecurityGroup":
        clients["ec2"].delete_tags(Resources=[physical_id], Tags=[{"Key": key}])
    elif type_name == "AWS::IAM::Role":
        clients["iam"].untag_role(RoleName=physical_id, TagKeys=[key])
    elif type_name == "AWS::Logs::LogGroup":
        group = clients["logs"].describe_log_groups(logGroupNamePrefix=physical_id)["logGroups"][0]
        clients["logs"].untag_resource(resourceArn=group["logGroupArn"], tagKeys=[key])
    else:
        clients["secretsmanager"].untag_resource(SecretId=physical_id, TagKeys=[key])


@pytest.mark.parametrize(
    "logical_id", ["LambdaSecurityGroup", "LambdaRole", "LambdaLogGroup", "ApiSecret"]
)
def test_tags_change_in_place_and_drift_is_repaired(
    dep: Deployment, clients, logical_id: str
) -> None:
    dep.up(logical_id)
    physical_id = dep.ids[logical_id]
    type_name = dep.node(logical_id).type
    assert dep.drift(logical_id) == []

    # A new design version with other spec tags: one set in place, one removed, one added.
    later = dep.retagged({"team": "billing", "cost-centre": "42"})
    later.update(logical_id, dep.props(logical_id))
    assert later.ids[logical_id] == physical_id
    tags = tag_map(later.read(logical_id)["Tags"])
    assert (tags["team"], tags["cost-centre"]) == ("billing", "42")
    assert tags[TAG_DEPLOYMENT] == dep.ctx.deployment_tag
    assert tags[TAG_INSTALLATION] == dep.ctx.installation
    assert later.drift(logical_id) == []

    # Taken off by hand, a spec tag and a gantry tag (what find() looks it up by).
    for key in ("team", TAG_LOGICAL_ID):
        untag_by_hand(clients, type_name, physical_id, key)
    live = later.read(logical_id)
    assert [d.property for d in later.drift(logical_id)] == ["Tags"]
    later.update(logical_id, live)
    assert later.drift(logical_id) == []
    assert later.find(logical_id) == [physical_id]

    # The gantry tags are never removed, whatever "before" claims.
    later.update(logical_id, {"Tags": [{"Key": TAG_INSTALLATION, "Value": "x"}]}, {"Tags": []})
    assert TAG_INSTALLATION in tag_map(later.read(logical_id)["Tags"])


# --- What real AWS answers and the emulator does not ---------------------------------------


@pytest.fixture
def stubbed_ec2(moto_endpoint) -> Iterator[tuple[AwsContext, Stubber]]:
    """An AwsContext whose EC2 client answers from a Stubber (validated against the service
    model)."""
    client = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    stubber = Stubber(client)
    ctx = AwsContext(deployment_tag="gd-stub", region=REGION, client=lambda _: client)
    with stubber:
        yield ctx, stubber
    stubber.assert_no_pending_responses()


GRAPH = plan(SPEC)


def test_security_group_in_use_by_lambda_interfaces_is_retried(stubbed_ec2) -> None:
    ctx, stubber = stubbed_ec2
    group_id = "sg-0123456789abcdef0"
    stubber.add_client_error(
        "delete_security_group", "DependencyViolation", "resource sg has a dependent object"
    )
    for _ in range(2):  # no other group references it, in either direction
        stubber.add_response("describe_security_groups", {"SecurityGroups": []})
    stubber.add_response(
        "describe_network_interfaces",
        {
            "NetworkInterfaces": [
                {
                    "NetworkInterfaceId": "eni-0123456789abcdef0",
                    "Description": "AWS Lambda VPC ENI-demo-lambda-function",
                    "InterfaceType": "lambda",
                }
            ]
        },
    )
    with pytest.raises(RetryLater) as raised:
        handler_for("AWS::EC2::SecurityGroup").delete(ctx, GRAPH["LambdaSecurityGroup"], group_id)
    assert "AWS Lambda VPC ENI-demo-lambda-function" in raised.value.reason
    assert "20-40 minutes" in raised.value.reason


def test_security_group_referenced_by_another_groups_rule_is_retried(stubbed_ec2) -> None:
    ctx, stubber = stubbed_ec2
    group_id, other = "sg-0123456789abcdef0", "sg-0fedcba9876543210"
    stubber.add_client_error("delete_security_group", "DependencyViolation", "dependent object")
    stubber.add_response("describe_security_groups", {"SecurityGroups": [{"GroupId": other}]})
    stubber.add_response("describe_security_groups", {"SecurityGroups": []})
    with pytest.raises(RetryLater, match=f"a rule of security group {other} still references"):
        handler_for("AWS::EC2::SecurityGroup").delete(ctx, GRAPH["ApiSecurityGroup"], group_id)


def test_description_of_a_group_rule_changes_in_place(stubbed_ec2) -> None:
    """What the emulator cannot do (see test_rule_read_and_description_update): the call that
    changes a group-to-group rule's description, checked against AWS's service model."""
    ctx, stubber = stubbed_ec2
    props = {
        "GroupId": "sg-0123456789abcdef0",
        "IpProtocol": "tcp",
        "FromPort": 8443,
        "ToPort": 8443,
        "SourceSecurityGroupId": "sg-0fedcba9876543210",
        "Description": "Lambda to the API on 8443",
    }
    stubber.add_response(
        "update_security_group_rule_descriptions_ingress",
        {"Return": True},
        {
            "GroupId": props["GroupId"],
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 8443,
                    "ToPort": 8443,
                    "UserIdGroupPairs": [
                        {"GroupId": "sg-0fedcba9876543210", "Description": "new words"}
                    ],
                }
            ],
        },
    )
    handler = handler_for("AWS::EC2::SecurityGroupIngress")
    node = GRAPH["ApiFromLambdaIngress"]
    handler.update(ctx, node, "sgr-0123456789abcdef0", props, {**props, "Description": "new words"})
    handler.update(ctx, node, "sgr-0123456789abcdef0", props, props)  # nothing to change: no call


def test_unplanned_rules_revoked_while_someone_else_revokes_one(stubbed_ec2) -> None:
    """A revoke naming a rule that is already gone revokes none of those it names (AWS's
    answer, which the emulator never gives for a race): the others still go, one by one."""
    ctx, stubber = stubbed_ec2
    group_id, ssh, rdp = "sg-0123456789abcdef0", "sgr-0000000000000ssh", "sgr-0000000000000rdp"
    world = {"GroupId": group_id, "IsEgress": False, "IpProtocol": "tcp", "CidrIpv4": "0.0.0.0/0"}
    stubber.add_response(
        "describe_security_group_rules",
        {
            "SecurityGroupRules": [
                {**world, "SecurityGroupRuleId": ssh, "FromPort": 22, "ToPort": 22},
                {**world, "SecurityGroupRuleId": rdp, "FromPort": 3389, "ToPort": 3389},
            ]
        },
    )
    gone = "InvalidSecurityGroupRuleId.NotFound"
    stubber.add_client_error("revoke_security_group_ingress", gone, expected_params=None)
    stubber.add_response(
        "revoke_security_group_ingress",
        {"Return": True},
        {"GroupId": group_id, "SecurityGroupRuleIds": [rdp]},
    )
    stubber.add_client_error(
        "revoke_security_group_ingress",
        gone,
        expected_params={"GroupId": group_id, "SecurityGroupRuleIds": [ssh]},
    )
    node = GRAPH["ApiSecurityGroup"]
    handler_for("AWS::EC2::SecurityGroup").update(ctx, node, group_id, {}, {RULES: []})


def test_vpc_endpoint_pending_then_failed(stubbed_ec2) -> None:
    ctx, stubber = stubbed_ec2
    endpoint_id = "vpce-0123456789abcdef0"
    for state in ("pending", "failed"):
        stubber.add_response(
            "describe_vpc_endpoints",
            {
                "VpcEndpoints": [
                    {
                        "VpcEndpointId": endpoint_id,
                        "State": state,
                        "LastError": {"Code": "Failed", "Message": "subnet has no free addresses"},
                    }
                ]
            },
        )
    handler = handler_for("AWS::EC2::VPCEndpoint")
    node = GRAPH["SecretsManagerEndpoint"]
    assert handler.check_ready(ctx, node, endpoint_id) == Pending("VPC endpoint is pending")
    assert handler.check_ready(ctx, node, endpoint_id) == Failed(
        f"VPC endpoint {endpoint_id} is failed: subnet has no free addresses"
    )


def test_vpc_endpoint_delete_reports_a_refusal(stubbed_ec2) -> None:
    ctx, stubber = stubbed_ec2
    endpoint_id = "vpce-0123456789abcdef0"
    stubber.add_response(
        "delete_vpc_endpoints",
        {
            "Unsuccessful": [
                {
                    "ResourceId": endpoint_id,
                    "Error": {"Code": "InvalidVpcEndpointId.NotFound", "Message": "gone"},
                }
            ]
        },
    )
    stubber.add_response(
        "delete_vpc_endpoints",
        {
            "Unsuccessful": [
                {
                    "ResourceId": endpoint_id,
                    "Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"},
                }
            ]
        },
    )
    handler = handler_for("AWS::EC2::VPCEndpoint")
    node = GRAPH["SecretsManagerEndpoint"]
    handler.delete(ctx, node, endpoint_id)  # already gone: success
    with pytest.raises(ClientError) as raised:
        handler.delete(ctx, node, endpoint_id)
    assert code_of(raised.value) == "UnauthorizedOperation"
