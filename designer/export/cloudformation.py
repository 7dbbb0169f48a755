"""A design version's resource graph as a CloudFormation template.

The graph is already CloudFormation-shaped (types, property names, :class:`~designer.graph.Ref`
for references), so most of a template is a mapping: a ``Ref`` whose attribute is ``Id`` becomes
``{"Ref": ...}``, any other attribute ``{"Fn::GetAtt": [...]}``. What the template adds is what
only the deployer knows today, written out so that a stack built from it is what a Gantry
deployment builds:

- **the function's code**: Gantry's own handler (``workload/lambda_src/handler.py``), inline as
  ``Code.ZipFile`` (CloudFormation writes it to ``index.py``, the file Gantry's own package
  holds) unless the pipeline names an S3 object in ``CodeS3Bucket``/``CodeS3Key``; when the code
  would not fit (``ZIPFILE_MAX``, ``TEMPLATE_MAX``), only the S3 parameters remain;
- **the API instances' user data**: the same first-boot script the deployer sends
  (``workload.artifacts.user_data_for_sub``), with the secret's ARN and the region filled in by
  ``Fn::Sub`` when the stack is created;
- **the default egress rule**: Gantry revokes the allow-all rule AWS gives every new security
  group. CloudFormation removes that rule only when the group lists egress rules of its own, so
  each such group lists one rule to ``127.0.0.1/32``, which no packet leaving a network
  interface matches; its real egress rules stay separate resources, exactly as in the graph;
- **the imported certificate** (the ALB variant): CloudFormation cannot import a certificate
  into ACM, so the listener takes an ``ApiCertificateArn`` parameter instead of the resource.

Values a pipeline sets are parameters with the design's values as defaults: the Availability
Zones, the AMI (an SSM parameter type resolving the same public parameter the deployer reads),
the code location and the design's tag values. Names AWS makes unique per account (the secret,
the log group, the function, the security groups) are left to CloudFormation, which derives
them from the stack's name, so two stacks of one design deploy side by side. ``DependsOn`` lists
only the orderings of the graph that no reference in the template already implies, directly or
through other resources.

Checks of the security scanner (checkov) that do not fit this architecture are skipped in the
resource's ``Metadata`` with their reason (``designer/export/scanner.py``), and the template's
``Metadata.Gantry.DiffersFromGantry`` says what CloudFormation builds differently from the
deployer, and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from designer.export.scanner import scanner_skips
from designer.export.serialize import template_text
from designer.graph import Ref, ResourceGraph, ResourceNode
from designer.plan import plan
from designer.spec import Spec
from workload.artifacts import lambda_source, user_data_for_sub

TEMPLATE_FORMAT_VERSION = "2010-09-09"
#: The largest template CloudFormation takes in the request itself (``--template-body``); a
#: larger one is deployed from S3 (``aws cloudformation deploy --s3-bucket``), up to
#: :data:`TEMPLATE_MAX`. Designs with an ALB, or with many tags, are larger.
TEMPLATE_BODY_MAX = 51_200
#: The largest template CloudFormation takes at all (from S3). The function's code is inline
#: only while the template, as JSON, stays within it.
TEMPLATE_MAX = 1_000_000
#: ``Code.ZipFile``: CloudFormation zips the source, and the zip may not exceed 4 MB.
ZIPFILE_MAX = 4 * 1024 * 1024
#: CloudFormation's limit on a template's Description.
DESCRIPTION_MAX = 1024

#: The outputs a stack's users read (always present: the security groups have one each, named
#: ``<logical id>Id``).
OUTPUTS = ("VpcId", "ApiUrl", "FunctionName", "FunctionArn", "SecretArn")

#: The parameter groups, in the order the template (and CloudFormation's console) lists them.
PARAMETER_GROUPS = ("Network", "API instances", "Load balancer", "Function code", "Tags")
SSM_PREFIX = "resolve:ssm:"
#: The allow-all rule's stand-in (see the module docstring).
LOOPBACK_EGRESS = {
    "IpProtocol": "-1",
    "CidrIp": "127.0.0.1/32",
    "Description": "Stands in for the default allow-all egress rule, which Gantry revokes: "
    "matches no traffic",
}
#: Names AWS makes unique per account or per VPC, per type: left to CloudFormation, which makes
#: them from the stack name and the logical id.
GENERATED_NAMES = {
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::EC2::LaunchTemplate": "LaunchTemplateName",
    "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "Name",
}
#: Stateful types, and what happens to them when the stack is deleted or replaces them: what
#: Gantry's destroy does (the secret is deleted without a recovery window, the logs go with the
#: function), said explicitly rather than left to CloudFormation's default.
DELETION_POLICIES = {"AWS::SecretsManager::Secret": "Delete", "AWS::Logs::LogGroup": "Delete"}
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")

#: What CloudFormation builds differently from Gantry's deployer (the template's Metadata and
#: the README say the same).
DIFFERENCES = {
    "DefaultEgress": "Gantry revokes the allow-all egress rule AWS adds to every new security "
    "group. CloudFormation removes it only when a group lists egress rules itself, so each "
    "group lists one rule, all protocols to 127.0.0.1/32, which no traffic leaving a network "
    "interface matches; the group's real egress rules are the AWS::EC2::SecurityGroupEgress "
    "resources, as in Gantry. Do not edit that inline rule: CloudFormation would replace the "
    "group's whole egress rule set.",
    "Secret": "CloudFormation generates the API credential (GenerateSecretString) when it "
    "creates the secret; Gantry creates the secret empty and the first API instance generates "
    "the same kind of value, so that Gantry itself never sees it. Either way the instances "
    "read it at boot and the function reads it on a cold start.",
    "Names": "Gantry names account-unique resources after the deployment; here CloudFormation "
    "names them after the stack and the logical id, so two stacks of one design coexist.",
    "Tags": "Gantry tags every resource gantry:deployment and gantry:logical-id; a stack's "
    "resources carry CloudFormation's aws:cloudformation:stack-name and logical-id tags instead.",
    "Image": "The AMI parameter resolves the same public SSM parameter the deployer reads, "
    "when the stack is created or updated.",
    "FunctionOrder": "Gantry creates the function as soon as what it refers to exists, with no "
    "concurrency reserved (0: it cannot be invoked), and gives it its planned reservation once "
    "every rule, route, association, the Secrets Manager endpoint and the API are ready. "
    "CloudFormation cannot hold a resource, so the function DependsOn those instead: the same "
    "safety, with the NAT gateway's and the function's waits one after the other.",
}
_CERTIFICATE_DIFFERENCE = (
    "Gantry generates a self-signed certificate (RSA 2048, one year, for "
    "*.<region>.elb.amazonaws.com) and imports it into ACM; CloudFormation cannot import a "
    "certificate, so the listener uses the ACM certificate whose ARN is given in the "
    "ApiCertificateArn parameter (import one with `aws acm import-certificate`, or issue one "
    "from a private CA)."
)


def spec_template(spec: Spec, *, version: int | None) -> dict[str, Any]:
    """The template of a valid spec: its plan, exported. ``version`` is the design version the
    spec is (``None`` for a spec that is not a saved version, e.g. a file)."""
    return cloudformation_template(plan(spec), design=spec.name, version=version)


def cloudformation_template(
    graph: ResourceGraph,
    *,
    design: str,
    version: int | None,
    code: str | None = None,
) -> dict[str, Any]:
    """The CloudFormation template (a JSON-able ``dict``) that builds ``graph``.

    Pure and deterministic: the same graph gives the same template. ``design`` and ``version``
    go into the Description and Metadata; ``code`` is the function's source (Gantry's handler
    by default). The code is inline unless it exceeds ``Code.ZipFile``'s limit
    (:data:`ZIPFILE_MAX`) or would make the template exceed :data:`TEMPLATE_MAX` as JSON; then
    it comes from the S3 object the ``CodeS3Bucket``/``CodeS3Key`` parameters name.
    """
    source = lambda_source() if code is None else code
    if len(source.encode()) <= ZIPFILE_MAX:
        template = _Exporter(graph, design=design, version=version, code=source).template()
        if len(template_text(template, "json").encode()) <= TEMPLATE_MAX:
            return template
    return _Exporter(graph, design=design, version=version, code=None).template()


class _Exporter:
    def __init__(
        self, graph: ResourceGraph, *, design: str, version: int | None, code: str | None
    ) -> None:
        self.graph = graph
        self.design = design
        self.version = version
        self.code = code
        vpc = next(iter(graph.of_type("AWS::EC2::VPC")), None)
        self.region = vpc.meta.get("region", "") if vpc else ""
        #: Nodes that are not resources of the template: a parameter stands for their Ref.
        self.replaced = {
            node.logical_id: node
            for node in graph.of_type("AWS::CertificateManager::Certificate")
            if node.meta.get("imported")
        }
        self.parameters: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, list[str]] = {}
        self.labels: dict[str, str] = {}
        self.conditions: dict[str, Any] = {}
        self.tag_parameters: dict[str, str] = {}  # tag key -> parameter
        self.differences = dict(DIFFERENCES)

    # -- the template ----------------------------------------------------------------------

    def template(self) -> dict[str, Any]:
        resources = {
            node.logical_id: self.resource(node)
            for node in self.graph.topological_order()
            if node.logical_id not in self.replaced
        }
        self.add_depends_on(resources)
        if self.replaced:
            self.differences["Certificate"] = _CERTIFICATE_DIFFERENCE
        groups = sorted(self.groups.items(), key=lambda item: PARAMETER_GROUPS.index(item[0]))
        order = [name for _, names in groups for name in names]
        template: dict[str, Any] = {
            "AWSTemplateFormatVersion": TEMPLATE_FORMAT_VERSION,
            "Description": self.description(),
            "Metadata": {
                "Gantry": {
                    "Design": self.design,
                    # Only a saved version has a number (a spec file has none, and null is not
                    # a value CloudFormation's Metadata takes).
                    **({"Version": self.version} if self.version is not None else {}),
                    "PlannedRegion": self.region,
                    "ExportedBy": "Gantry",
                    "DiffersFromGantry": self.differences,
                },
                "AWS::CloudFormation::Interface": {
                    "ParameterGroups": [
                        {"Label": {"default": label}, "Parameters": names}
                        for label, names in groups
                    ],
                    "ParameterLabels": {name: {"default": self.labels[name]} for name in order},
                },
            },
            "Parameters": {name: self.parameters[name] for name in order},
        }
        if self.conditions:
            template["Conditions"] = self.conditions
        template["Resources"] = resources
        template["Outputs"] = self.outputs(resources)
        if not self.parameters:
            del template["Parameters"]
            del template["Metadata"]["AWS::CloudFormation::Interface"]
        return template

    def description(self) -> str:
        version = f"version {self.version}" if self.version is not None else "an unsaved spec"
        vpc = next(iter(self.graph.of_type("AWS::EC2::VPC")), None)
        shape = ""
        if vpc is not None:
            nat, kind = vpc.meta.get("nat"), vpc.meta.get("api_kind")
            shape = f" (VPC {vpc.properties.get('CidrBlock')}, nat {nat}, api {kind})"
        text = (
            f"Gantry design {self.design}, {version}: a Lambda function calling a private API "
            f"in a VPC{shape}. Exported by Gantry."
        )
        return text[:DESCRIPTION_MAX]

    def parameter(self, name: str, group: str, label: str, **fields: Any) -> dict[str, str]:
        if name not in self.parameters:
            self.parameters[name] = fields
            self.groups.setdefault(group, []).append(name)
            self.labels[name] = label
        return {"Ref": name}

    # -- resources -------------------------------------------------------------------------

    def resource(self, node: ResourceNode) -> dict[str, Any]:
        props = self.value(node.properties)
        metadata: dict[str, Any] = {}
        name_property = GENERATED_NAMES.get(node.type)
        if name_property:
            props.pop(name_property, None)
        convert = getattr(self, "_" + node.type.replace("::", "_"), None)
        if convert is not None:
            note = convert(node, props)
            if note:
                metadata["Gantry"] = note
        self.parameterise_tags(props)
        resource: dict[str, Any] = {"Type": node.type}
        policy = DELETION_POLICIES.get(node.type)
        if policy:
            resource["DeletionPolicy"] = resource["UpdateReplacePolicy"] = policy
        skips = scanner_skips(node.type)
        if skips:
            metadata["checkov"] = {
                "skip": [{"id": check, "comment": reason} for check, reason in skips]
            }
        if metadata:
            resource["Metadata"] = metadata
        resource["Properties"] = props
        return resource

    def value(self, value: Any) -> Any:
        """A property value with every :class:`Ref` written as ``Ref``/``Fn::GetAtt``."""
        if isinstance(value, Ref):
            if value.logical_id in self.replaced:
                return self.certificate(self.replaced[value.logical_id])
            if value.attribute == "Id":
                return {"Ref": value.logical_id}
            return {"Fn::GetAtt": [value.logical_id, value.attribute]}
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def _AWS_EC2_Subnet(self, node: ResourceNode, props: dict[str, Any]) -> None:
        index, az = node.meta.get("index"), props.get("AvailabilityZone")
        if isinstance(index, int) and isinstance(az, str):
            props["AvailabilityZone"] = self.parameter(
                f"AvailabilityZone{index}",
                "Network",
                f"Availability Zone {index}",
                Type="AWS::EC2::AvailabilityZone::Name",
                Default=az,
                Description=f"Availability Zone of the design's subnets number {index} "
                f"(planned: {az}).",
            )

    def _AWS_EC2_SecurityGroup(self, node: ResourceNode, props: dict[str, Any]) -> str | None:
        if not node.meta.get("revoke_default_egress"):
            return None
        props["SecurityGroupEgress"] = [dict(LOOPBACK_EGRESS)]
        return (
            "The 127.0.0.1/32 egress rule removes AWS's default allow-all rule, as Gantry "
            "revokes it; see Metadata.Gantry.DiffersFromGantry.DefaultEgress."
        )

    def _AWS_EC2_VPCEndpoint(self, node: ResourceNode, props: dict[str, Any]) -> None:
        service = props.get("ServiceName")
        marker = f".{self.region}."
        if self.region and isinstance(service, str) and marker in service:
            props["ServiceName"] = {"Fn::Sub": service.replace(marker, ".${AWS::Region}.")}

    def _AWS_IAM_Role(self, node: ResourceNode, props: dict[str, Any]) -> None:
        arns = props.get("ManagedPolicyArns")
        if isinstance(arns, list):
            props["ManagedPolicyArns"] = [
                {"Fn::Sub": arn.replace("arn:aws:", "arn:${AWS::Partition}:", 1)}
                if isinstance(arn, str) and arn.startswith("arn:aws:")
                else arn
                for arn in arns
            ]

    def _AWS_IAM_Policy(self, node: ResourceNode, props: dict[str, Any]) -> None:
        # Each statement's Resource as a list: IAM reads one ARN and a one-item list alike, and
        # the emulator's CloudFormation (moto), which has no Secrets Manager and so resolves a
        # Ref to the secret to nothing, then still creates the policy: the template deploys on
        # the emulator as it is exported.
        for statement in props.get("PolicyDocument", {}).get("Statement", []):
            resource = statement.get("Resource")
            if resource is not None and not isinstance(resource, list):
                statement["Resource"] = [resource]

    def _AWS_EC2_Instance(self, node: ResourceNode, props: dict[str, Any]) -> str:
        props["ImageId"] = self.image(props.get("ImageId"))
        props["UserData"] = self.user_data(node, anonymous_liveness=False)
        return (
            "UserData is the script Gantry's deployer sends (workload/userdata): it installs "
            "the HTTPS health API and reads the API credential from the secret at boot."
        )

    def _AWS_EC2_LaunchTemplate(self, node: ResourceNode, props: dict[str, Any]) -> str:
        data = props.get("LaunchTemplateData", {})
        data["ImageId"] = self.image(data.get("ImageId"))
        # Behind the ALB the health checker cannot present the credential.
        data["UserData"] = self.user_data(node, anonymous_liveness=True)
        return (
            "UserData is the script Gantry's deployer sends (workload/userdata); behind the "
            "load balancer /health answers its health checker without the credential."
        )

    def _AWS_Lambda_Function(self, node: ResourceNode, props: dict[str, Any]) -> str:
        bucket = self.parameter(
            "CodeS3Bucket",
            "Function code",
            "Code bucket",
            Type="String",
            Description="S3 bucket of a zip holding the function as index.py; leave empty to "
            "use the code inline in this template."
            if self.code is not None
            else "S3 bucket of a zip holding the function as index.py "
            "(workload/lambda_src/handler.py renamed).",
            **({"Default": ""} if self.code is not None else {}),
        )
        key = self.parameter(
            "CodeS3Key",
            "Function code",
            "Code object key",
            Type="String",
            MinLength=1,
            Default=f"gantry/{self.design}/function.zip",
            Description="Key of that zip in the bucket.",
        )
        s3 = {"S3Bucket": bucket, "S3Key": key}
        if self.code is None:
            props["Code"] = s3
            return (
                "Code comes from the S3 object named by CodeS3Bucket and CodeS3Key: Gantry's "
                "handler is too large to be inline in this template."
            )
        self.conditions["InlineCode"] = {"Fn::Equals": [{"Ref": "CodeS3Bucket"}, ""]}
        props["Code"] = {"Fn::If": ["InlineCode", {"ZipFile": self.code}, s3]}
        return (
            "Code.ZipFile is Gantry's handler (workload/lambda_src/handler.py); CloudFormation "
            "writes it to index.py, as Gantry's own package does (Handler index.handler)."
        )

    def certificate(self, node: ResourceNode) -> dict[str, str]:
        """The parameter that stands for an imported certificate (see ``_CERTIFICATE_DIFFERENCE``)."""
        domain = node.properties.get("DomainName", "the load balancer's DNS name")
        return self.parameter(
            f"{node.logical_id}Arn",
            "Load balancer",
            "TLS certificate (ACM ARN)",
            Type="String",
            AllowedPattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$",
            ConstraintDescription="the ARN of a certificate in ACM, in the stack's region",
            Description=f"ACM certificate of the internal load balancer's HTTPS listener, for "
            f"{domain} (Gantry imports a self-signed one; import yours the same way).",
        )

    def image(self, image_id: Any) -> Any:
        if not (isinstance(image_id, str) and image_id.startswith(SSM_PREFIX)):
            return image_id
        return self.parameter(
            "ImageId",
            "API instances",
            "AMI (SSM parameter)",
            Type="AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            Default=image_id[len(SSM_PREFIX) :],
            Description="SSM parameter holding the API instances' AMI (default: the latest "
            "Amazon Linux 2023, as Gantry deploys).",
        )

    def user_data(self, node: ResourceNode, *, anonymous_liveness: bool) -> dict[str, Any]:
        secret = node.meta.get("credential_from")
        port = node.meta.get("api_port")
        if not isinstance(secret, str) or not isinstance(port, int):
            raise ValueError(
                f"{node.logical_id} needs meta credential_from and api_port for its user data"
            )
        script = user_data_for_sub(
            secret_variable=secret, api_port=port, anonymous_liveness=anonymous_liveness
        )
        return {"Fn::Base64": {"Fn::Sub": script}}

    def parameterise_tags(self, value: Any) -> None:
        """Every design tag's value, wherever a tag list is, becomes its parameter."""
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "Tags" and isinstance(item, list):
                    for tag in item:
                        self.tag(tag)
                else:
                    self.parameterise_tags(item)
        elif isinstance(value, list):
            for item in value:
                self.parameterise_tags(item)

    def tag(self, tag: Any) -> None:
        if not isinstance(tag, dict) or tag.get("Key") == "Name":
            return
        key, value = tag.get("Key"), tag.get("Value")
        if not isinstance(key, str) or not isinstance(value, str):
            return
        name = self.tag_parameters.get(key)
        if name is None:
            name = f"TagValue{len(self.tag_parameters) + 1}"
            self.tag_parameters[key] = name
            self.parameter(
                name,
                "Tags",
                f"Tag {key}",
                Type="String",
                Default=value,
                Description=f'Value of the tag "{key}" on every resource.',
            )
        if self.parameters[name]["Default"] == value:
            tag["Value"] = {"Ref": name}

    # -- ordering --------------------------------------------------------------------------

    def add_depends_on(self, resources: dict[str, dict[str, Any]]) -> None:
        """``DependsOn`` = the graph's edges that no reference shows, directly or through
        other resources (the transitive reduction of the graph's order, less the references)."""
        referenced = {
            lid: {r for r in references(res.get("Properties", {})) if r in resources}
            for lid, res in resources.items()
        }
        ordered = {lid: self.effective_dependencies(lid, resources) for lid in resources}
        edges = {lid: referenced[lid] | set(ordered[lid]) for lid in resources}
        reach: dict[str, set[str]] = {}

        def reachable(lid: str) -> set[str]:
            if lid not in reach:
                found: set[str] = set()
                for dep in edges[lid]:
                    found.add(dep)
                    found |= reachable(dep)
                reach[lid] = found
            return reach[lid]

        for lid, resource in resources.items():
            explicit = [
                dep
                for dep in ordered[lid]
                if dep not in referenced[lid]
                and not any(dep in reachable(other) for other in edges[lid] if other != dep)
            ]
            if explicit:
                resource["DependsOn"] = explicit
                # Keep the usual key order: Type, DependsOn, Metadata, Properties.
                for key in ("Metadata", "Properties"):
                    if key in resource:
                        resource[key] = resource.pop(key)

    def effective_dependencies(self, lid: str, resources: dict[str, Any]) -> list[str]:
        """The node's references and :meth:`~designer.graph.ResourceNode.order_after` (a held
        resource, which CloudFormation cannot hold, after what the deployer releases it after),
        a node left out of the template replaced by its own."""
        found: list[str] = []
        node = self.graph[lid]
        for dep in [*node.references(), *node.order_after()]:
            if dep in resources:
                if dep not in found:
                    found.append(dep)
            elif dep in self.graph:
                for inner in self.effective_dependencies(dep, resources):
                    if inner not in found and inner != lid:
                        found.append(inner)
        return found

    # -- outputs ---------------------------------------------------------------------------

    def outputs(self, resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        for vpc in self.graph.of_type("AWS::EC2::VPC"):
            outputs["VpcId"] = {"Description": "The VPC", "Value": {"Ref": vpc.logical_id}}
        for function in self.graph.of_type("AWS::Lambda::Function"):
            variables = function.properties.get("Environment", {}).get("Variables", {})
            host, port = variables.get("API_HOST"), variables.get("API_PORT")
            if isinstance(host, Ref) and port:
                target = host.logical_id
                if host.attribute != "Id":
                    target += "." + host.attribute
                outputs["ApiUrl"] = {
                    "Description": "The private API's address (reachable only from the "
                    "function's security group)",
                    "Value": {"Fn::Sub": "https://${" + target + "}:" + str(port) + "/"},
                }
            outputs["FunctionName"] = {
                "Description": "The function that calls the API",
                "Value": {"Ref": function.logical_id},
            }
            outputs["FunctionArn"] = {
                "Description": "ARN of the function that calls the API",
                "Value": {"Fn::GetAtt": [function.logical_id, "Arn"]},
            }
        for secret in self.graph.of_type("AWS::SecretsManager::Secret"):
            outputs["SecretArn"] = {
                "Description": "ARN of the secret holding the API credential",
                "Value": {"Ref": secret.logical_id},
            }
        for group in self.graph.of_type("AWS::EC2::SecurityGroup"):
            label = group.meta.get("label", group.logical_id)
            outputs[f"{group.logical_id}Id"] = {
                "Description": f"{label}: {resources[group.logical_id]['Properties'].get('GroupDescription', '')}",
                "Value": {"Ref": group.logical_id},
            }
        return outputs


def references(value: Any) -> Iterator[str]:
    """Every logical id a template value refers to: ``Ref``, ``Fn::GetAtt`` and the variables
    of ``Fn::Sub`` (pseudo parameters such as ``AWS::Region`` included; callers filter)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt" and isinstance(item, list) and item:
                yield str(item[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                if isinstance(text, str):
                    for match in _SUB_VARIABLE.finditer(text):
                        yield match.group(1).split(".")[0]
                if isinstance(item, list) and len(item) > 1:
                    yield from references(item[1])
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)
