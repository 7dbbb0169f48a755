"""``AWS::ElasticLoadBalancingV2::LoadBalancer``: the internal ALB in front of the API instances.

Physical id: the load balancer ARN (CloudFormation's ``Ref``). Attribute: ``DNSName`` (the
Lambda's ``API_HOST``; ``internal-<name>-<id>.<region>.elb.amazonaws.com``, which the imported
certificate's ``*.<region>.elb.amazonaws.com`` matches).

Name: ``<deployment>-api-load-balancer`` shortened to ELBv2's 32 characters. Names are unique per
region, so CreateLoadBalancer (no idempotency token) retried after a lost response returns the
same load balancer instead of a second one; find() still checks the gantry tags.

On real AWS a new ALB is ``provisioning`` for 2-3 minutes before ``active``. CreateLoadBalancer
takes no attributes: create sets the plan's ``LoadBalancerAttributes`` (dropping invalid header
fields) with ModifyLoadBalancerAttributes right after it, which AWS accepts while the load
balancer provisions, and update does for one found by its tags after a lost create.

Updates in place: subnets (SetSubnets), security groups (SetSecurityGroups), the IP address
type, the attributes and the tags. The name, type and scheme are create-only: the change set
replaces the load balancer (a new DNS name) and update refuses them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import (
    elbv2_tagged,
    elbv2_tags,
    node_tags,
    same,
    set_elbv2_tags,
    tag_list,
)
from deployer.resources._ec2 import error_code
from deployer.resources.base import AwsContext, CannotUpdate, Failed, Gone, Pending, Ready
from designer.graph import ResourceNode

NAME_MAX = 32
PASSTHROUGH = ("Type", "Scheme", "IpAddressType", "Subnets", "SecurityGroups")


def _describe(ctx: AwsContext, arn: str) -> dict[str, Any] | None:
    try:
        found = ctx.client("elbv2").describe_load_balancers(LoadBalancerArns=[arn])
    except ClientError as exc:
        if error_code(exc) == "LoadBalancerNotFound":
            return None
        raise
    return found["LoadBalancers"][0] if found["LoadBalancers"] else None


def _attributes(items: Any) -> dict[str, str]:
    return {a["Key"]: str(a.get("Value")) for a in items or []}


def _set_attributes(ctx: AwsContext, arn: str, wanted: dict[str, str]) -> None:
    """ModifyLoadBalancerAttributes for ``wanted``; it takes effect when it answers."""
    if wanted:
        ctx.client("elbv2").modify_load_balancer_attributes(
            LoadBalancerArn=arn, Attributes=[{"Key": k, "Value": v} for k, v in wanted.items()]
        )


def _live(
    lb: dict[str, Any], attributes: dict[str, str], tags: list, planned: dict[str, Any]
) -> dict[str, Any]:
    """A load balancer under CloudFormation names: of its attributes those the plan sets
    (AWS reports twenty-odd, at their defaults)."""
    keys = list(_attributes(planned.get("LoadBalancerAttributes"))) or list(attributes)
    return {
        "Name": lb["LoadBalancerName"],
        "Type": lb.get("Type"),
        "Scheme": lb.get("Scheme"),
        "IpAddressType": lb.get("IpAddressType"),
        "Subnets": [zone["SubnetId"] for zone in lb.get("AvailabilityZones") or []],
        "SecurityGroups": list(lb.get("SecurityGroups") or []),
        "LoadBalancerAttributes": [
            {"Key": key, "Value": attributes[key]} for key in keys if key in attributes
        ],
        "Tags": tags,
    }


class LoadBalancerHandler:
    type: ClassVar[str] = "AWS::ElasticLoadBalancingV2::LoadBalancer"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        paginator = ctx.client("elbv2").get_paginator("describe_load_balancers")
        arns = [
            lb["LoadBalancerArn"] for page in paginator.paginate() for lb in page["LoadBalancers"]
        ]
        return elbv2_tagged(ctx, node, arns)

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        kwargs = {key: props[key] for key in PASSTHROUGH if key in props}
        lb = ctx.client("elbv2").create_load_balancer(
            Name=ctx.physical_name(node, NAME_MAX),
            Tags=tag_list(node_tags(ctx, node, props)),
            **kwargs,
        )["LoadBalancers"][0]
        _set_attributes(
            ctx, lb["LoadBalancerArn"], _attributes(props.get("LoadBalancerAttributes"))
        )
        return lb["LoadBalancerArn"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        lb = _describe(ctx, physical_id)
        if lb is None:
            return Pending("waiting for AWS to show the new load balancer")
        state = lb.get("State") or {}
        code = state.get("Code", "provisioning")
        if code == "provisioning":
            # Its DNS name is assigned at creation: what only needs the name need not wait.
            early = {"DNSName": lb["DNSName"]} if lb.get("DNSName") else {}
            return Pending("load balancer is provisioning (~2-3 minutes)", early)
        if code == "failed":
            reason = state.get("Reason") or "no reason given"
            return Failed(f"the load balancer could not be provisioned: {reason}")
        # active, or active_impaired (serving, with an AZ impaired): usable either way.
        return Ready({"DNSName": lb["DNSName"]})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        lb = _describe(ctx, physical_id)
        if lb is None:
            return None
        elbv2 = ctx.client("elbv2")
        try:
            attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=physical_id)
            tags = elbv2_tags(ctx, physical_id)
        except ClientError as exc:
            if error_code(exc) == "LoadBalancerNotFound":
                return None  # deleted since the describe
            raise
        return _live(lb, _attributes(attributes["Attributes"]), tags, node.properties)

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        lb = _describe(ctx, physical_id)
        if lb is None:
            raise CannotUpdate(f"the load balancer {physical_id} no longer exists")
        live = _live(lb, {}, [], after)
        for name in ("Type", "Scheme"):
            if name in after and live[name] != after[name]:
                raise CannotUpdate(
                    f"a load balancer's {name} cannot change ({live[name]} -> {after[name]}); "
                    "it is replaced by a new load balancer"
                )
        elbv2 = ctx.client("elbv2")
        if "Subnets" in after and not same(live["Subnets"], after["Subnets"]):
            elbv2.set_subnets(LoadBalancerArn=physical_id, Subnets=list(after["Subnets"]))
        if "SecurityGroups" in after and not same(live["SecurityGroups"], after["SecurityGroups"]):
            elbv2.set_security_groups(
                LoadBalancerArn=physical_id, SecurityGroups=list(after["SecurityGroups"])
            )
        if "IpAddressType" in after and live["IpAddressType"] != after["IpAddressType"]:
            elbv2.set_ip_address_type(
                LoadBalancerArn=physical_id, IpAddressType=after["IpAddressType"]
            )
        wanted = _attributes(after.get("LoadBalancerAttributes"))
        if wanted and (
            not before.get("LoadBalancerAttributes")
            or _attributes(before["LoadBalancerAttributes"]) != wanted
        ):
            # What Gantry believes is there differs (or is unknown): set what is not so.
            current = _attributes(
                elbv2.describe_load_balancer_attributes(LoadBalancerArn=physical_id)["Attributes"]
            )
            _set_attributes(
                ctx, physical_id, {k: v for k, v in wanted.items() if current.get(k) != v}
            )
        set_elbv2_tags(ctx, physical_id, before, after)

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("elbv2").delete_load_balancer(LoadBalancerArn=physical_id)
        except ClientError as exc:
            if error_code(exc) == "LoadBalancerNotFound":
                return
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _describe(ctx, physical_id) is None:
            return Gone()
        return Pending("load balancer is being deleted")


HANDLER = LoadBalancerHandler()
