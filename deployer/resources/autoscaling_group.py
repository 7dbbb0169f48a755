"""``AWS::AutoScaling::AutoScalingGroup``: the API instances behind the ALB (``api_kind: alb``).

Physical id: the group *name* (CloudFormation's ``Ref``), ``<deployment>-api-auto-scaling-group``
so two deployments never collide. CreateAutoScalingGroup has no idempotency token; the name is
unique per region, so a retried create after a lost response fails with ``AlreadyExists``
rather than making a second group, and find() picks the first one up.

Tags: the plan keeps ``PropagateAtLaunch: false`` on the group's tags, deliberately: the launch
template tags the instances (with the gantry tags naming this group), and a propagated tag would
override the template's tag of the same key (``Name``).

Ready: at least ``MinSize`` instances ``InService``. While short of that, the reason names the
latest failed launch (a bad image, an instance profile IAM has not propagated yet...), because
the group keeps retrying on its own and the reason is all the user would otherwise not see.

Delete: ``ForceDelete`` terminates the instances with the group; the group stays visible with
``Status: Delete in progress`` until they are gone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import node_tags
from deployer.resources._ec2 import error_code
from deployer.resources.base import (
    AwsContext,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

NAME_MAX = 255
DELETING = "Delete in progress"
#: CloudFormation properties passed to CreateAutoScalingGroup unchanged.
PASSTHROUGH = (
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "TargetGroupARNs",
    "HealthCheckType",
    "HealthCheckGracePeriod",
    "DefaultCooldown",
    "CapacityRebalance",
)


def _groups(ctx: AwsContext, **kwargs: Any) -> list[dict[str, Any]]:
    paginator = ctx.client("autoscaling").get_paginator("describe_auto_scaling_groups")
    return [g for page in paginator.paginate(**kwargs) for g in page["AutoScalingGroups"]]


def _describe(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    groups = _groups(ctx, AutoScalingGroupNames=[name])
    return groups[0] if groups else None


def _is_profile_propagation(exc: ClientError) -> bool:
    """CreateAutoScalingGroup validates the launch template: an instance profile created seconds
    ago gives ``ValidationError`` "... Invalid IamInstanceProfile ..." until IAM propagates it."""
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return error_code(exc) == "ValidationError" and "iaminstanceprofile" in message


def _latest_failed_launch(ctx: AwsContext, name: str) -> str | None:
    """The status message of the group's latest activity if it failed, else None."""
    try:
        activities = ctx.client("autoscaling").describe_scaling_activities(
            AutoScalingGroupName=name, MaxRecords=1
        )["Activities"]
    except ClientError:
        return None  # only an explanation: never let it hide the pending state itself
    if activities and activities[0].get("StatusCode") == "Failed":
        return activities[0].get("StatusMessage") or activities[0].get("Description")
    return None


class AutoScalingGroupHandler:
    type: ClassVar[str] = "AWS::AutoScaling::AutoScalingGroup"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        # AWS filters by tag server side; the tags are checked again on every group in case an
        # endpoint ignores a filter. The group name is this node's physical name, so a lookup
        # by name is the fallback for an endpoint without tag filters (it answers an error).
        try:
            groups = _groups(
                ctx,
                Filters=ctx.tag_filters(node),
            )
        except ClientError as exc:
            if error_code(exc) != "ValidationError":
                raise
            groups = _groups(ctx, AutoScalingGroupNames=[ctx.physical_name(node, NAME_MAX)])
        return [
            g["AutoScalingGroupName"]
            for g in groups
            if ctx.owns(node, g.get("Tags")) and g.get("Status") != DELETING
        ]

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        name = ctx.physical_name(node, NAME_MAX)
        propagate = {t["Key"]: bool(t.get("PropagateAtLaunch")) for t in props.get("Tags") or []}
        tags = [
            {
                "Key": key,
                "Value": value,
                "PropagateAtLaunch": propagate.get(key, False),
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
            }
            for key, value in node_tags(ctx, node, props).items()
        ]
        zones = props.get("VPCZoneIdentifier") or []
        kwargs = {key: props[key] for key in PASSTHROUGH if key in props}
        template = props["LaunchTemplate"]
        kwargs["LaunchTemplate"] = {
            "LaunchTemplateId": template["LaunchTemplateId"],
            "Version": str(template.get("Version", "$Latest")),
        }
        try:
            ctx.client("autoscaling").create_auto_scaling_group(
                AutoScalingGroupName=name,
                VPCZoneIdentifier=zones if isinstance(zones, str) else ",".join(zones),
                Tags=tags,
                **kwargs,
            )
        except ClientError as exc:
            if _is_profile_propagation(exc):
                raise RetryLater(
                    "the instance profile is not yet usable by EC2 (IAM propagation takes ~10 s)"
                ) from exc
            raise
        return name

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        group = _describe(ctx, physical_id)
        if group is None:
            return Pending(f"waiting for AWS to show the new Auto Scaling group {physical_id}")
        if group.get("Status") == DELETING:
            return Failed(f"the Auto Scaling group {physical_id} is being deleted")
        wanted = int(group.get("MinSize", 1))
        in_service = sum(
            1 for i in group.get("Instances", []) if i["LifecycleState"] == "InService"
        )
        if in_service >= wanted:
            return Ready({})
        plural = "s" if wanted > 1 else ""
        reason = f"waiting for {wanted} API instance{plural} to be InService ({in_service} so far)"
        failure = _latest_failed_launch(ctx, physical_id)
        if failure:
            reason += f"; the last launch failed: {failure}"
        return Pending(reason)

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("autoscaling").delete_auto_scaling_group(
                AutoScalingGroupName=physical_id, ForceDelete=True
            )
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", "")).lower()
            code = error_code(exc)
            if code == "ValidationError" and "not found" in message:
                return
            if code in {"ScalingActivityInProgress", "ResourceInUse"}:
                raise RetryLater(
                    f"the Auto Scaling group is busy ({code}); it accepts deletion when the "
                    "current scaling activity ends"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        group = _describe(ctx, physical_id)
        if group is None:
            return Gone()
        count = len(group.get("Instances", []))
        if count:
            plural = "s" if count > 1 else ""
            return Pending(f"Auto Scaling group is terminating {count} instance{plural}")
        return Pending("Auto Scaling group is being deleted")


HANDLER = AutoScalingGroupHandler()
