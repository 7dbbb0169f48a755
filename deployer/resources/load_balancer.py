"""``AWS::ElasticLoadBalancingV2::LoadBalancer``: the internal ALB in front of the API instances.

Physical id: the load balancer ARN (CloudFormation's ``Ref``). Attribute: ``DNSName`` (the
Lambda's ``API_HOST``; ``internal-<name>-<id>.<region>.elb.amazonaws.com``, which the imported
certificate's ``*.<region>.elb.amazonaws.com`` matches).

Name: ``<deployment>-api-load-balancer`` shortened to ELBv2's 32 characters. Names are unique per
region, so CreateLoadBalancer (no idempotency token) retried after a lost response returns the
same load balancer instead of a second one; find() still checks the gantry tags.

On real AWS a new ALB is ``provisioning`` for 2-3 minutes before ``active``. The plan's
``LoadBalancerAttributes`` (dropping invalid header fields) are set by check_ready once it is
active, with ModifyLoadBalancerAttributes, in the same pass.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import elbv2_tagged, node_tags, tag_list
from deployer.resources._ec2 import error_code
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready
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


def _apply_attributes(ctx: AwsContext, node: ResourceNode, arn: str) -> None:
    """Set the plan's ``LoadBalancerAttributes`` that the load balancer does not show yet
    (CreateLoadBalancer takes none). ModifyLoadBalancerAttributes takes effect when it answers,
    and this runs on the pass that finds the load balancer active, so one found by its tags
    after a lost create gets them too."""
    wanted = {a["Key"]: a["Value"] for a in node.properties.get("LoadBalancerAttributes") or []}
    if not wanted:
        return
    elbv2 = ctx.client("elbv2")
    current = {
        a["Key"]: a.get("Value")
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    }
    changes = [{"Key": k, "Value": v} for k, v in wanted.items() if current.get(k) != v]
    if changes:
        elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=changes)


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
            return Pending("load balancer is provisioning (~2-3 minutes)")
        if code == "failed":
            reason = state.get("Reason") or "no reason given"
            return Failed(f"the load balancer could not be provisioned: {reason}")
        _apply_attributes(ctx, node, physical_id)
        # active, or active_impaired (serving, with an AZ impaired): usable either way.
        return Ready({"DNSName": lb["DNSName"]})

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
