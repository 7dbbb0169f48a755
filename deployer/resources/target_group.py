"""``AWS::ElasticLoadBalancingV2::TargetGroup``: the API instances the ALB forwards to over HTTPS,
health-checked on ``/health``.

Physical id: the target group ARN (CloudFormation's ``Ref``). Ready as soon as it exists (a
target group has no provisioning state). Name: ``<deployment>-api-target-group`` shortened to
32 characters; CreateTargetGroup with the same name and settings returns the existing group, so
a retry after a lost response makes no duplicate.

Delete: while a listener still forwards to it AWS answers ``ResourceInUse``; that is transient
during a destroy (the listener is being deleted), so it becomes ``RetryLater``.

Updates in place: the health check settings and matcher (ModifyTargetGroup) and the tags. The
port, protocol, VPC, target type and protocol version are create-only (a new API port is a new
target group, which the listener and the Auto Scaling group then move to).
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import (
    differing,
    elbv2_tagged,
    elbv2_tags,
    node_tags,
    project,
    same,
    set_elbv2_tags,
    tag_list,
)
from deployer.resources._ec2 import error_code
from deployer.resources.base import (
    AwsContext,
    CannotUpdate,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

NAME_MAX = 32


#: What ModifyTargetGroup changes (same names in CloudFormation and the API).
HEALTH_CHECK = (
    "HealthCheckEnabled",
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
)
#: Set when the target group is made, never changed.
CREATE_ONLY = ("Protocol", "ProtocolVersion", "Port", "VpcId", "TargetType", "IpAddressType")
#: CloudFormation properties passed to CreateTargetGroup unchanged.
PASSTHROUGH = (*CREATE_ONLY, *HEALTH_CHECK)


def _describe(ctx: AwsContext, arn: str) -> dict[str, Any] | None:
    try:
        groups = ctx.client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
    except ClientError as exc:
        if error_code(exc) == "TargetGroupNotFound":
            return None
        raise
    return groups[0] if groups else None


def _exists(ctx: AwsContext, arn: str) -> bool:
    return _describe(ctx, arn) is not None


def _live(group: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    """A target group under CloudFormation names, ``Matcher`` in the plan's shape."""
    out = {key: group[key] for key in (*CREATE_ONLY, *HEALTH_CHECK) if key in group}
    out["Name"] = group["TargetGroupName"]
    if "Matcher" in out:
        out["Matcher"] = project(out["Matcher"], planned.get("Matcher"))
    return out


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

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        group = _describe(ctx, physical_id)
        if group is None:
            return None
        try:
            tags = elbv2_tags(ctx, physical_id)
        except ClientError as exc:
            if error_code(exc) == "TargetGroupNotFound":
                return None  # deleted since the describe
            raise
        return {**_live(group, node.properties), "Tags": tags}

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        group = _describe(ctx, physical_id)
        if group is None:
            raise CannotUpdate(f"the target group {physical_id} no longer exists")
        live = _live(group, after)
        for name in CREATE_ONLY:
            if name in after and name in live and not same(live[name], after[name]):
                raise CannotUpdate(
                    f"a target group's {name} cannot change ({live[name]} -> {after[name]}); "
                    "it is replaced by a new target group"
                )
        changes = differing(live, after, HEALTH_CHECK)
        if "HealthCheckPort" in changes:
            changes["HealthCheckPort"] = str(changes["HealthCheckPort"])
        if changes:
            ctx.client("elbv2").modify_target_group(TargetGroupArn=physical_id, **changes)
        set_elbv2_tags(ctx, physical_id, before, after)

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
