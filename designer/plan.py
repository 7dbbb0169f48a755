"""The plan: a valid :class:`~designer.spec.Spec` in, the :class:`ResourceGraph` a deployment builds out.

Every view (diagram, route-table and security-group tables, cost, exports) and the deployer read
this graph, so the preview is exactly what will be created. :func:`plan` is pure and
deterministic: the same spec always gives the same nodes, in the same insertion order, with the
same properties, so ``plan(spec).to_json()`` is stable and can be diffed between versions.

Conventions of the graph produced here:

- Node types are CloudFormation type names and properties use CloudFormation property names, so an
  export is a mapping and the deployer's handlers translate them to the boto3 calls one by one.
- A reference to another node is a :class:`~designer.graph.Ref`; its attribute ``Id`` means what
  CloudFormation's ``Ref`` returns for that type (a role's name, a secret's ARN, a load balancer's
  ARN), any other attribute what ``Fn::GetAtt`` returns (``Arn``, ``DNSName``,
  ``PrivateDnsName``...). Only plain Refs are used, no ``Fn::Join``, so the deployer resolves a
  property by substituting Refs and nothing else.
- Every Ref target is also in ``depends_on``, and ``depends_on`` carries the extra orderings AWS
  needs but no property shows (a route to the internet gateway only after the gateway is
  attached; :meth:`~designer.graph.ResourceNode.order_after` lists them). Nothing else: an
  ordering AWS does not require would only serialise AWS's waits. Destroy walks the same edges
  in reverse, which is why, for instance, an Elastic IP depends on the NAT gateway's VPC
  attachment and the NAT gateway on the Elastic IP: the address is released only after the NAT
  gateway that holds it is gone.
- ``meta["hold"]`` (the Lambda function): ``{"until": [logical ids], "properties": {...}}``.
  The resource is created as soon as what it refers to exists, with ``properties`` overriding
  the planned ones (``ReservedConcurrentExecutions: 0``: no invocation can run), and released
  (given its planned properties) once everything in ``until`` is ready: every rule, route and
  association its traffic crosses, the Secrets Manager endpoint, the policy that lets it read
  the credential, the API. So no traffic reaches it before its path exists, and AWS's two
  longest waits (the NAT gateway, the function's network interfaces) run side by side. An
  export that cannot hold (CloudFormation) orders the resource after ``until`` instead.
- Tagged types carry ``Tags`` = the spec's tags plus ``Name`` = ``<spec name>-<kebab logical id>``
  (also in ``meta["name"]`` for every node, tagged or not). ``gantry:deployment`` and
  ``gantry:logical-id`` are *not* in the plan: the deployment id does not exist at plan time, so
  the deployer adds both to the create call. A spec tag named ``Name`` or starting with
  ``gantry:`` is left out because those keys belong to Gantry.
- ``meta`` holds facts for the views that are not CloudFormation properties: ``group`` (one of
  :data:`GROUPS`, for grouping rows in the UI), ``label`` (a short human label), and per type
  ``role``/``az``/``index`` (subnets), ``role``/``subnets``/``az`` (route tables), ``az``
  (NAT gateways and their addresses), ``revoke_default_egress`` (security groups: AWS adds an
  allow-all egress rule to every new group, which the deployer removes so only the planned rules
  remain), ``imported`` (the listener certificate), ``code`` / ``user_data`` (placeholders the
  deployer fills).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from designer.graph import Ref, ResourceGraph, ResourceNode, refs_in
from designer.regions import availability_zones
from designer.spec import Spec

#: The values ``meta["group"]`` takes, in the order the UI shows the groups.
GROUPS = (
    "network",
    "routing",
    "security",
    "compute",
    "api",
    "identity",
    "observability",
    "secrets",
)

ANYWHERE = "0.0.0.0/0"
HTTPS_PORT = 443

LAMBDA_RUNTIME = "python3.12"
LAMBDA_MEMORY_MB = 512
LAMBDA_TIMEOUT_S = 15
LAMBDA_ARCHITECTURE = "x86_64"
#: Concurrent executions reserved for (and so the most allowed to) the function: the API behind
#: it is one t3.micro, or at most ASG_MAX_DESIRED of them, which a burst of thousands of
#: concurrent calls would only overwhelm; past this, Lambda throttles the caller instead. It is
#: taken from the account's pool, which must keep 100 unreserved.
LAMBDA_RESERVED_CONCURRENCY = 10
LOG_RETENTION_DAYS = 30

API_INSTANCE_TYPE = "t3.micro"
API_ROOT_VOLUME_GB = 8
API_HEALTH_CHECK_PATH = "/health"
#: EC2 resolves this public SSM parameter to the current Amazon Linux 2023 AMI of the region at
#: launch, in RunInstances, launch templates and CloudFormation alike: no AMI id table to keep.
AL2023_IMAGE_ID = (
    "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
)
#: One instance per API AZ, but no more than this many: three AZs is the usual high-availability
#: spread, and every extra t3.micro is billed around the clock.
ASG_MAX_DESIRED = 3
#: TLS 1.3 with TLS 1.2 fallback: the ELB policy AWS recommends for new HTTPS listeners.
ALB_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
#: Load balancer attributes that differ from AWS's defaults. Headers whose names are not valid
#: HTTP are dropped rather than passed to the API (request smuggling through malformed headers).
ALB_ATTRIBUTES = {"routing.http.drop_invalid_header_fields.enabled": "true"}

LAMBDA_MANAGED_POLICIES = (
    # Create/delete the ENIs in the Lambda subnets, and write CloudWatch Logs.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    # Send X-Ray trace segments (TracingConfig Active).
    "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
)

_ROLE_TITLES = {"public": "Public", "lambda": "Lambda", "api": "API"}
_KEBAB = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])")


class PlanError(ValueError):
    """The spec breaks an invariant that validation guarantees (the plan was given a hand-made
    Spec that never went through :func:`~designer.spec.validate_spec`)."""


def kebab(logical_id: str) -> str:
    """``LambdaSubnet1RouteTableAssociation`` -> ``lambda-subnet-1-route-table-association``."""
    return _KEBAB.sub("-", logical_id).lower()


def plan(spec: Spec) -> ResourceGraph:
    """Every resource a deployment of ``spec`` creates, with the order AWS needs them in.

    Pure and deterministic. Raises :class:`PlanError` only for a Spec that validation would
    have rejected (NAT without a public subnet, more subnets than the region has AZs...).
    """
    return _Planner(spec).build()


class _Planner:
    def __init__(self, spec: Spec) -> None:
        _check(spec)
        self.spec = spec
        self.azs = availability_zones(spec.region)
        self.graph = ResourceGraph()
        self.user_tags = [
            {"Key": key, "Value": value}
            for key, value in spec.tags
            if key != "Name" and not key.startswith("gantry:")
        ]
        self.nat = spec.nat != "none"
        self.alb = spec.api_kind == "alb"
        self.public = [f"PublicSubnet{i}" for i in range(1, len(spec.public_subnet_cidrs) + 1)]
        self.lambda_subnets = [
            f"LambdaSubnet{i}" for i in range(1, len(spec.lambda_subnet_cidrs) + 1)
        ]
        self.api_subnets = [f"ApiSubnet{i}" for i in range(1, len(spec.api_subnet_cidrs) + 1)]
        if not self.nat:
            self.public = []
        # The security group the API's instances carry: the ALB has ApiSecurityGroup and the
        # instances behind it their own group that only the ALB may reach.
        self.instance_sg = "ApiInstanceSecurityGroup" if self.alb else "ApiSecurityGroup"
        self.associations: list[str] = []
        self.routes: list[str] = []
        self.rules: list[str] = []

    # -- helpers -------------------------------------------------------------------------------

    def name(self, logical_id: str) -> str:
        return f"{self.spec.name}-{kebab(logical_id)}"

    def tags(self, logical_id: str) -> list[dict[str, str]]:
        # Fresh dicts every time: no two nodes (or two plans) share a mutable value.
        return [*(dict(t) for t in self.user_tags), {"Key": "Name", "Value": self.name(logical_id)}]

    def add(
        self,
        logical_id: str,
        type_name: str,
        properties: dict[str, Any],
        *,
        group: str,
        label: str,
        after: Iterable[str] = (),
        tagged: bool = True,
        **meta: Any,
    ) -> ResourceNode:
        """Add a node; ``depends_on`` = every Ref target in ``properties``, then ``after``."""
        if tagged:
            properties["Tags"] = self.tags(logical_id)
        depends_on: list[str] = []
        for ref in refs_in(properties):
            if ref.logical_id not in depends_on:
                depends_on.append(ref.logical_id)
        for dep in after:
            if dep not in depends_on:
                depends_on.append(dep)
        return self.graph.add(
            ResourceNode(
                logical_id=logical_id,
                type=type_name,
                properties=properties,
                depends_on=depends_on,
                meta={"name": self.name(logical_id), "group": group, "label": label, **meta},
            )
        )

    # -- the graph -----------------------------------------------------------------------------

    def build(self) -> ResourceGraph:
        self.vpc()
        self.subnets()
        if self.nat:
            self.internet_gateway()
            self.nat_gateways()
        self.lambda_routing()
        self.api_routing()
        self.security_groups()
        self.secret()
        self.secrets_manager_endpoint()
        self.api_identity()
        if self.alb:
            self.api_alb()
        else:
            self.api_instance()
        self.lambda_function()
        return self.graph

    def vpc(self) -> None:
        spec = self.spec
        self.add(
            "Vpc",
            "AWS::EC2::VPC",
            {
                "CidrBlock": spec.vpc_cidr,
                # Both are needed for PrivateDnsEnabled on the Secrets Manager endpoint, and
                # for instances' private DNS names to resolve.
                "EnableDnsSupport": True,
                "EnableDnsHostnames": True,
                "InstanceTenancy": "default",
            },
            group="network",
            label=f"VPC {spec.vpc_cidr}",
            region=spec.region,
            nat=spec.nat,
            api_kind=spec.api_kind,
        )

    def subnets(self) -> None:
        spec = self.spec
        layout = (
            ("public", self.public, spec.public_subnet_cidrs),
            ("lambda", self.lambda_subnets, spec.lambda_subnet_cidrs),
            ("api", self.api_subnets, spec.api_subnet_cidrs),
        )
        for role, ids, cidrs in layout:
            for index, (logical_id, cidr) in enumerate(zip(ids, cidrs, strict=False), start=1):
                az = self.azs[index - 1]
                self.add(
                    logical_id,
                    "AWS::EC2::Subnet",
                    {
                        "VpcId": Ref("Vpc"),
                        "CidrBlock": cidr,
                        "AvailabilityZone": az,
                        # Nothing in any of our subnets gets a public address: the NAT gateway
                        # uses its Elastic IP, and no instance is launched in a public subnet.
                        "MapPublicIpOnLaunch": False,
                    },
                    group="network",
                    label=f"{_ROLE_TITLES[role]} subnet {index} ({az})",
                    role=role,
                    az=az,
                    index=index,
                )

    def internet_gateway(self) -> None:
        self.add(
            "InternetGateway",
            "AWS::EC2::InternetGateway",
            {},
            group="network",
            label="Internet gateway",
        )
        self.add(
            "VpcGatewayAttachment",
            "AWS::EC2::VPCGatewayAttachment",
            {"VpcId": Ref("Vpc"), "InternetGatewayId": Ref("InternetGateway")},
            group="network",
            label="Internet gateway attachment",
            tagged=False,
        )
        self.route_table("PublicRouteTable", "public", self.public, label="RT-Public")
        # A route to an internet gateway fails until the gateway is attached to the VPC.
        self.route(
            "PublicDefaultRoute",
            "PublicRouteTable",
            {"GatewayId": Ref("InternetGateway")},
            label="0.0.0.0/0 to the internet gateway",
            after=("VpcGatewayAttachment",),
        )
        self.associate(self.public, "PublicRouteTable", "RT-Public")

    def nat_gateways(self) -> None:
        count = len(self.lambda_subnets) if self.spec.nat == "per_az" else 1
        for i in range(1, count + 1):
            az = self.azs[i - 1]
            # The Elastic IP is ordered after the internet gateway's attachment for its
            # deletion: the gateway detaches only once the VPC's public addresses are released
            # (CloudFormation documents the same DependsOn). Allocating an address needs no
            # gateway, so the deployer creates it at once (``delete_order_only``): the NAT
            # gateway, AWS's longest wait, starts as soon as its subnet and the attachment are.
            self.add(
                f"NatEip{i}",
                "AWS::EC2::EIP",
                {"Domain": "vpc"},
                group="network",
                label=f"Elastic IP for NAT ({az})",
                after=("VpcGatewayAttachment",),
                az=az,
                delete_order_only=["VpcGatewayAttachment"],
            )
            self.add(
                f"NatGateway{i}",
                "AWS::EC2::NatGateway",
                {
                    "ConnectivityType": "public",
                    "AllocationId": Ref(f"NatEip{i}", "AllocationId"),
                    "SubnetId": Ref(f"PublicSubnet{i}"),
                },
                group="network",
                label=f"NAT gateway ({az})",
                after=("VpcGatewayAttachment",),
                az=az,
            )

    def lambda_routing(self) -> None:
        if self.spec.nat == "per_az":
            # Each AZ's Lambda subnet leaves through the NAT gateway in its own AZ: no
            # cross-AZ data charge, and losing one AZ does not cut the others off.
            for i, subnet in enumerate(self.lambda_subnets, start=1):
                az = self.azs[i - 1]
                table, label = f"LambdaRouteTable{i}", f"RT-Lambda {az}"
                self.route_table(table, "lambda", [subnet], label=label, az=az)
                self.route(
                    f"LambdaDefaultRoute{i}",
                    table,
                    {"NatGatewayId": Ref(f"NatGateway{i}")},
                    label=f"0.0.0.0/0 to NAT gateway ({az})",
                )
                self.associate([subnet], table, label)
            return
        self.route_table("LambdaRouteTable", "lambda", self.lambda_subnets, label="RT-Lambda")
        if self.nat:
            self.route(
                "LambdaDefaultRoute",
                "LambdaRouteTable",
                {"NatGatewayId": Ref("NatGateway1")},
                label=f"0.0.0.0/0 to NAT gateway ({self.azs[0]})",
            )
        self.associate(self.lambda_subnets, "LambdaRouteTable", "RT-Lambda")

    def api_routing(self) -> None:
        # Local route only, whatever the NAT choice: the API is never reachable from, and never
        # reaches, the internet.
        self.route_table("ApiRouteTable", "api", self.api_subnets, label="RT-API")
        self.associate(self.api_subnets, "ApiRouteTable", "RT-API")

    def route_table(
        self, logical_id: str, role: str, subnets: list[str], *, label: str, **meta: Any
    ) -> None:
        self.add(
            logical_id,
            "AWS::EC2::RouteTable",
            {"VpcId": Ref("Vpc")},
            group="routing",
            label=label,
            role=role,
            subnets=list(subnets),
            **meta,
        )

    def route(
        self,
        logical_id: str,
        table: str,
        target: dict[str, Ref],
        *,
        label: str,
        after: Iterable[str] = (),
    ) -> None:
        self.add(
            logical_id,
            "AWS::EC2::Route",
            {"RouteTableId": Ref(table), "DestinationCidrBlock": ANYWHERE, **target},
            group="routing",
            label=label,
            after=after,
            tagged=False,
        )
        self.routes.append(logical_id)

    def associate(self, subnets: list[str], table: str, table_label: str) -> None:
        for subnet in subnets:
            logical_id = f"{subnet}RouteTableAssociation"
            self.add(
                logical_id,
                "AWS::EC2::SubnetRouteTableAssociation",
                {"SubnetId": Ref(subnet), "RouteTableId": Ref(table)},
                group="routing",
                label=f"{self.graph[subnet].meta['label']} in {table_label}",
                tagged=False,
            )
            self.associations.append(logical_id)

    def security_groups(self) -> None:
        port = self.spec.api_port
        groups = [
            ("LambdaSecurityGroup", "SG-Lambda", "Lambda function: no ingress"),
            (
                "ApiSecurityGroup",
                "SG-API",
                "Internal load balancer of the API" if self.alb else "Internal API instance",
            ),
        ]
        if self.alb:
            groups.append(
                ("ApiInstanceSecurityGroup", "SG-API-Instances", "API instances behind the ALB")
            )
        groups.append(
            ("EndpointSecurityGroup", "SG-Endpoint", "Secrets Manager interface endpoint")
        )
        for logical_id, label, purpose in groups:
            self.add(
                logical_id,
                "AWS::EC2::SecurityGroup",
                {
                    "GroupName": self.name(logical_id),
                    "GroupDescription": f"{self.spec.name} {purpose}",
                    "VpcId": Ref("Vpc"),
                },
                group="security",
                label=label,
                revoke_default_egress=True,
            )

        # Group-to-group references, never CIDRs: whatever addresses the Lambda's ENIs or the
        # API's instances get, only members of the right group can talk.
        self.rule_pair(
            "LambdaToApiEgress",
            "ApiFromLambdaIngress",
            "LambdaSecurityGroup",
            "ApiSecurityGroup",
            port,
            f"Lambda to the API on {port}",
        )
        if self.alb:
            self.rule_pair(
                "ApiToInstanceEgress",
                "InstanceFromApiIngress",
                "ApiSecurityGroup",
                "ApiInstanceSecurityGroup",
                port,
                f"ALB to the API instances on {port} (traffic and health checks)",
            )
        # The Secrets Manager endpoint exists in every design (see secrets_manager_endpoint),
        # and with private DNS every Secrets Manager call made in the VPC goes to it.
        if self.nat:
            # Internet over HTTPS through the NAT gateway. 0.0.0.0/0 also covers the endpoint's
            # private addresses, so no second egress rule is needed for it; the endpoint's own
            # group still has to admit SG-Lambda. Kept separate from the API rule even when the
            # API port is 443: the peers differ and so does the reason.
            self.add(
                "LambdaHttpsEgress",
                "AWS::EC2::SecurityGroupEgress",
                {
                    "GroupId": Ref("LambdaSecurityGroup"),
                    "IpProtocol": "tcp",
                    "FromPort": HTTPS_PORT,
                    "ToPort": HTTPS_PORT,
                    "CidrIp": ANYWHERE,
                    "Description": "Lambda over HTTPS: the internet via NAT, and the VPC endpoint",
                },
                group="security",
                label="SG-Lambda egress tcp 443 to 0.0.0.0/0",
                tagged=False,
            )
            self.rules.append("LambdaHttpsEgress")
            self.ingress(
                "EndpointFromLambdaIngress",
                "LambdaSecurityGroup",
                "EndpointSecurityGroup",
                HTTPS_PORT,
                "Lambda to the Secrets Manager endpoint over HTTPS",
            )
        else:
            # No internet: HTTPS only to the endpoint, the Lambda's one way to Secrets Manager.
            self.rule_pair(
                "LambdaToEndpointEgress",
                "EndpointFromLambdaIngress",
                "LambdaSecurityGroup",
                "EndpointSecurityGroup",
                HTTPS_PORT,
                "Lambda to the Secrets Manager endpoint over HTTPS",
            )
        # The API's instances read their credential at boot, whatever the NAT choice: the API
        # route table is local-only, so the endpoint is their only way to Secrets Manager. The
        # rule is on the group the instances carry (SG-API-Instances behind an ALB).
        self.rule_pair(
            "ApiToEndpointEgress",
            "EndpointFromApiIngress",
            self.instance_sg,
            "EndpointSecurityGroup",
            HTTPS_PORT,
            "API instances to the Secrets Manager endpoint over HTTPS",
        )

    def rule_pair(
        self,
        egress_id: str,
        ingress_id: str,
        source: str,
        destination: str,
        port: int,
        description: str,
    ) -> None:
        """An egress rule on ``source`` and the matching ingress rule on ``destination``.

        Separate rule resources rather than inline rules: two groups that reference each other
        inline could not be created in any order.
        """
        src, dst = self.graph[source].meta["label"], self.graph[destination].meta["label"]
        common = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "Description": description}
        self.add(
            egress_id,
            "AWS::EC2::SecurityGroupEgress",
            {"GroupId": Ref(source), **common, "DestinationSecurityGroupId": Ref(destination)},
            group="security",
            label=f"{src} egress tcp {port} to {dst}",
            tagged=False,
        )
        self.rules.append(egress_id)
        self.ingress(ingress_id, source, destination, port, description)

    def ingress(
        self, logical_id: str, source: str, destination: str, port: int, description: str
    ) -> None:
        """An ingress rule on ``destination`` admitting ``source`` on ``port``."""
        src, dst = self.graph[source].meta["label"], self.graph[destination].meta["label"]
        self.add(
            logical_id,
            "AWS::EC2::SecurityGroupIngress",
            {
                "GroupId": Ref(destination),
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "Description": description,
                "SourceSecurityGroupId": Ref(source),
            },
            group="security",
            label=f"{dst} ingress tcp {port} from {src}",
            tagged=False,
        )
        self.rules.append(logical_id)

    def secret(self) -> None:
        self.add(
            "ApiSecret",
            "AWS::SecretsManager::Secret",
            {
                "Name": f"gantry/{self.spec.name}/api-credential",
                "Description": f"Credential the {self.spec.name} Lambda presents to its API",
                # Secrets Manager generates the value: Gantry never sees, shows or stores it.
                "GenerateSecretString": {"PasswordLength": 40, "ExcludePunctuation": True},
            },
            group="secrets",
            label="API credential (Secrets Manager)",
        )

    def secrets_manager_endpoint(self) -> None:
        """The interface endpoint for Secrets Manager, in every design.

        The API's instances read their credential at boot, and the API subnets' route table is
        local-only whatever the NAT choice, so this endpoint is how they reach Secrets Manager;
        the NAT choice only decides whether the Lambda also has the internet. Its network
        interfaces are in the Lambda subnets, one per Lambda AZ: the Lambda, the endpoint's
        first client on every cold start, reaches it in its own AZ, and the API instances in
        the API subnets reach it over the VPC's local route. With private DNS the regional
        ``secretsmanager`` hostname resolves to the endpoint everywhere in the VPC, so every
        Secrets Manager call made inside it goes through the endpoint, NAT or not.
        """
        region = self.spec.region
        self.add(
            "SecretsManagerEndpoint",
            "AWS::EC2::VPCEndpoint",
            {
                "VpcId": Ref("Vpc"),
                "ServiceName": f"com.amazonaws.{region}.secretsmanager",
                "VpcEndpointType": "Interface",
                # The regional secretsmanager hostname resolves to the endpoint inside the VPC,
                # so the SDK's default endpoint works unchanged.
                "PrivateDnsEnabled": True,
                "SubnetIds": [Ref(s) for s in self.lambda_subnets],
                "SecurityGroupIds": [Ref("EndpointSecurityGroup")],
            },
            group="network",
            label="Secrets Manager endpoint",
        )

    def api_identity(self) -> None:
        self.add(
            "ApiInstanceRole",
            "AWS::IAM::Role",
            {
                "Description": f"{self.spec.name} API instances: read the API credential",
                "AssumeRolePolicyDocument": _trust("ec2.amazonaws.com"),
                # None: a managed policy attached by hand (AdministratorAccess...) is drift.
                "ManagedPolicyArns": [],
            },
            group="identity",
            label="API instance role",
        )
        self.add(
            "ApiInstanceSecretReadPolicy",
            "AWS::IAM::Policy",
            {
                "PolicyName": "read-api-credential",
                "Roles": [Ref("ApiInstanceRole")],
                "PolicyDocument": _secret_read(write_first_value=True),
            },
            group="identity",
            label="API instances may read (and at first boot set) the API credential",
            tagged=False,
        )
        self.add(
            "ApiInstanceProfile",
            "AWS::IAM::InstanceProfile",
            {"Roles": [Ref("ApiInstanceRole")]},
            group="identity",
            label="API instance profile",
            tagged=False,
        )

    def api_instance(self) -> None:
        self.add(
            "ApiInstance",
            "AWS::EC2::Instance",
            {
                "ImageId": AL2023_IMAGE_ID,
                "InstanceType": API_INSTANCE_TYPE,
                # No public address: ApiSubnet1 does not map one and has no internet route.
                "SubnetId": Ref("ApiSubnet1"),
                "SecurityGroupIds": [Ref("ApiSecurityGroup")],
                "IamInstanceProfile": Ref("ApiInstanceProfile"),
                "MetadataOptions": _imdsv2(),
                "BlockDeviceMappings": _root_volume(),
            },
            group="api",
            label=f"API instance ({API_INSTANCE_TYPE}, {self.azs[0]})",
            # The user data carries the secret's ARN. Nothing else comes first: the instance's
            # service retries its boot every 10 s (api_health.sh) until the policy, the route
            # table association and the endpoint path it reads the credential through exist,
            # and the function sends it nothing before all of them are ready (its hold).
            after=("ApiSecret",),
            user_data="placeholder",
            api_port=self.spec.api_port,
            credential_from="ApiSecret",
        )

    def api_alb(self) -> None:
        spec, port = self.spec, self.spec.api_port
        self.add(
            "ApiCertificate",
            "AWS::CertificateManager::Certificate",
            # A self-signed certificate the deployer generates and imports into ACM (imported
            # certificates are free and need no DNS validation, which an internal name cannot
            # pass). The wildcard matches the ALB's internal-....<region>.elb.amazonaws.com name.
            {"DomainName": f"*.{spec.region}.elb.amazonaws.com"},
            group="api",
            label="TLS certificate (self-signed, imported)",
            imported=True,
        )
        self.add(
            "ApiTargetGroup",
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            {
                "VpcId": Ref("Vpc"),
                "TargetType": "instance",
                "Port": port,
                "Protocol": "HTTPS",
                "HealthCheckEnabled": True,
                "HealthCheckProtocol": "HTTPS",
                "HealthCheckPort": "traffic-port",
                "HealthCheckPath": API_HEALTH_CHECK_PATH,
                "Matcher": {"HttpCode": "200"},
            },
            group="api",
            label=f"Target group (HTTPS {port})",
        )
        self.add(
            "ApiLoadBalancer",
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            {
                "Type": "application",
                "Scheme": "internal",
                "IpAddressType": "ipv4",
                "Subnets": [Ref(s) for s in self.api_subnets],
                "SecurityGroups": [Ref("ApiSecurityGroup")],
                "LoadBalancerAttributes": [
                    {"Key": key, "Value": value} for key, value in ALB_ATTRIBUTES.items()
                ],
            },
            group="api",
            label="Internal application load balancer",
        )
        self.add(
            "ApiListener",
            "AWS::ElasticLoadBalancingV2::Listener",
            {
                "LoadBalancerArn": Ref("ApiLoadBalancer"),
                # HTTPS even on a non-standard port: the Lambda sends the API credential.
                "Port": port,
                "Protocol": "HTTPS",
                "SslPolicy": ALB_SSL_POLICY,
                "Certificates": [{"CertificateArn": Ref("ApiCertificate")}],
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": Ref("ApiTargetGroup")}],
            },
            group="api",
            label=f"HTTPS listener on {port}",
            tagged=False,
        )
        self.add(
            "ApiLaunchTemplate",
            "AWS::EC2::LaunchTemplate",
            {
                "LaunchTemplateData": {
                    "ImageId": AL2023_IMAGE_ID,
                    "InstanceType": API_INSTANCE_TYPE,
                    "IamInstanceProfile": {"Arn": Ref("ApiInstanceProfile", "Arn")},
                    "SecurityGroupIds": [Ref("ApiInstanceSecurityGroup")],
                    "MetadataOptions": _imdsv2(),
                    "BlockDeviceMappings": _root_volume(),
                    # Instances the Auto Scaling group launches are tagged through these; the
                    # deployer adds the gantry: tags here as well as on the template itself.
                    "TagSpecifications": [
                        {"ResourceType": "instance", "Tags": self.tags("ApiInstance")},
                        {"ResourceType": "volume", "Tags": self.tags("ApiInstance")},
                    ],
                },
                # A launch template takes TagSpecifications rather than Tags.
                "TagSpecifications": [
                    {"ResourceType": "launch-template", "Tags": self.tags("ApiLaunchTemplate")}
                ],
            },
            group="api",
            label=f"Launch template ({API_INSTANCE_TYPE})",
            tagged=False,
            # The user data carries the secret's ARN; the rest of what an instance reads its
            # credential through at boot it retries for (see api_instance).
            after=("ApiSecret",),
            user_data="placeholder",
            api_port=self.spec.api_port,
            credential_from="ApiSecret",
        )
        desired = min(len(self.api_subnets), ASG_MAX_DESIRED)
        self.add(
            "ApiAutoScalingGroup",
            "AWS::AutoScaling::AutoScalingGroup",
            {
                "MinSize": 1,
                "DesiredCapacity": desired,
                "MaxSize": 2 * desired,
                "LaunchTemplate": {
                    "LaunchTemplateId": Ref("ApiLaunchTemplate"),
                    "Version": Ref("ApiLaunchTemplate", "LatestVersionNumber"),
                },
                "VPCZoneIdentifier": [Ref(s) for s in self.api_subnets],
                "TargetGroupARNs": [Ref("ApiTargetGroup")],
                "HealthCheckType": "ELB",
                "HealthCheckGracePeriod": 300,
                # Kept on the group: the launch template already tags the instances, and a
                # propagated tag would override the template's tag of the same key.
                "Tags": [
                    {**tag, "PropagateAtLaunch": False} for tag in self.tags("ApiAutoScalingGroup")
                ],
            },
            group="api",
            label=f"Auto Scaling group ({desired} x {API_INSTANCE_TYPE})",
            tagged=False,
            # Health checks must be able to pass from the first launch, or the group replaces
            # healthy instances in a loop: the ALB-to-instance rules come first. (Targets of a
            # target group no listener uses yet are not checked, so the listener need not.)
            after=["ApiToInstanceEgress", "InstanceFromApiIngress"],
        )

    def lambda_function(self) -> None:
        function_name = self.name("LambdaFunction")
        self.add(
            "LambdaRole",
            "AWS::IAM::Role",
            {
                "Description": f"{self.spec.name} Lambda: VPC access, X-Ray, the API credential",
                "AssumeRolePolicyDocument": _trust("lambda.amazonaws.com"),
                "ManagedPolicyArns": list(LAMBDA_MANAGED_POLICIES),
            },
            group="identity",
            label="Lambda execution role",
        )
        self.add(
            "LambdaSecretReadPolicy",
            "AWS::IAM::Policy",
            {
                "PolicyName": "read-api-credential",
                "Roles": [Ref("LambdaRole")],
                "PolicyDocument": _secret_read(),
            },
            group="identity",
            label="Lambda may read the API credential",
            tagged=False,
        )
        self.add(
            "LambdaLogGroup",
            "AWS::Logs::LogGroup",
            # Created before the function so Lambda does not create it without a retention.
            {
                "LogGroupName": f"/aws/lambda/{function_name}",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
            group="observability",
            label=f"Lambda logs ({LOG_RETENTION_DAYS} days)",
        )
        if self.alb:
            api_host = Ref("ApiLoadBalancer", "DNSName")
            api_ready = ["ApiLoadBalancer", "ApiListener", "ApiAutoScalingGroup"]
        else:
            api_host, api_ready = Ref("ApiInstance", "PrivateDnsName"), ["ApiInstance"]
        # The function would serve traffic as soon as it is Active, so it is held at zero
        # concurrency until everything its calls cross is ready: the rules on both sides, the
        # routes and associations, the Secrets Manager endpoint its cold start reads the API
        # credential through (in every design), the policy allowing that read, and the API.
        # It is created meanwhile, so Lambda makes its network interfaces while AWS makes the
        # NAT gateway and the rest.
        until = [
            "LambdaSecretReadPolicy",
            *self.rules,
            *self.routes,
            *self.associations,
            "SecretsManagerEndpoint",
            *api_ready,
        ]
        self.add(
            "LambdaFunction",
            "AWS::Lambda::Function",
            {
                "FunctionName": function_name,
                "Runtime": LAMBDA_RUNTIME,
                "Handler": "index.handler",
                "Architectures": [LAMBDA_ARCHITECTURE],
                "MemorySize": LAMBDA_MEMORY_MB,
                "Timeout": LAMBDA_TIMEOUT_S,
                "ReservedConcurrentExecutions": LAMBDA_RESERVED_CONCURRENCY,
                "Role": Ref("LambdaRole", "Arn"),
                "TracingConfig": {"Mode": "Active"},
                "LoggingConfig": {"LogGroup": Ref("LambdaLogGroup")},
                "VpcConfig": {
                    "SubnetIds": [Ref(s) for s in self.lambda_subnets],
                    "SecurityGroupIds": [Ref("LambdaSecurityGroup")],
                },
                "Environment": {
                    "Variables": {
                        # The function calls https://API_HOST:API_PORT/.
                        "API_HOST": api_host,
                        "API_PORT": str(self.spec.api_port),
                        "API_SCHEME": "https",
                        "API_SECRET_ARN": Ref("ApiSecret"),
                    }
                },
            },
            group="compute",
            label=f"Lambda function ({LAMBDA_RUNTIME}, {LAMBDA_MEMORY_MB} MB)",
            code="placeholder",
            hold={"until": until, "properties": {"ReservedConcurrentExecutions": 0}},
        )


def _imdsv2() -> dict[str, Any]:
    # IMDSv2 only (session tokens), and a hop limit of 1 so nothing beyond the instance itself,
    # e.g. a container on it, can fetch the instance role's credentials.
    return {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1}


def _root_volume() -> list[dict[str, Any]]:
    # Amazon Linux 2023's root device; encrypted gp3 whatever the account's EBS default is.
    return [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "VolumeType": "gp3",
                "VolumeSize": API_ROOT_VOLUME_GB,
                "Encrypted": True,
                "DeleteOnTermination": True,
            },
        }
    ]


def _trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def _secret_read(*, write_first_value: bool = False) -> dict[str, Any]:
    """Access to that one secret only: not secretsmanager:* and not Resource "*".

    The secret is created empty so that Gantry never sees its value: the first API instance to
    boot generates the credential and stores it (PutSecretValue), which is why the API's policy
    also has that action; the Lambda only reads.
    """
    actions = ["secretsmanager:GetSecretValue"]
    if write_first_value:
        actions.append("secretsmanager:PutSecretValue")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": actions if len(actions) > 1 else actions[0],
                "Resource": Ref("ApiSecret"),
            }
        ],
    }


def _check(spec: Spec) -> None:
    azs = availability_zones(spec.region)
    for field in ("public_subnet_cidrs", "lambda_subnet_cidrs", "api_subnet_cidrs"):
        if len(getattr(spec, field)) > len(azs):
            raise PlanError(f"{field}: {spec.region} has only {len(azs)} AZs")
    if not spec.lambda_subnet_cidrs or not spec.api_subnet_cidrs:
        raise PlanError("a plan needs at least one Lambda subnet and one API subnet")
    if spec.nat != "none" and not spec.public_subnet_cidrs:
        raise PlanError(f"nat {spec.nat} needs a public subnet for the NAT gateway")
    if spec.nat == "per_az" and len(spec.public_subnet_cidrs) < len(spec.lambda_subnet_cidrs):
        raise PlanError("nat per_az needs a public subnet in every Lambda subnet's AZ")
    if spec.api_kind == "alb" and len(spec.api_subnet_cidrs) < 2:
        raise PlanError("an application load balancer needs API subnets in two AZs")
