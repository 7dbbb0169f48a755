"""What this installation has in an AWS account: every resource carrying its
``gantry:installation`` tag, and the untaggable pieces hanging on them.

``manage.py orphans`` and the admin use it to find what no live deployment owns (a database
restored from an older backup, a deleted row, a crash before a row was written), the leak
Terraform leaves after an interrupted apply. Each listing is the service's own tag-filtered
describe where it has one, else a list of the resources whose names Gantry generates (they end
with a deployment's short identity) and a look at their tags; every item's tags are checked
here whatever the service's filters did.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from deployer.resources._ec2 import composite_id, describe_all
from deployer.resources.base import (
    TAG_DEPLOYMENT,
    TAG_INSTALLATION,
    TAG_LOGICAL_ID,
    AwsContext,
    tag_map,
)

#: Names Gantry generates end with a deployment's short identity (8 hex characters).
_GENERATED = re.compile(r"-[0-9a-f]{8}$")


@dataclass(frozen=True)
class Tagged:
    """One resource of this installation: its CloudFormation type, the physical id its
    handler deletes, a name for people, and its tags."""

    type: str
    physical_id: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    region: str = ""
    #: For an untaggable piece (an attachment, an association): the resource it hangs on.
    parent: str = ""

    @property
    def deployment(self) -> str:
        return self.tags.get(TAG_DEPLOYMENT, "")

    @property
    def logical_id(self) -> str:
        return self.tags.get(TAG_LOGICAL_ID, "")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.physical_id,
            "name": self.name,
            "region": self.region,
            "deployment": self.deployment,
            "logical_id": self.logical_id,
            "tags": dict(self.tags),
        }


Lister = Callable[[AwsContext, str], Iterator[Tagged]]


def _ours(tags: Any, installation: str) -> dict[str, str] | None:
    found = tag_map(tags)
    return found if found.get(TAG_INSTALLATION) == installation else None


def _ec2(type_name: str, operation: str, key: str, id_key: str, dead: tuple[str, ...] = ()):
    """An EC2 type listed by its Describe call filtered on the installation tag (moto ignores
    the filter for some types: the tags are checked again)."""

    def lister(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
        items = describe_all(
            ctx,
            operation,
            key,
            Filters=[{"Name": f"tag:{TAG_INSTALLATION}", "Values": [installation]}],
        )
        for item in items:
            tags = _ours(item.get("Tags"), installation)
            if tags is None or str(item.get("State") or "").lower() in dead:
                continue
            yield Tagged(type_name, item[id_key], tags.get("Name", item[id_key]), tags)

    return lister


def _security_group_rules(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    rules = describe_all(
        ctx,
        "describe_security_group_rules",
        "SecurityGroupRules",
        Filters=[{"Name": f"tag:{TAG_INSTALLATION}", "Values": [installation]}],
    )
    for rule in rules:
        tags = _ours(rule.get("Tags"), installation)
        if tags is None:
            continue
        kind = "Egress" if rule.get("IsEgress") else "Ingress"
        yield Tagged(
            f"AWS::EC2::SecurityGroup{kind}",
            rule["SecurityGroupRuleId"],
            f"{kind.lower()} rule of {rule.get('GroupId')}",
            tags,
            parent=rule.get("GroupId", ""),
        )


def _instances(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    reservations = describe_all(
        ctx,
        "describe_instances",
        "Reservations",
        Filters=[{"Name": f"tag:{TAG_INSTALLATION}", "Values": [installation]}],
    )
    for reservation in reservations:
        for instance in reservation.get("Instances") or []:
            tags = _ours(instance.get("Tags"), installation)
            state = (instance.get("State") or {}).get("Name")
            if tags is not None and state not in ("shutting-down", "terminated"):
                instance_id = instance["InstanceId"]
                yield Tagged("AWS::EC2::Instance", instance_id, tags.get("Name", instance_id), tags)


def _roles(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    iam = ctx.client("iam")
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            if not _GENERATED.search(name):
                continue
            tags = _ours(iam.list_role_tags(RoleName=name)["Tags"], installation)
            if tags is not None:
                yield Tagged("AWS::IAM::Role", name, name, tags)


def _instance_profiles(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    iam = ctx.client("iam")
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for profile in page["InstanceProfiles"]:
            name = profile["InstanceProfileName"]
            if not _GENERATED.search(name):
                continue
            # GetInstanceProfile answers with the tags (ListInstanceProfiles does not).
            described = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            tags = _ours(described.get("Tags"), installation)
            if tags is not None:
                yield Tagged("AWS::IAM::InstanceProfile", name, name, tags)


def _functions(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    lam = ctx.client("lambda")
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            if not _GENERATED.search(name):
                continue
            tags = _ours(lam.list_tags(Resource=function["FunctionArn"]).get("Tags"), installation)
            if tags is not None:
                yield Tagged("AWS::Lambda::Function", name, name, tags)


def _log_groups(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    logs = ctx.client("logs")
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            name = group["logGroupName"]
            if not _GENERATED.search(name):
                continue
            arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
            tags = _ours(logs.list_tags_for_resource(resourceArn=arn).get("tags"), installation)
            if tags is not None:
                yield Tagged("AWS::Logs::LogGroup", name, name, tags)


def _secrets(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    paginator = ctx.client("secretsmanager").get_paginator("list_secrets")
    pages = paginator.paginate(
        Filters=[
            {"Key": "tag-key", "Values": [TAG_INSTALLATION]},
            {"Key": "tag-value", "Values": [installation]},
        ]
    )
    for page in pages:
        for secret in page["SecretList"]:
            tags = _ours(secret.get("Tags"), installation)
            if tags is not None and not secret.get("DeletedDate"):
                yield Tagged("AWS::SecretsManager::Secret", secret["ARN"], secret["Name"], tags)


def _elbv2(type_name: str, operation: str, key: str, arn_key: str, name_key: str) -> Lister:
    def lister(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
        elbv2 = ctx.client("elbv2")
        items = [
            item
            for page in elbv2.get_paginator(operation).paginate()
            for item in page[key]
            if _GENERATED.search(item[name_key])
        ]
        for start in range(0, len(items), 20):  # DescribeTags takes 20 ARNs at a time
            batch = {item[arn_key]: item for item in items[start : start + 20]}
            described = elbv2.describe_tags(ResourceArns=list(batch))["TagDescriptions"]
            for description in described:
                tags = _ours(description.get("Tags"), installation)
                if tags is not None:
                    arn = description["ResourceArn"]
                    yield Tagged(type_name, arn, batch[arn][name_key], tags)

    return lister


def _auto_scaling_groups(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    paginator = ctx.client("autoscaling").get_paginator("describe_auto_scaling_groups")
    for page in paginator.paginate(
        Filters=[{"Name": f"tag:{TAG_INSTALLATION}", "Values": [installation]}]
    ):
        for group in page["AutoScalingGroups"]:
            tags = _ours(group.get("Tags"), installation)
            if tags is not None and group.get("Status") != "Delete in progress":
                name = group["AutoScalingGroupName"]
                yield Tagged("AWS::AutoScaling::AutoScalingGroup", name, name, tags)


def _certificates(ctx: AwsContext, installation: str) -> Iterator[Tagged]:
    acm = ctx.client("acm")
    for page in acm.get_paginator("list_certificates").paginate():
        for summary in page["CertificateSummaryList"]:
            arn = summary["CertificateArn"]
            tags = _ours(
                acm.list_tags_for_certificate(CertificateArn=arn).get("Tags"), installation
            )
            if tags is not None:
                name = summary.get("DomainName") or arn
                yield Tagged("AWS::CertificateManager::Certificate", arn, name, tags)


#: Every taggable type Gantry creates, and how to list this installation's resources of it.
LISTERS: tuple[Lister, ...] = (
    _ec2("AWS::EC2::VPC", "describe_vpcs", "Vpcs", "VpcId"),
    _ec2("AWS::EC2::Subnet", "describe_subnets", "Subnets", "SubnetId"),
    _ec2(
        "AWS::EC2::InternetGateway",
        "describe_internet_gateways",
        "InternetGateways",
        "InternetGatewayId",
    ),
    _ec2("AWS::EC2::RouteTable", "describe_route_tables", "RouteTables", "RouteTableId"),
    _ec2("AWS::EC2::EIP", "describe_addresses", "Addresses", "AllocationId"),
    _ec2(
        "AWS::EC2::NatGateway",
        "describe_nat_gateways",
        "NatGateways",
        "NatGatewayId",
        dead=("deleting", "deleted"),
    ),
    _ec2("AWS::EC2::SecurityGroup", "describe_security_groups", "SecurityGroups", "GroupId"),
    _security_group_rules,
    _ec2(
        "AWS::EC2::VPCEndpoint",
        "describe_vpc_endpoints",
        "VpcEndpoints",
        "VpcEndpointId",
        dead=("deleting", "deleted"),
    ),
    _instances,
    _ec2(
        "AWS::EC2::LaunchTemplate",
        "describe_launch_templates",
        "LaunchTemplates",
        "LaunchTemplateId",
    ),
    _roles,
    _instance_profiles,
    _functions,
    _log_groups,
    _secrets,
    _elbv2(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "describe_load_balancers",
        "LoadBalancers",
        "LoadBalancerArn",
        "LoadBalancerName",
    ),
    _elbv2(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "describe_target_groups",
        "TargetGroups",
        "TargetGroupArn",
        "TargetGroupName",
    ),
    _auto_scaling_groups,
    _certificates,
)


def _attachments(ctx: AwsContext, gateway: Tagged) -> Iterator[Tagged]:
    """The VPC attachment of an internet gateway (untaggable: AWS refuses to delete an
    attached gateway, so the attachment goes first)."""
    described = ctx.client("ec2").describe_internet_gateways(
        InternetGatewayIds=[gateway.physical_id]
    )["InternetGateways"]
    for item in described:
        for attachment in item.get("Attachments") or []:
            vpc = attachment.get("VpcId")
            if vpc and attachment.get("State") in ("available", "attached", "attaching"):
                yield Tagged(
                    "AWS::EC2::VPCGatewayAttachment",
                    composite_id(gateway.physical_id, vpc),
                    f"{gateway.physical_id} attached to {vpc}",
                    {**gateway.tags, TAG_LOGICAL_ID: f"{gateway.logical_id}Attachment"},
                    parent=gateway.physical_id,
                )


def _associations(ctx: AwsContext, table: Tagged) -> Iterator[Tagged]:
    """A route table's subnet associations (untaggable: a table with any is not deleted)."""
    described = ctx.client("ec2").describe_route_tables(RouteTableIds=[table.physical_id])[
        "RouteTables"
    ]
    for item in described:
        for association in item.get("Associations") or []:
            if association.get("Main") or not association.get("SubnetId"):
                continue
            association_id = association["RouteTableAssociationId"]
            yield Tagged(
                "AWS::EC2::SubnetRouteTableAssociation",
                association_id,
                f"{association['SubnetId']} in {table.physical_id}",
                {**table.tags, TAG_LOGICAL_ID: f"{table.logical_id}{association['SubnetId']}"},
                parent=table.physical_id,
            )


#: Untaggable pieces found inside a resource of this installation, per the parent's type.
CHILDREN: dict[str, Callable[[AwsContext, Tagged], Iterator[Tagged]]] = {
    "AWS::EC2::InternetGateway": _attachments,
    "AWS::EC2::RouteTable": _associations,
}


def installation_resources(ctx: AwsContext, installation: str) -> list[Tagged]:
    """Every resource in the context's account and region that carries ``installation``'s
    tag, in listing order."""
    return [
        _with_region(item, ctx.region) for lister in LISTERS for item in lister(ctx, installation)
    ]


def children_of(ctx: AwsContext, item: Tagged) -> list[Tagged]:
    """The untaggable pieces hanging on ``item`` that must go before it."""
    finder = CHILDREN.get(item.type)
    if finder is None:
        return []
    return [_with_region(child, ctx.region) for child in finder(ctx, item)]


def _with_region(item: Tagged, region: str) -> Tagged:
    return Tagged(item.type, item.physical_id, item.name, item.tags, region, item.parent)
