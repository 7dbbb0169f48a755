"""``AWS::ElasticLoadBalancingV2::TargetGroup``: the API instances the ALB forwards to over HTTPS,
health-checked on ``/health``.

Physical id: the target group ARN (CloudFormation's ``Ref``). Ready as soon as it exists (a
target group has no provisioning state). Name: ``<deployment>-api-target-group`` shortened to
32 characters; CreateTargetGroup with the same name and settings returns the existing group, so
a retry after a lost response makes no duplicate.

Delete: while a listener still forwards to it AWS answers ``ResourceInUse``; that is transient
during a destroy (the listener is being deleted), so it becomes ``RetryLater``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import elbv2_tagged, node_tags, tag_list
from deployer.resources._ec2 import error_code
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready, RetryLater
from designer.graph import ResourceNode

NAME_MAX = 32
PASSTHROUGH = (
    "Protocol",
    "ProtocolVersion",
    "Port",
    "VpcId",
    "TargetType",
    "HealthCheckEnabled",
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
    "IpAddressType",
)


def _exists(ctx: AwsContext, arn: str) -> bool:
    try:
        groups = ctx.client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
    except ClientError as exc:
        if error_code(exc) == "TargetGroupNotFound":
            return False
        raise
    return bool(groups)


class TargetGroupHandler:
    type: ClassVar[str] = "AWS::ElasticLoadBalancingV2::TargetGroup"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        paginator = ctx.client("elbv2").get_paginator("describe_target_groups")
        arns = [
            tg["TargetGroupArn"]
            for page in paginator.paginate()
            for tg in page["TargetGroups"]
            # Only this node's VPC can hold its target group: fewer tag lookups.
            if not props.get("VpcId") or tg.get("VpcId") == props["VpcId"]
        ]
        return elbv2_tagged(ctx, node, arns)

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        kwargs = {key: props[key] for key in PASSTHROUGH if key in props}
        if "HealthCheckPort" in kwargs:
            kwargs["HealthCheckPort"] = str(kwargs["HealthCheckPort"])
        group = ctx.client("elbv2").create_target_group(
            Name=ctx.physical_name(node, NAME_MAX),
            Tags=tag_list(node_tags(ctx, node, props)),
            **kwargs,
        )["TargetGroups"][0]
        return group["TargetGroupArn"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        if not _exists(ctx, physical_id):
            return Pending("waiting for AWS to show the new target group")
        return Ready({})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("elbv2").delete_target_group(TargetGroupArn=physical_id)
        except ClientError as exc:
            code = error_code(exc)
            if code == "TargetGroupNotFound":
                return
            if code == "ResourceInUse":
                raise RetryLater(
                    "the target group is still used by the load balancer's listener, which is "
                    "being deleted"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if not _exists(ctx, physical_id):
            return Gone()
        return Pending("target group is being deleted")


HANDLER = TargetGroupHandler()
