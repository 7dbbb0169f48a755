"""The template of the article's layout, created as a stack on the emulator's own CloudFormation
as it is exported, against what Gantry's deployer builds from the same design (a real worker,
through the sandbox, into the same moto server): the same VPC, subnets, route tables and routes,
security-group references, endpoint, NAT gateway and the function's and instance's network
placement.

moto's CloudFormation cannot create every type the template uses. It skips resources of the
types in :data:`MOTO_CLOUDFORMATION_LACKS` (the stack still completes) and resolves references
to them to nothing, so this test cannot check them on the emulator:

- ``AWS::EC2::SecurityGroupEgress``: moto has no model for it, and it also ignores a group's
  inline ``SecurityGroupEgress`` (its groups keep the allow-all rule), so the stack's egress
  rules cannot be checked: the template's egress resources are compared with the deployer's
  live rules instead;
- ``AWS::SecretsManager::Secret``: no model, so on moto the policies name no secret, the
  function has no ``API_SECRET_ARN`` and the stack no ``SecretArn`` output;
- ``AWS::EC2::SubnetRouteTableAssociation``: moto creates it, but records it apart from the
  route table, so DescribeRouteTables does not show it: which subnets use which route table is
  compared between the deployer's build and the template's association resources instead.

It also ignores some properties of types it has (its resources come out with AWS's defaults):
a VPC's ``EnableDnsHostnames``, an instance's ``SecurityGroupIds`` and ``MetadataOptions``
(:data:`MOTO_CLOUDFORMATION_IGNORES`). Those are compared between the template and the
deployer's build.

cfn-lint and checkov judge what moto cannot create (test_export_lint.py), and test_export.py
checks that the user data reading the secret is byte for byte the deployer's once CloudFormation
resolves it.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from typing import Any

import boto3
import pytest

from deployer.resources.certificate import self_signed_pem
from designer.export import spec_template, template_text
from designer.plan import plan
from designer.spec import DEFAULT_SPEC, validate_spec
from tests.specs import TWO_AZ
from tests.test_deployer_e2e import start, wait_for

#: Types of the exported templates that moto's CloudFormation cannot create, and skips (checked
#: below against moto's own list, so this stays true when moto changes).
MOTO_CLOUDFORMATION_LACKS = ("AWS::EC2::SecurityGroupEgress", "AWS::SecretsManager::Secret")
#: Properties moto's CloudFormation ignores when it creates these types.
MOTO_CLOUDFORMATION_IGNORES = {
    "AWS::EC2::VPC": ("EnableDnsHostnames",),
    "AWS::EC2::Instance": ("SecurityGroupIds", "MetadataOptions"),
}
#: The types whose physical ids name a resource (not a composite such as an association's),
#: by which the two builds' AWS ids are translated back to logical ids.
NAMED_TYPES = {
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::RouteTable",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::NatGateway",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::Instance",
    "AWS::Lambda::Function",
}
TIMEOUT = 120


@pytest.fixture
def owner(make_user, team):
    return make_user("owner", team=team)


def create_stack(
    cloudformation, name: str, body: str, parameters: list[dict] | None = None
) -> dict[str, str]:
    """Create the stack, wait for it, and return its logical id -> physical id."""
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=body,
        Parameters=parameters or [],
        Capabilities=["CAPABILITY_IAM"],
    )
    deadline = time.monotonic() + TIMEOUT
    while True:
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"stack {name} is still {stack['StackStatus']} after {TIMEOUT} s")
        time.sleep(0.2)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    summaries = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    # moto lists each resource it skipped (MOTO_CLOUDFORMATION_LACKS) as a blank entry.
    return {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries if s["ResourceType"]}


def topology(endpoint: str, ids: dict[str, str]) -> dict:
    """What was built around the VPC ``ids["Vpc"]``, every AWS id replaced by the logical id
    it was built for (``ids`` maps logical to physical), so two builds compare equal when
    they are the same network."""
    ec2, logical, vpc_filter = in_vpc(endpoint, ids)
    vpc_id = ids["Vpc"]

    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    dns = {
        attribute: ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[
            attribute[0].upper() + attribute[1:]
        ]["Value"]
        for attribute in ("enableDnsSupport", "enableDnsHostnames")
    }
    subnets = {
        logical[s["SubnetId"]]: (s["CidrBlock"], s["AvailabilityZone"], s["MapPublicIpOnLaunch"])
        for s in ec2.describe_subnets(Filters=vpc_filter)["Subnets"]
    }
    tables = {}
    for table in ec2.describe_route_tables(Filters=vpc_filter)["RouteTables"]:
        if table["RouteTableId"] not in logical:
            continue  # the VPC's main table, which neither build uses
        routes = sorted(
            (
                route["DestinationCidrBlock"],
                "local"
                if route.get("GatewayId") == "local"
                else logical[route.get("GatewayId") or route["NatGatewayId"]],
            )
            for route in table["Routes"]
        )
        tables[logical[table["RouteTableId"]]] = routes

    def peer(permission: dict) -> list[str]:
        return [logical[p["GroupId"]] for p in permission["UserIdGroupPairs"]] + [
            r["CidrIp"] for r in permission["IpRanges"]
        ]

    groups = {
        logical[g["GroupId"]]: sorted(
            (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), source)
            for p in g["IpPermissions"]
            for source in peer(p)
        )
        for g in ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]
        if g["GroupId"] in logical
    }
    endpoint_ = ec2.describe_vpc_endpoints(VpcEndpointIds=[ids["SecretsManagerEndpoint"]])[
        "VpcEndpoints"
    ][0]
    nats = sorted(
        logical[n["SubnetId"]]
        for n in ec2.describe_nat_gateways(Filters=vpc_filter)["NatGateways"]
        if n["State"] not in ("deleting", "deleted")
    )
    gateways = [
        logical[g["InternetGatewayId"]]
        for g in ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
        )["InternetGateways"]
    ]
    instance = ec2.describe_instances(InstanceIds=[ids["ApiInstance"]])["Reservations"][0][
        "Instances"
    ][0]
    function = boto3.client("lambda", region_name="us-east-1", endpoint_url=endpoint).get_function(
        FunctionName=ids["LambdaFunction"]
    )["Configuration"]
    return {
        "vpc": (vpc["CidrBlock"], dns["enableDnsSupport"]),
        "subnets": subnets,
        "route_tables": tables,
        "security_group_ingress": groups,
        "endpoint": (
            endpoint_["ServiceName"],
            endpoint_["VpcEndpointType"],
            sorted(logical[s] for s in endpoint_["SubnetIds"]),
            sorted(logical[g["GroupId"]] for g in endpoint_["Groups"]),
        ),
        "nat_gateways_in": nats,
        "internet_gateways": gateways,
        "instance": (logical[instance["SubnetId"]], instance["InstanceType"]),
        # What moto's CloudFormation ignores (MOTO_CLOUDFORMATION_IGNORES):
        "vpc_dns_hostnames": dns["enableDnsHostnames"],
        "instance_groups": sorted(logical[g["GroupId"]] for g in instance["SecurityGroups"]),
        "instance_http_tokens": instance["MetadataOptions"]["HttpTokens"],
        "function": (
            sorted(logical[s] for s in function["VpcConfig"]["SubnetIds"]),
            sorted(logical[g] for g in function["VpcConfig"]["SecurityGroupIds"]),
            function["Runtime"],
            function["Handler"],
            function["Environment"]["Variables"]["API_HOST"] == instance["PrivateDnsName"],
            # API_SECRET_ARN names the secret, which moto's CloudFormation cannot create.
            sorted(set(function["Environment"]["Variables"]) - {"API_SECRET_ARN"}),
        ),
    }


def comparable(built: dict) -> dict:
    """A topology less what moto's CloudFormation ignores (MOTO_CLOUDFORMATION_IGNORES)."""
    ignored = ("vpc_dns_hostnames", "instance_groups", "instance_http_tokens")
    return {key: value for key, value in built.items() if key not in ignored}


def logical_ids(ids: dict[str, str]) -> dict[str, str]:
    """AWS id -> logical id, for the resources of :data:`NAMED_TYPES`."""
    graph = plan(validate_spec(DEFAULT_SPEC).spec)
    return {
        physical: lid
        for lid, physical in ids.items()
        if lid in graph and graph[lid].type in NAMED_TYPES
    }


def in_vpc(endpoint: str, ids: dict[str, str]) -> tuple[Any, dict[str, str], list[dict]]:
    """An EC2 client, AWS id -> logical id, and the filter for the build's VPC."""
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=endpoint)
    return ec2, logical_ids(ids), [{"Name": "vpc-id", "Values": [ids["Vpc"]]}]


def route_table_subnets(endpoint: str, ids: dict[str, str]) -> dict[str, list[str]]:
    """Route table -> the subnets DescribeRouteTables shows associated with it."""
    ec2, logical, vpc = in_vpc(endpoint, ids)
    tables = ec2.describe_route_tables(Filters=vpc)
    return {
        logical[table["RouteTableId"]]: sorted(
            logical[a["SubnetId"]] for a in table["Associations"] if a.get("SubnetId")
        )
        for table in tables["RouteTables"]
        if table["RouteTableId"] in logical
    }


def template_subnets(template: dict) -> dict[str, list[str]]:
    """Route table -> the subnets the template's association resources put in it."""
    found: dict[str, list[str]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::EC2::SubnetRouteTableAssociation":
            props = resource["Properties"]
            found.setdefault(props["RouteTableId"]["Ref"], []).append(props["SubnetId"]["Ref"])
    return {table: sorted(subnets) for table, subnets in found.items()}


def live_egress(endpoint: str, ids: dict[str, str]) -> dict[str, list[tuple]]:
    """Security group -> its egress rules as AWS shows them (peers as logical ids)."""
    ec2, logical, vpc = in_vpc(endpoint, ids)
    groups = ec2.describe_security_groups(Filters=vpc)
    return {
        logical[g["GroupId"]]: sorted(
            (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), peer)
            for p in g["IpPermissionsEgress"]
            for peer in [logical[u["GroupId"]] for u in p["UserIdGroupPairs"]]
            + [r["CidrIp"] for r in p["IpRanges"]]
        )
        for g in groups["SecurityGroups"]
        if g["GroupId"] in logical
    }


def template_egress(template: dict) -> dict[str, list[tuple]]:
    """Security group -> the egress rules of the template's SecurityGroupEgress resources."""
    found: dict[str, list[tuple]] = {
        lid: []
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::EC2::SecurityGroup"
    }
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::EC2::SecurityGroupEgress":
            props = resource["Properties"]
            peer = props.get("DestinationSecurityGroupId", {}).get("Ref") or props["CidrIp"]
            rule = (props["IpProtocol"], props["FromPort"], props["ToPort"], peer)
            found[props["GroupId"]["Ref"]].append(rule)
    return {group: sorted(rules) for group, rules in found.items()}


def test_moto_cloudformation_lacks_exactly_the_types_left_out():
    """Checked with moto's own model list, so the docstring above and the README stay true."""
    for service in ("ec2", "iam", "secretsmanager", "logs", "awslambda", "elbv2", "autoscaling"):
        importlib.import_module(f"moto.{service}.models")
    from moto.cloudformation.parsing import get_model_map

    spec = validate_spec(DEFAULT_SPEC).spec
    types = {r["Type"] for r in spec_template(spec, version=1)["Resources"].values()}
    assert sorted(types - set(get_model_map())) == sorted(MOTO_CLOUDFORMATION_LACKS)


@pytest.mark.parametrize("kind", ["ec2", "alb"])
@pytest.mark.parametrize("nat", ["none", "single", "per_az"])
def test_every_variant_creates_on_the_emulator_as_exported(moto_endpoint, nat, kind):
    spec = dataclasses.replace(TWO_AZ, nat=nat, api_kind=kind, tags=(("team", "orders"),))
    template = spec_template(spec, version=1)
    parameters = []
    if kind == "alb":
        # The one parameter without a default: the certificate a pipeline imports.
        certificate, key = self_signed_pem("api.internal", ["*.us-east-1.elb.amazonaws.com"])
        acm = boto3.client("acm", region_name="us-east-1", endpoint_url=moto_endpoint)
        arn = acm.import_certificate(Certificate=certificate, PrivateKey=key)["CertificateArn"]
        parameters = [{"ParameterKey": "ApiCertificateArn", "ParameterValue": arn}]
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", endpoint_url=moto_endpoint
    )
    stack = create_stack(
        cloudformation,
        f"{nat.replace('_', '-')}-{kind}",
        template_text(template, "json"),
        parameters,
    )
    assert set(stack) == {
        lid
        for lid, resource in template["Resources"].items()
        if resource["Type"] not in MOTO_CLOUDFORMATION_LACKS
    }


def test_the_article_template_builds_what_the_deployer_builds(worker, team, owner, moto_endpoint):
    deployment = wait_for(start(team, owner), ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    gantry = {r.logical_id: r.physical_id for r in deployment.resources.all()}

    template = spec_template(validate_spec(DEFAULT_SPEC).spec, version=1)
    body = template_text(template, "yaml")  # as exported: nothing adapted to the emulator
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", endpoint_url=moto_endpoint
    )
    stack = create_stack(cloudformation, "lambda-private-api", body)
    assert set(stack) == {
        lid
        for lid, resource in template["Resources"].items()
        if resource["Type"] not in MOTO_CLOUDFORMATION_LACKS
    }

    built_by_gantry, built_by_stack = (
        topology(moto_endpoint, gantry),
        topology(moto_endpoint, stack),
    )
    assert comparable(built_by_stack) == comparable(built_by_gantry)
    # What moto's stack ignores, the template says as the deployer built it.
    resources = template["Resources"]
    assert resources["Vpc"]["Properties"]["EnableDnsHostnames"] is True
    assert built_by_gantry["vpc_dns_hostnames"] is True
    instance = resources["ApiInstance"]["Properties"]
    assert [g["Ref"] for g in instance["SecurityGroupIds"]] == built_by_gantry["instance_groups"]
    assert instance["MetadataOptions"]["HttpTokens"] == built_by_gantry["instance_http_tokens"]
    # It is the article's network, not two equally empty ones.
    assert built_by_stack["route_tables"]["LambdaRouteTable"] == [
        ("0.0.0.0/0", "NatGateway1"),
        ("10.0.0.0/16", "local"),
    ]
    assert built_by_stack["route_tables"]["ApiRouteTable"] == [("10.0.0.0/16", "local")]
    # Which subnet uses which table: moto's stack does not show its associations (see above),
    # so the template's are compared with what the deployer built.
    assert (
        template_subnets(template)
        == route_table_subnets(moto_endpoint, gantry)
        == {
            "PublicRouteTable": ["PublicSubnet1"],
            "LambdaRouteTable": ["LambdaSubnet1"],
            "ApiRouteTable": ["ApiSubnet1"],
        }
    )
    assert built_by_stack["security_group_ingress"]["ApiSecurityGroup"] == [
        ("tcp", 443, 443, "LambdaSecurityGroup")
    ]
    assert built_by_stack["security_group_ingress"]["LambdaSecurityGroup"] == []
    # Egress rules: not on moto's stack (see above). The template's rule resources are exactly
    # the rules the deployer's groups have, the default allow-all rule revoked.
    assert template_egress(template) == live_egress(moto_endpoint, gantry)
    assert live_egress(moto_endpoint, gantry)["LambdaSecurityGroup"] == [
        ("tcp", 443, 443, "0.0.0.0/0"),
        ("tcp", 443, 443, "ApiSecurityGroup"),
    ]

    # A second stack of the same template deploys beside it: no name is hard-coded.
    second = create_stack(cloudformation, "lambda-private-api-2", body)
    assert second["LambdaFunction"] != stack["LambdaFunction"]
    assert second["LambdaLogGroup"] != stack["LambdaLogGroup"]
    assert topology(moto_endpoint, second) == built_by_stack
