"""The plan: what a deployment builds, for every NAT choice and API kind.

Pure tests (no database, no AWS): a Spec in, the graph's nodes, properties and edges checked
against what AWS needs and what the design promises.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest

from designer.graph import Ref, ResourceGraph
from designer.plan import GROUPS, PlanError, kebab, plan, refs_in
from tests.specs import ARTICLE
from tests.specs import TWO_AZ as TWO_AZ_UNTAGGED

#: Two AZs of everything, with user tags.
TWO_AZ = dataclasses.replace(TWO_AZ_UNTAGGED, tags=(("team", "payments"), ("cost-center", "42")))

USER_TAGS = [{"Key": "team", "Value": "payments"}, {"Key": "cost-center", "Value": "42"}]

VARIANTS = [
    pytest.param(dataclasses.replace(TWO_AZ, nat=nat, api_kind=kind), id=f"{nat}-{kind}")
    for nat, kind in itertools.product(("none", "single", "per_az"), ("ec2", "alb"))
]

#: CloudFormation types that take no Tags property.
UNTAGGED = {
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::IAM::Policy",
    "AWS::IAM::InstanceProfile",
    "AWS::ElasticLoadBalancingV2::Listener",
    "AWS::EC2::LaunchTemplate",
}


def ids(graph: ResourceGraph, type_name: str) -> list[str]:
    return [n.logical_id for n in graph.of_type(type_name)]


def routes_of(graph: ResourceGraph, table: str) -> list[dict]:
    return [
        n.properties
        for n in graph.of_type("AWS::EC2::Route")
        if n.properties["RouteTableId"] == Ref(table)
    ]


def associated_subnets(graph: ResourceGraph, table: str) -> list[str]:
    return [
        n.properties["SubnetId"].logical_id
        for n in graph.of_type("AWS::EC2::SubnetRouteTableAssociation")
        if n.properties["RouteTableId"] == Ref(table)
    ]


def test_article_spec_builds_exactly_the_article_resources_made_production_grade():
    graph = plan(ARTICLE)
    assert [n.logical_id for n in graph] == [
        "Vpc",
        "PublicSubnet1",
        "LambdaSubnet1",
        "ApiSubnet1",
        "InternetGateway",
        "VpcGatewayAttachment",
        "PublicRouteTable",
        "PublicDefaultRoute",
        "PublicSubnet1RouteTableAssociation",
        "NatEip1",
        "NatGateway1",
        "LambdaRouteTable",
        "LambdaDefaultRoute",
        "LambdaSubnet1RouteTableAssociation",
        "ApiRouteTable",
        "ApiSubnet1RouteTableAssociation",
        "LambdaSecurityGroup",
        "ApiSecurityGroup",
        "EndpointSecurityGroup",
        "LambdaToApiEgress",
        "ApiFromLambdaIngress",
        "LambdaHttpsEgress",
        "EndpointFromLambdaIngress",
        "ApiToEndpointEgress",
        "EndpointFromApiIngress",
        "ApiSecret",
        "SecretsManagerEndpoint",
        "ApiInstanceRole",
        "ApiInstanceSecretReadPolicy",
        "ApiInstanceProfile",
        "ApiInstance",
        "LambdaRole",
        "LambdaSecretReadPolicy",
        "LambdaLogGroup",
        "LambdaFunction",
    ]
    assert graph["LambdaDefaultRoute"].properties == {
        "RouteTableId": Ref("LambdaRouteTable"),
        "DestinationCidrBlock": "0.0.0.0/0",
        "NatGatewayId": Ref("NatGateway1"),
    }
    assert routes_of(graph, "ApiRouteTable") == []
    assert graph["NatGateway1"].properties["SubnetId"] == Ref("PublicSubnet1")


@pytest.mark.parametrize("spec", VARIANTS)
def test_api_route_table_never_routes_to_an_internet_or_nat_gateway(spec):
    graph = plan(spec)
    api_tables = [
        n.logical_id for n in graph.of_type("AWS::EC2::RouteTable") if n.meta["role"] == "api"
    ]
    assert api_tables == ["ApiRouteTable"]
    assert routes_of(graph, "ApiRouteTable") == []
    assert associated_subnets(graph, "ApiRouteTable") == ["ApiSubnet1", "ApiSubnet2"]


@pytest.mark.parametrize("spec", VARIANTS)
def test_no_subnet_maps_public_ips(spec):
    graph = plan(spec)
    subnets = graph.of_type("AWS::EC2::Subnet")
    assert subnets
    assert all(s.properties["MapPublicIpOnLaunch"] is False for s in subnets)
    assert "AssociatePublicIpAddress" not in json.dumps(graph.to_json())


@pytest.mark.parametrize("spec", VARIANTS)
def test_every_reference_is_a_dependency_on_an_existing_node(spec):
    graph = plan(spec)
    for node in graph:
        for ref in refs_in(node.properties):
            assert ref.logical_id in node.depends_on, (node.logical_id, ref)
        for dep in node.depends_on:
            assert dep in graph, (node.logical_id, dep)
        assert len(set(node.depends_on)) == len(node.depends_on)


@pytest.mark.parametrize("spec", VARIANTS)
def test_topological_order_creates_dependencies_first(spec):
    graph = plan(spec)
    order = [n.logical_id for n in graph.topological_order()]
    assert sorted(order) == sorted(graph.nodes)
    position = {lid: i for i, lid in enumerate(order)}
    for node in graph:
        for dep in node.depends_on:
            assert position[dep] < position[node.logical_id], (dep, node.logical_id)


@pytest.mark.parametrize("spec", VARIANTS)
def test_plan_is_deterministic(spec):
    first, second = plan(spec), plan(spec)
    assert first.to_json() == second.to_json()
    assert json.dumps(first.to_json()) == json.dumps(second.to_json())
    # A copy of the spec (not the same object) plans the same.
    assert plan(dataclasses.replace(spec)).to_json() == first.to_json()


@pytest.mark.parametrize("spec", VARIANTS)
def test_tags_name_and_meta_on_every_node(spec):
    graph = plan(spec)
    for node in graph:
        name = f"demo-{kebab(node.logical_id)}"
        assert node.meta["name"] == name
        assert node.meta["group"] in GROUPS
        assert node.meta["label"]
        expected = [*USER_TAGS, {"Key": "Name", "Value": name}]
        if node.type in UNTAGGED:
            assert "Tags" not in node.properties, node.logical_id
        elif node.type == "AWS::AutoScaling::AutoScalingGroup":
            assert node.properties["Tags"] == [{**t, "PropagateAtLaunch": False} for t in expected]
        else:
            assert node.properties["Tags"] == expected, node.logical_id
    if spec.api_kind == "alb":
        template = graph["ApiLaunchTemplate"].properties
        assert template["TagSpecifications"] == [
            {
                "ResourceType": "launch-template",
                "Tags": [*USER_TAGS, {"Key": "Name", "Value": "demo-api-launch-template"}],
            }
        ]
    # gantry:deployment / gantry:logical-id are the deployer's: the plan has no deployment id.
    assert "gantry:" not in json.dumps(graph.to_json())


def test_spec_tags_cannot_override_gantry_owned_keys():
    spec = dataclasses.replace(
        ARTICLE, tags=(("Name", "mine"), ("gantry:deployment", "x"), ("env", "prod"))
    )
    vpc = plan(spec)["Vpc"]
    assert vpc.properties["Tags"] == [
        {"Key": "env", "Value": "prod"},
        {"Key": "Name", "Value": "demo-vpc"},
    ]


def test_kebab_names():
    assert kebab("Vpc") == "vpc"
    assert kebab("NatEip1") == "nat-eip-1"
    assert (
        kebab("LambdaSubnet12RouteTableAssociation") == "lambda-subnet-12-route-table-association"
    )


@pytest.mark.parametrize("spec", VARIANTS)
def test_vpc_has_dns_support_and_hostnames(spec):
    vpc = plan(spec)["Vpc"].properties
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    assert vpc["EnableDnsSupport"] is True
    assert vpc["EnableDnsHostnames"] is True


@pytest.mark.parametrize("spec", VARIANTS)
def test_subnets_follow_the_region_azs_in_list_order(spec):
    graph = plan(spec)
    for role, prefix, cidrs in (
        ("lambda", "LambdaSubnet", spec.lambda_subnet_cidrs),
        ("api", "ApiSubnet", spec.api_subnet_cidrs),
    ):
        for i, cidr in enumerate(cidrs, start=1):
            subnet = graph[f"{prefix}{i}"]
            az = ["us-east-1a", "us-east-1b"][i - 1]
            assert subnet.properties["CidrBlock"] == cidr
            assert subnet.properties["AvailabilityZone"] == az
            assert subnet.properties["VpcId"] == Ref("Vpc")
            assert subnet.meta | {"role": role, "az": az, "index": i} == subnet.meta


@pytest.mark.parametrize("spec", [p for p in VARIANTS if "none-" in p.id])
def test_without_nat_there_is_no_internet_path(spec):
    graph = plan(spec)  # the spec still lists public CIDRs: they are ignored with nat none
    for type_name in (
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EIP",
        "AWS::EC2::Route",
    ):
        assert graph.of_type(type_name) == [], type_name
    assert not [n for n in graph.of_type("AWS::EC2::Subnet") if n.meta["role"] == "public"]
    assert "LambdaHttpsEgress" not in graph
    # SG-Lambda: the API port to SG-API and HTTPS to the endpoint's group, nothing else.
    assert lambda_egress(graph) == {
        (443, "ApiSecurityGroup"),
        (443, "EndpointSecurityGroup"),
    }
    # One Lambda route table, local route only.
    assert associated_subnets(graph, "LambdaRouteTable") == ["LambdaSubnet1", "LambdaSubnet2"]


def lambda_egress(graph: ResourceGraph) -> set[tuple[int, str]]:
    """SG-Lambda's egress rules as (port, peer group logical id or CIDR)."""
    return {
        (
            n.properties["FromPort"],
            n.properties["DestinationSecurityGroupId"].logical_id
            if "DestinationSecurityGroupId" in n.properties
            else n.properties["CidrIp"],
        )
        for n in graph.of_type("AWS::EC2::SecurityGroupEgress")
        if n.properties["GroupId"] == Ref("LambdaSecurityGroup")
    }


def instance_security_group(spec) -> str:
    """The group the API's instances carry: behind an ALB, their own."""
    return "ApiInstanceSecurityGroup" if spec.api_kind == "alb" else "ApiSecurityGroup"


@pytest.mark.parametrize("spec", VARIANTS)
def test_every_design_has_the_secrets_manager_endpoint(spec):
    """The API reads its credential at boot through the endpoint, whatever the NAT choice."""
    graph = plan(spec)
    endpoint = graph["SecretsManagerEndpoint"]
    assert endpoint.type == "AWS::EC2::VPCEndpoint"
    assert endpoint.properties["ServiceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert endpoint.properties["VpcEndpointType"] == "Interface"
    assert endpoint.properties["PrivateDnsEnabled"] is True
    # In the Lambda's AZs; the API subnets reach it over the VPC's local route.
    assert endpoint.properties["SubnetIds"] == [Ref("LambdaSubnet1"), Ref("LambdaSubnet2")]
    assert endpoint.properties["SecurityGroupIds"] == [Ref("EndpointSecurityGroup")]
    assert graph["EndpointSecurityGroup"].type == "AWS::EC2::SecurityGroup"
    # The function reads the secret at cold start: it is held until the endpoint is ready.
    assert "SecretsManagerEndpoint" in graph["LambdaFunction"].hold_until()
    # SG-Endpoint admits HTTPS from SG-Lambda and from the API's instances, nothing else.
    ingress = {
        (n.properties["FromPort"], n.properties["SourceSecurityGroupId"].logical_id)
        for n in graph.of_type("AWS::EC2::SecurityGroupIngress")
        if n.properties["GroupId"] == Ref("EndpointSecurityGroup")
    }
    assert ingress == {(443, "LambdaSecurityGroup"), (443, instance_security_group(spec))}


@pytest.mark.parametrize("spec", VARIANTS)
def test_api_instances_wait_only_for_what_aws_or_their_user_data_needs(spec):
    """An instance boots retrying its credential read (its service restarts every 10 s), so it
    does not wait for the endpoint path; its user data carries the secret's ARN, and the
    function is held until that path is ready."""
    graph = plan(spec)
    path = {"SecretsManagerEndpoint", "ApiToEndpointEgress", "EndpointFromApiIngress"}
    boots = ["ApiLaunchTemplate"] if spec.api_kind == "alb" else ["ApiInstance"]
    for logical_id in boots:
        node = graph[logical_id]
        assert not path & set(node.depends_on), logical_id
        assert node.order_after() == ["ApiSecret"], logical_id
    assert path <= set(graph["LambdaFunction"].hold_until())
    if spec.api_kind == "alb":
        # Health checks pass from the first launch: the ALB-to-instance rules come first, and
        # nothing else that no reference shows.
        assert graph["ApiAutoScalingGroup"].order_after() == [
            "ApiToInstanceEgress",
            "InstanceFromApiIngress",
        ]


@pytest.mark.parametrize("kind", ["ec2", "alb"])
def test_with_nat_the_api_instances_still_reach_secrets_manager_through_the_endpoint(kind):
    spec = dataclasses.replace(TWO_AZ, nat="single", api_kind=kind, api_port=8443)
    graph = plan(spec)
    instance_sg = instance_security_group(spec)

    egress = graph["ApiToEndpointEgress"].properties
    assert egress["GroupId"] == Ref(instance_sg)
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    assert egress["DestinationSecurityGroupId"] == Ref("EndpointSecurityGroup")
    ingress = graph["EndpointFromApiIngress"].properties
    assert ingress["GroupId"] == Ref("EndpointSecurityGroup")
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 443, 443)
    assert ingress["SourceSecurityGroupId"] == Ref(instance_sg)
    if kind == "alb":
        # The ALB itself never calls Secrets Manager: only its instances get the rule.
        assert not [
            n
            for n in graph.of_type("AWS::EC2::SecurityGroupEgress")
            if n.properties["GroupId"] == Ref("ApiSecurityGroup")
            and n.properties.get("DestinationSecurityGroupId") == Ref("EndpointSecurityGroup")
        ]

    # The API subnets stay local-only: the endpoint is reached over the VPC's local route.
    assert routes_of(graph, "ApiRouteTable") == []
    assert associated_subnets(graph, "ApiRouteTable") == ["ApiSubnet1", "ApiSubnet2"]

    # SG-Lambda: the API port to SG-API and HTTPS anywhere (which covers the endpoint), only.
    assert lambda_egress(graph) == {(8443, "ApiSecurityGroup"), (443, "0.0.0.0/0")}
    assert "LambdaToEndpointEgress" not in graph
    assert graph["EndpointFromLambdaIngress"].properties["SourceSecurityGroupId"] == Ref(
        "LambdaSecurityGroup"
    )


@pytest.mark.parametrize("nat", ["none", "single"])
def test_endpoint_service_name_follows_the_region(nat):
    spec = dataclasses.replace(ARTICLE, nat=nat, region="eu-west-1")
    endpoint = plan(spec)["SecretsManagerEndpoint"]
    assert endpoint.properties["ServiceName"] == "com.amazonaws.eu-west-1.secretsmanager"


@pytest.mark.parametrize("kind", ["ec2", "alb"])
def test_per_az_has_one_nat_per_lambda_az_routed_from_its_own_az(kind):
    spec = dataclasses.replace(
        TWO_AZ,
        nat="per_az",
        api_kind=kind,
        # A third public subnet holds no NAT: there is no Lambda subnet in its AZ.
        public_subnet_cidrs=(*TWO_AZ.public_subnet_cidrs, "10.0.20.0/24"),
    )
    graph = plan(spec)
    assert ids(graph, "AWS::EC2::NatGateway") == ["NatGateway1", "NatGateway2"]
    assert ids(graph, "AWS::EC2::EIP") == ["NatEip1", "NatEip2"]
    for i in (1, 2):
        nat = graph[f"NatGateway{i}"]
        public = graph[nat.properties["SubnetId"].logical_id]
        lambda_subnet = graph[f"LambdaSubnet{i}"]
        assert public.meta["role"] == "public"
        assert nat.meta["az"] == public.meta["az"] == lambda_subnet.meta["az"]
        assert nat.properties["AllocationId"] == Ref(f"NatEip{i}", "AllocationId")
        table = f"LambdaRouteTable{i}"
        assert graph[table].meta["az"] == lambda_subnet.meta["az"]
        assert associated_subnets(graph, table) == [f"LambdaSubnet{i}"]
        assert routes_of(graph, table) == [
            {
                "RouteTableId": Ref(table),
                "DestinationCidrBlock": "0.0.0.0/0",
                "NatGatewayId": Ref(f"NatGateway{i}"),
            }
        ]
    assert "LambdaRouteTable" not in graph


def test_single_nat_serves_every_lambda_subnet_from_public_subnet_1():
    graph = plan(dataclasses.replace(TWO_AZ, nat="single"))
    assert ids(graph, "AWS::EC2::NatGateway") == ["NatGateway1"]
    assert graph["NatGateway1"].properties["SubnetId"] == Ref("PublicSubnet1")
    assert associated_subnets(graph, "LambdaRouteTable") == ["LambdaSubnet1", "LambdaSubnet2"]
    assert associated_subnets(graph, "PublicRouteTable") == ["PublicSubnet1", "PublicSubnet2"]


@pytest.mark.parametrize("nat", ["single", "per_az"])
def test_internet_edges_follow_aws_ordering(nat):
    graph = plan(dataclasses.replace(TWO_AZ, nat=nat))
    # A route to an IGW, and an EIP in a VPC, need the gateway attached first.
    assert "VpcGatewayAttachment" in graph["PublicDefaultRoute"].depends_on
    assert graph["PublicDefaultRoute"].properties["GatewayId"] == Ref("InternetGateway")
    for eip in ids(graph, "AWS::EC2::EIP"):
        # Ordered after the attachment for its release (and in the export's DependsOn), but
        # allocated without waiting for it: AWS needs no gateway to allocate an address.
        assert "VpcGatewayAttachment" in graph[eip].depends_on
        assert "VpcGatewayAttachment" not in graph[eip].create_after()
        nat_id = eip.replace("NatEip", "NatGateway")
        assert eip in graph[nat_id].depends_on
        assert "VpcGatewayAttachment" in graph[nat_id].create_after()
    # Destroy walks the order backwards: each NAT gateway goes before the address it holds
    # is released.
    reverse = [n.logical_id for n in reversed(graph.topological_order())]
    for i in range(1, len(ids(graph, "AWS::EC2::NatGateway")) + 1):
        assert reverse.index(f"NatGateway{i}") < reverse.index(f"NatEip{i}")


@pytest.mark.parametrize("spec", VARIANTS)
def test_security_groups_reference_each_other_never_cidrs(spec):
    graph = plan(spec)
    for group in graph.of_type("AWS::EC2::SecurityGroup"):
        assert group.meta["revoke_default_egress"] is True
        assert "SecurityGroupIngress" not in group.properties
        assert "SecurityGroupEgress" not in group.properties
    rules = graph.of_type("AWS::EC2::SecurityGroupIngress") + graph.of_type(
        "AWS::EC2::SecurityGroupEgress"
    )
    for rule in rules:
        assert rule.properties["IpProtocol"] == "tcp"
        assert rule.properties["FromPort"] == rule.properties["ToPort"]
        if rule.logical_id == "LambdaHttpsEgress":
            assert rule.properties["CidrIp"] == "0.0.0.0/0"
            continue
        assert "CidrIp" not in rule.properties, rule.logical_id
        peer = rule.properties.get("SourceSecurityGroupId") or rule.properties.get(
            "DestinationSecurityGroupId"
        )
        assert graph[peer.logical_id].type == "AWS::EC2::SecurityGroup"
    # Nothing may open SG-Lambda to inbound traffic.
    assert not [
        r
        for r in rules
        if r.properties["GroupId"] == Ref("LambdaSecurityGroup") and r.type.endswith("Ingress")
    ]


def test_api_port_443_with_nat_keeps_both_lambda_egress_rules():
    graph = plan(ARTICLE)
    egress = {
        n.logical_id: n.properties
        for n in graph.of_type("AWS::EC2::SecurityGroupEgress")
        if n.properties["GroupId"] == Ref("LambdaSecurityGroup")
    }
    assert set(egress) == {"LambdaToApiEgress", "LambdaHttpsEgress"}
    assert egress["LambdaToApiEgress"]["DestinationSecurityGroupId"] == Ref("ApiSecurityGroup")
    assert egress["LambdaToApiEgress"]["FromPort"] == 443
    assert graph["ApiFromLambdaIngress"].properties["SourceSecurityGroupId"] == Ref(
        "LambdaSecurityGroup"
    )


@pytest.mark.parametrize("spec", VARIANTS)
def test_lambda_function(spec):
    graph = plan(spec)
    fn = graph["LambdaFunction"]
    props = fn.properties
    assert fn.type == "AWS::Lambda::Function"
    assert props["Runtime"] == "python3.12"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Role"] == Ref("LambdaRole", "Arn")
    # A burst is throttled at the function rather than piled onto the API's instances.
    assert props["ReservedConcurrentExecutions"] == 10
    assert props["VpcConfig"] == {
        "SubnetIds": [Ref("LambdaSubnet1"), Ref("LambdaSubnet2")],
        "SecurityGroupIds": [Ref("LambdaSecurityGroup")],
    }
    env = props["Environment"]["Variables"]
    assert env["API_SECRET_ARN"] == Ref("ApiSecret")
    assert env["API_PORT"] == "443"
    if spec.api_kind == "alb":
        assert env["API_HOST"] == Ref("ApiLoadBalancer", "DNSName")
    else:
        assert env["API_HOST"] == Ref("ApiInstance", "PrivateDnsName")
    rules = ids(graph, "AWS::EC2::SecurityGroupEgress") + ids(
        graph, "AWS::EC2::SecurityGroupIngress"
    )
    associations = ids(graph, "AWS::EC2::SubnetRouteTableAssociation")
    routes = ids(graph, "AWS::EC2::Route")
    # Created as soon as what it refers to exists: nothing else orders it.
    assert fn.order_after() == [d for d in fn.hold_until() if d not in fn.references()]
    assert set(fn.depends_on) == set(fn.references())
    for dep in ["LambdaRole", "LambdaLogGroup", "LambdaSecurityGroup", "ApiSecret"]:
        assert dep in fn.depends_on, dep
    # ... and held, with no concurrency (nothing can invoke it), until everything its calls
    # cross is ready; then it gets its planned reservation.
    api = (
        ["ApiLoadBalancer", "ApiListener", "ApiAutoScalingGroup"]
        if spec.api_kind == "alb"
        else ["ApiInstance"]
    )
    hold = fn.meta["hold"]
    assert hold["properties"] == {"ReservedConcurrentExecutions": 0}
    assert props["ReservedConcurrentExecutions"] == 10
    for dep in [
        "LambdaSecretReadPolicy",
        "SecretsManagerEndpoint",
        *rules,
        *associations,
        *routes,
        *api,
    ]:
        assert dep in hold["until"], dep
        assert dep not in fn.depends_on or dep in fn.references(), dep

    log_group = graph["LambdaLogGroup"].properties
    assert log_group["LogGroupName"] == f"/aws/lambda/{props['FunctionName']}"
    assert log_group["RetentionInDays"] == 30


def test_lambda_role_reads_only_its_one_secret():
    graph = plan(ARTICLE)
    role = graph["LambdaRole"].properties
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert role["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
        "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
    ]
    policy = graph["LambdaSecretReadPolicy"].properties
    assert policy["Roles"] == [Ref("LambdaRole")]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": Ref("ApiSecret")}
    ]
    secret = graph["ApiSecret"].properties
    assert "GenerateSecretString" in secret
    assert "SecretString" not in secret


def test_ec2_api_is_one_private_instance_with_imdsv2():
    graph = plan(ARTICLE)
    instance = graph["ApiInstance"].properties
    assert instance["InstanceType"] == "t3.micro"
    assert instance["SubnetId"] == Ref("ApiSubnet1")
    assert instance["SecurityGroupIds"] == [Ref("ApiSecurityGroup")]
    assert instance["ImageId"].startswith("resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023")
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["IamInstanceProfile"] == Ref("ApiInstanceProfile")
    assert graph["ApiInstance"].meta["user_data"] == "placeholder"
    assert graph["ApiInstanceRole"].properties["AssumeRolePolicyDocument"]["Statement"][0][
        "Principal"
    ] == {"Service": "ec2.amazonaws.com"}
    # The instance's user data names its credential; the policy to read it is not an
    # ordering AWS needs (the boot retries), and the function is held until the instance runs.
    assert graph["ApiInstance"].order_after() == ["ApiSecret"]
    assert "ApiInstance" in graph["LambdaFunction"].hold_until()
    for type_name in (
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::AutoScaling::AutoScalingGroup",
        "AWS::EC2::LaunchTemplate",
    ):
        assert graph.of_type(type_name) == []


@pytest.mark.parametrize("nat", ["none", "single", "per_az"])
def test_alb_api_is_an_internal_alb_over_an_auto_scaling_group(nat):
    spec = dataclasses.replace(TWO_AZ, api_kind="alb", nat=nat, api_port=8443)
    graph = plan(spec)
    assert "ApiInstance" not in graph

    lb = graph["ApiLoadBalancer"].properties
    assert lb["Scheme"] == "internal"
    assert lb["Type"] == "application"
    assert lb["Subnets"] == [Ref("ApiSubnet1"), Ref("ApiSubnet2")]
    assert len(lb["Subnets"]) >= 2
    assert lb["SecurityGroups"] == [Ref("ApiSecurityGroup")]
    assert lb["LoadBalancerAttributes"] == [
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}
    ]

    tg = graph["ApiTargetGroup"].properties
    assert (tg["Port"], tg["Protocol"], tg["HealthCheckPath"]) == (8443, "HTTPS", "/health")

    listener = graph["ApiListener"].properties
    assert (listener["Port"], listener["Protocol"]) == (8443, "HTTPS")
    assert listener["Certificates"] == [{"CertificateArn": Ref("ApiCertificate")}]
    assert listener["DefaultActions"] == [
        {"Type": "forward", "TargetGroupArn": Ref("ApiTargetGroup")}
    ]
    assert graph["ApiCertificate"].meta["imported"] is True

    data = graph["ApiLaunchTemplate"].properties["LaunchTemplateData"]
    assert data["InstanceType"] == "t3.micro"
    assert data["SecurityGroupIds"] == [Ref("ApiInstanceSecurityGroup")]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    tagged = {spec["ResourceType"]: spec["Tags"] for spec in data["TagSpecifications"]}
    assert set(tagged) == {"instance", "volume"}
    assert {"Key": "team", "Value": "payments"} in tagged["instance"]

    asg = graph["ApiAutoScalingGroup"].properties
    assert asg["VPCZoneIdentifier"] == [Ref("ApiSubnet1"), Ref("ApiSubnet2")]
    assert asg["TargetGroupARNs"] == [Ref("ApiTargetGroup")]
    assert (asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"]) == (1, 2, 4)
    assert asg["LaunchTemplate"]["LaunchTemplateId"] == Ref("ApiLaunchTemplate")
    assert all(tag["PropagateAtLaunch"] is False for tag in asg["Tags"])

    # Instances accept the API port from the ALB's group only.
    ingress = [
        n.properties
        for n in graph.of_type("AWS::EC2::SecurityGroupIngress")
        if n.properties["GroupId"] == Ref("ApiInstanceSecurityGroup")
    ]
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in ingress] == [
        (8443, Ref("ApiSecurityGroup"))
    ]
    assert graph["ApiToInstanceEgress"].properties["DestinationSecurityGroupId"] == Ref(
        "ApiInstanceSecurityGroup"
    )


def test_auto_scaling_group_size_is_capped():
    spec = dataclasses.replace(
        ARTICLE,
        api_kind="alb",
        api_subnet_cidrs=tuple(f"10.0.{i}.0/24" for i in range(10, 16)),
    )
    asg = plan(spec)["ApiAutoScalingGroup"].properties
    assert (asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"]) == (1, 3, 6)
    assert len(plan(spec)["ApiLoadBalancer"].properties["Subnets"]) == 6


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"nat": "single", "public_subnet_cidrs": ()}, "public subnet"),
        ({"nat": "per_az", "lambda_subnet_cidrs": ("10.0.1.0/24", "10.0.3.0/24")}, "per_az"),
        ({"api_kind": "alb"}, "two AZs"),
        (
            {
                "region": "us-west-1",
                "api_subnet_cidrs": ("10.0.2.0/24", "10.0.3.0/24", "10.0.4.0/24"),
            },
            "AZs",
        ),
    ],
)
def test_plan_refuses_specs_validation_would_reject(changes, message):
    with pytest.raises(PlanError, match=message):
        plan(dataclasses.replace(ARTICLE, **changes))
