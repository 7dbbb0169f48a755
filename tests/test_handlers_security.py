"""The security, secrets, identity and logging handlers (security groups and their rules, the
Secrets Manager endpoint and secret, IAM roles, inline policies, instance profiles, the Lambda's
log group) against the moto server over HTTP.

Nodes come from a real plan, driven by ``tests.support.HandlerDriver``: each node's Refs are
resolved by the engine's own ``resolve`` (Ref -> the physical id, Ref(x, attr) -> x's Ready
attribute). The VPC and subnets belong to the network handlers and are made with plain boto3. The last section feeds the handlers answers real
AWS gives but the emulator never does (pending and failed endpoint states, DependencyViolation):
a botocore Stubber in front of a real client, which checks every stubbed answer against AWS's own
service model.
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

from deployer.resources import handler_for
from deployer.resources.base import (
    TAG_DEPLOYMENT,
    TAG_LOGICAL_ID,
    AwsContext,
    Failed,
    Pending,
    Ready,
    RetryLater,
)
from deployer.resources.iam_role import role_name
from deployer.resources.vpc_endpoint import endpoint_status
from designer.plan import plan
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


class Deployment(HandlerDriver):
    """The handler driver, with the network these handlers need made by plain boto3."""

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


@pytest.fixture
def dep(aws_context, clients) -> Deployment:
    deployment = Deployment(aws_context(spec_tags=SPEC_TAGS), plan(unique(SPEC)))
    deployment.network(clients["ec2"])
    return deployment


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
    assert [r["CidrIpv4"] for r in egress_rules(ec2, group_id)] == ["0.0.0.0/0"]  # AWS's default
    ready, reasons = dep.settle("LambdaSecurityGroup")
    assert reasons == ["removing the default allow-all egress rule"]
    assert ready.attributes == {}
    assert egress_rules(ec2, group_id) == []

    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    props = dep.props("LambdaSecurityGroup")
    assert group["GroupName"] == props["GroupName"]
    assert group["Description"] == props["GroupDescription"]
    assert group["VpcId"] == dep.ids["Vpc"]
    assert_gantry_tags(dep, "LambdaSecurityGroup", tags_of(group))

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


def test_security_group_without_the_revoke_flag_keeps_aws_default(dep: Deployment, clients) -> None:
    node = dep.node("ApiSecurityGroup")
    dep.graph.nodes["ApiSecurityGroup"] = dataclasses.replace(
        node, meta={**node.meta, "revoke_default_egress": False}
    )
    group_id = dep.create("ApiSecurityGroup")
    assert dep.settle("ApiSecurityGroup")[1] == []
    assert len(egress_rules(clients["ec2"], group_id)) == 1


def test_default_egress_revocation_converges_on_an_adopted_group(dep: Deployment, clients) -> None:
    """A group found by its tags (its create answer lost) still loses the default rule."""
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
    dep.settle("ApiSecurityGroup")
    assert egress_rules(ec2, group_id) == []


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


#: A valid policy document that is not any node's.
OTHER_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:CreateLogStream", "Resource": "*"}],
    }
)


# --- IAM role ----------------------------------------------------------------------------------


@pytest.fixture
def managed_policies(clients) -> Iterator[list[str]]:
    """Customer-managed stand-ins for the plan's AWS-managed policies: the moto server the tests
    share is not started with AWS's managed policy catalogue loaded."""
    iam = clients["iam"]
    arns = []
    for name in ("vpc-access", "xray-write"):
        arns.append(
            iam.create_policy(
                PolicyName=f"{name}-{uuid.uuid4().hex[:8]}",
                PolicyDocument=OTHER_POLICY,
            )["Policy"]["Arn"]
        )
    yield arns
    for arn in arns:
        for role in iam.list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]:
            iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
        iam.delete_policy(PolicyArn=arn)


def with_managed_policies(dep: Deployment, arns: list[str]) -> None:
    node = dep.node("LambdaRole")
    assert len(node.properties["ManagedPolicyArns"]) == len(arns)
    dep.graph.nodes["LambdaRole"] = dataclasses.replace(
        node, properties={**node.properties, "ManagedPolicyArns": arns}
    )


def test_role_lifecycle(dep: Deployment, clients, managed_policies) -> None:
    iam = clients["iam"]
    with_managed_policies(dep, managed_policies)
    name = dep.create("LambdaRole")
    assert name == dep.ctx.physical_name(dep.node("LambdaRole"), 64)
    # The design's name and the node's first, then the deployment's identity: readable, and
    # unique to this deployment (so an equally named design elsewhere never collides).
    assert name == f"lambda-private-api-lambda-role-{dep.ctx.name_suffix}"
    ready, reasons = dep.settle("LambdaRole")
    assert len(reasons) == 1 and reasons[0].startswith("attaching managed policies")
    role = iam.get_role(RoleName=name)["Role"]
    assert ready.attributes == {"Arn": role["Arn"]}
    assert role["AssumeRolePolicyDocument"] == dep.props("LambdaRole")["AssumeRolePolicyDocument"]
    assert role["Description"] == dep.props("LambdaRole")["Description"]
    assert_gantry_tags(dep, "LambdaRole", tags_of(role))
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == sorted(managed_policies)

    assert dep.find("LambdaRole") == [name]
    assert dep.create("LambdaRole") == name  # a repeated create adopts the role

    # A policy detached outside Gantry is attached again on the next check.
    iam.detach_role_policy(RoleName=name, PolicyArn=managed_policies[0])
    assert isinstance(dep.check("LambdaRole"), Pending)
    assert isinstance(dep.check("LambdaRole"), Ready)

    # Delete detaches the managed policies and removes inline ones itself.
    iam.put_role_policy(RoleName=name, PolicyName="extra", PolicyDocument=OTHER_POLICY)
    dep.destroy("LambdaRole")
    assert dep.find("LambdaRole") == []


def test_role_with_the_name_but_not_the_tags_is_not_ours(dep: Deployment, clients) -> None:
    clients["iam"].create_role(
        RoleName=role_name(dep.ctx, "ApiInstanceRole"), AssumeRolePolicyDocument="{}"
    )
    assert dep.find("ApiInstanceRole") == []
    with pytest.raises(ClientError) as raised:
        dep.create("ApiInstanceRole")
    assert code_of(raised.value) == "EntityAlreadyExists"


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

    # A policy changed outside Gantry is not adopted: create puts the planned one back.
    iam.put_role_policy(
        RoleName=role, PolicyName="read-api-credential", PolicyDocument=OTHER_POLICY
    )
    assert dep.find("ApiInstanceSecretReadPolicy") == []
    assert dep.create("ApiInstanceSecretReadPolicy") == policy_id
    assert dep.find("ApiInstanceSecretReadPolicy") == [policy_id]

    dep.destroy("ApiInstanceSecretReadPolicy")
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []
    dep.destroy("ApiInstanceRole")
    # With its role gone, the policy is still gone and deleting it again is harmless.
    dep.destroy("ApiInstanceSecretReadPolicy")


# --- Instance profile --------------------------------------------------------------------------


def test_instance_profile_lifecycle(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    dep.up("ApiInstanceRole")
    assert dep.find("ApiInstanceProfile") == []
    name = dep.create("ApiInstanceProfile")
    assert name == dep.ctx.physical_name(dep.node("ApiInstanceProfile"))
    ready, reasons = dep.settle("ApiInstanceProfile")
    assert reasons == [f"adding role {dep.ids['ApiInstanceRole']} to the instance profile"]
    profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    assert ready.attributes == {"Arn": profile["Arn"]}
    assert [r["RoleName"] for r in profile["Roles"]] == [dep.ids["ApiInstanceRole"]]
    assert_gantry_tags(dep, "ApiInstanceProfile", tags_of(profile))

    assert dep.find("ApiInstanceProfile") == [name]
    assert dep.create("ApiInstanceProfile") == name  # a repeated create adopts the profile
    assert dep.settle("ApiInstanceProfile")[1] == []  # the role is not added twice

    # The profile's delete removes the role, which frees the role for its own delete.
    dep.destroy("ApiInstanceProfile")
    assert dep.find("ApiInstanceProfile") == []
    dep.destroy("ApiInstanceRole")


def test_instance_profile_holding_another_role_fails(dep: Deployment, clients) -> None:
    iam = clients["iam"]
    dep.up("ApiInstanceRole")
    name = dep.create("ApiInstanceProfile")
    other = f"{dep.ctx.deployment_tag}-other"
    iam.create_role(RoleName=other, AssumeRolePolicyDocument="{}")
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=other)
    result = dep.check("ApiInstanceProfile")
    assert isinstance(result, Failed)
    assert other in result.reason


# --- Log group ---------------------------------------------------------------------------------


def test_log_group_lifecycle(dep: Deployment, clients) -> None:
    logs = clients["logs"]
    name = dep.create("LambdaLogGroup")
    assert name == dep.props("LambdaLogGroup")["LogGroupName"]
    assert name.startswith("/aws/lambda/sec-")
    ready, reasons = dep.settle("LambdaLogGroup")
    assert reasons == ["setting the log retention to 30 days"]
    assert ready.attributes == {}
    group = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
    assert group["retentionInDays"] == 30
    tags = logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"]
    assert_gantry_tags(dep, "LambdaLogGroup", tags)

    assert dep.find("LambdaLogGroup") == [name]
    assert dep.create("LambdaLogGroup") == name  # ours: adopted

    dep.destroy("LambdaLogGroup")
    assert dep.find("LambdaLogGroup") == []


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
