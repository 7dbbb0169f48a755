"""``AWS::AutoScaling::AutoScalingGroup``: the API instances behind the ALB (``api_kind: alb``).

Physical id: the group *name* (CloudFormation's ``Ref``), ``<deployment>-api-auto-scaling-group``
so two deployments never collide. CreateAutoScalingGroup has no idempotency token; the name is
unique per region, so a retried create after a lost response fails with ``AlreadyExists``
rather than making a second group, and find() picks the first one up.

Tags: the plan keeps ``PropagateAtLaunch: false`` on the group's tags, deliberately: the launch
template tags the instances (with the gantry tags naming this group), and a propagated tag would
override the template's tag of the same key (``Name``).

Ready: at least ``MinSize`` instances ``InService`` and no instance refresh at work. While short
of that, the reason names the latest failed launch (a bad image, an instance profile IAM has not propagated yet...), because
the group keeps retrying on its own and the reason is all the user would otherwise not see.

Delete: ``ForceDelete`` terminates the instances with the group; the group stays visible with
``Status: Delete in progress`` until they are gone.

Updates: sizes, subnets, health checks and the launch template version (UpdateAutoScalingGroup),
target groups (Attach/DetachLoadBalancerTargetGroups) and tags (CreateOrUpdateTags /
DeleteTags), compared with the group as AWS describes it. A group launches new instances from
its new version but leaves the running ones as they are, so when any instance runs another
launch template or version than the group's, the update starts an *instance refresh*
(StartInstanceRefresh, with that version as its desired configuration, skip matching so only
the outdated instances go, and AWS's 90 % minimum healthy capacity: one instance at a time for
two or three), and ``check_ready`` is Pending until no outdated instance is left. A refresh
still working towards an earlier version (an update rolled back mid-way) is cancelled first;
one that failed or was cancelled fails the group with AWS's reason. moto has no instance
refreshes: the sandbox simulates them (``deployer/sandbox``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import differing, node_tags, project, same, tag_changes
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


#: What UpdateAutoScalingGroup changes under the CloudFormation names.
UPDATABLE = (
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "HealthCheckType",
    "HealthCheckGracePeriod",
    "DefaultCooldown",
    "CapacityRebalance",
)
#: An instance refresh still at work, and the ends that leave outdated instances behind.
REFRESHING = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
REFRESH_FAILED = frozenset({"Failed", "Cancelled", "RollbackFailed", "RollbackSuccessful"})
#: Only the instances that do not run the desired version are replaced, keeping AWS's default
#: 90 % of the desired capacity healthy (it replaces at least one instance at a time).
REFRESH_PREFERENCES = {"SkipMatching": True, "MinHealthyPercentage": 90}
#: Instances on their way out are not counted as outdated.
LEAVING = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated", "Detaching")
#: AttachLoadBalancerTargetGroups takes at most 10 target groups per call.
TARGET_GROUP_BATCH = 10


def _template_of(props: dict[str, Any]) -> dict[str, str] | None:
    """The launch template and version ``props`` name, as the group reports it."""
    template = props.get("LaunchTemplate")
    if not template:
        return None
    return {
        "LaunchTemplateId": template["LaunchTemplateId"],
        "Version": str(template.get("Version", "$Latest")),
    }


def _zones(value: Any) -> list[str]:
    if isinstance(value, str):
        return [zone for zone in value.split(",") if zone]
    return list(value or [])


def _outdated(group: dict[str, Any], target: dict[str, str] | None) -> list[str]:
    """The instances that do not run ``target`` (a launch template and version)."""
    if target is None:
        return []
    return [
        i["InstanceId"]
        for i in group.get("Instances") or []
        if i.get("LifecycleState") not in LEAVING
        and project(i.get("LaunchTemplate") or {}, target) != target
    ]


def _refresh_target(refresh: dict[str, Any], group_target: dict[str, str]) -> dict[str, str]:
    """The launch template and version a refresh replaces instances with: its desired
    configuration, else (a refresh started without one) the group's own."""
    template = (refresh.get("DesiredConfiguration") or {}).get("LaunchTemplate")
    if not template:
        return group_target
    return project(template, {"LaunchTemplateId": "", "Version": ""})


def _latest_refresh(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    refreshes = ctx.client("autoscaling").describe_instance_refreshes(
        AutoScalingGroupName=name, MaxRecords=1
    )["InstanceRefreshes"]
    return refreshes[0] if refreshes else None


def _live(group: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    """DescribeAutoScalingGroups' answer under CloudFormation names, in the plan's shapes."""
    out: dict[str, Any] = {
        "AutoScalingGroupName": group["AutoScalingGroupName"],
        "VPCZoneIdentifier": _zones(group.get("VPCZoneIdentifier")),
        "TargetGroupARNs": list(group.get("TargetGroupARNs") or []),
        "Tags": [
            {
                "Key": t["Key"],
                "Value": t.get("Value", ""),
                "PropagateAtLaunch": bool(t.get("PropagateAtLaunch")),
            }
            for t in group.get("Tags") or []
        ],
    }
    out.update({key: group[key] for key in UPDATABLE if key in group})
    if group.get("LaunchTemplate"):
        out["LaunchTemplate"] = project(
            group["LaunchTemplate"],
            planned.get("LaunchTemplate") or {"LaunchTemplateId": "", "Version": ""},
        )
    return out


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
        target = _template_of(group)
        outdated = _outdated(group, target)
        if outdated and target is not None:
            return self._refreshing(ctx, physical_id, target, len(outdated))
        wanted = int(group.get("MinSize", 1))
        in_service = sum(
            1 for i in group.get("Instances", []) if i["LifecycleState"] == "InService"
        )
        if in_service >= wanted:
            if target is not None:
                # Every instance runs the group's version, but an instance refresh may still be
                # waiting for its last replacements to pass their health checks and warm up:
                # the update is done when the refresh is.
                finishing = self._refreshing(ctx, physical_id, target, 0)
                if finishing is not None:
                    return finishing
            return Ready({})
        plural = "s" if wanted > 1 else ""
        reason = f"waiting for {wanted} API instance{plural} to be InService ({in_service} so far)"
        failure = _latest_failed_launch(ctx, physical_id)
        if failure:
            reason += f"; the last launch failed: {failure}"
        return Pending(reason)

    @staticmethod
    def _refreshing(
        ctx: AwsContext, name: str, target: dict[str, str], outdated: int
    ) -> Pending | Failed | None:
        """Where the replacement of ``outdated`` instances by ``target`` stands (None: with
        none outdated, no refresh towards it at work)."""
        version = f"launch template version {target['Version']}"
        plural = "s" if outdated > 1 else ""
        refresh = _latest_refresh(ctx, name)
        status = (refresh or {}).get("Status")
        if refresh is not None and _refresh_target(refresh, target) == target:
            if status in REFRESHING:
                done = refresh.get("PercentageComplete")
                progress = f" ({done} % done)" if done is not None else ""
                doing = (
                    f"replacing {outdated} API instance{plural} with {version}"
                    if outdated
                    else f"the API instances of {version} are starting and warming up"
                )
                return Pending(f"instance refresh {status.lower()}: {doing}{progress}")
            if outdated and status in REFRESH_FAILED:
                reason = refresh.get("StatusReason") or "no reason given"
                return Failed(
                    f"the instance refresh to {version} ended {status}: {reason}; {outdated} "
                    f"API instance{plural} still run an earlier version"
                )
        if not outdated:
            return None
        return Pending(
            f"{outdated} API instance{plural} still run an earlier version; waiting for the "
            f"instance refresh to {version} to start"
        )

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        group = _describe(ctx, physical_id)
        if group is None or group.get("Status") == DELETING:
            return None
        return _live(group, node.properties)

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        group = _describe(ctx, physical_id)
        if group is None or group.get("Status") == DELETING:
            raise CannotUpdate(f"the Auto Scaling group {physical_id} no longer exists")
        autoscaling = ctx.client("autoscaling")
        live = _live(group, after)
        changes = differing(live, after, UPDATABLE)
        if "VPCZoneIdentifier" in after and not same(
            live["VPCZoneIdentifier"], _zones(after["VPCZoneIdentifier"])
        ):
            changes["VPCZoneIdentifier"] = ",".join(_zones(after["VPCZoneIdentifier"]))
        target = _template_of(after) or _template_of(group)
        if (
            target is not None
            and "LaunchTemplate" in after
            and live.get("LaunchTemplate") != target
        ):
            changes["LaunchTemplate"] = target
        if changes:
            autoscaling.update_auto_scaling_group(AutoScalingGroupName=physical_id, **changes)

        if "TargetGroupARNs" in after:
            wanted, attached = list(after["TargetGroupARNs"]), live["TargetGroupARNs"]
            missing = [arn for arn in wanted if arn not in attached]
            extra = [arn for arn in attached if arn not in wanted]
            for start in range(0, len(missing), TARGET_GROUP_BATCH):
                autoscaling.attach_load_balancer_target_groups(
                    AutoScalingGroupName=physical_id,
                    TargetGroupARNs=missing[start : start + TARGET_GROUP_BATCH],
                )
            for start in range(0, len(extra), TARGET_GROUP_BATCH):
                autoscaling.detach_load_balancer_target_groups(
                    AutoScalingGroupName=physical_id,
                    TargetGroupARNs=extra[start : start + TARGET_GROUP_BATCH],
                )
        if "Tags" in after:
            self._tag(ctx, physical_id, before.get("Tags"), live["Tags"], after["Tags"])
        outdated = _outdated(group, target)
        if target is not None and (outdated or "LaunchTemplate" in changes):
            self._refresh(ctx, physical_id, target, bool(outdated))

    @staticmethod
    def _tag(ctx: AwsContext, name: str, before: Any, live: list, after: list) -> None:
        def shaped(key: str, value: str, propagate: bool) -> dict[str, Any]:
            return {
                "Key": key,
                "Value": value,
                "PropagateAtLaunch": propagate,
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
            }

        now = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in live}
        wanted = {t["Key"]: (t["Value"], bool(t.get("PropagateAtLaunch"))) for t in after}
        to_set = [shaped(k, *v) for k, v in wanted.items() if now.get(k) != v]
        _, to_remove = tag_changes(before, after)
        to_remove = [key for key in to_remove if key in now]
        autoscaling = ctx.client("autoscaling")
        if to_set:
            autoscaling.create_or_update_tags(Tags=to_set)
        if to_remove:
            autoscaling.delete_tags(Tags=[shaped(key, *now[key]) for key in to_remove])

    @staticmethod
    def _refresh(ctx: AwsContext, name: str, target: dict[str, str], outdated: bool) -> None:
        """Replace the instances that do not run ``target`` (an instance refresh), unless one
        towards it is at work already. One towards another version (an update rolled back
        mid-way) is cancelled: on success AWS would give the group that other version."""
        autoscaling = ctx.client("autoscaling")
        refresh = _latest_refresh(ctx, name)
        if refresh is not None and refresh.get("Status") in REFRESHING:
            ours = _refresh_target(refresh, target) == target
            if ours and refresh["Status"] != "Cancelling":
                return
            if not ours and refresh["Status"] != "Cancelling":
                autoscaling.cancel_instance_refresh(AutoScalingGroupName=name)
            if outdated:
                raise RetryLater(
                    "an instance refresh towards another launch template version is being "
                    f"cancelled; the one to version {target['Version']} starts once it has "
                    "stopped"
                )
            return
        if not outdated:
            return
        try:
            autoscaling.start_instance_refresh(
                AutoScalingGroupName=name,
                Strategy="Rolling",
                DesiredConfiguration={"LaunchTemplate": target},
                Preferences=REFRESH_PREFERENCES,
            )
        except ClientError as exc:
            if error_code(exc) != "InstanceRefreshInProgress":
                raise
            raise RetryLater(
                f"another instance refresh of the group is at work; the one to version "
                f"{target['Version']} starts once it has ended"
            ) from exc

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
