"""``AWS::Logs::LogGroup``: physical id = the log group *name* (CloudFormation's ``Ref``).

The Lambda's log group is created by Gantry, before the function, so it carries the gantry tags
and a retention period (a group Lambda creates on its own keeps logs forever). The name is fixed
by the function's name, so a group that already exists is adopted only when its tags say it is
this node's; otherwise the deployment stops with a sentence rather than take over someone's logs.
create sets the retention right after ``CreateLogGroup`` (which cannot take it); a group adopted by
find() gets it, like any change, through ``update``, which changes the retention and the tags in
place (the name is create-only). check_ready only looks.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deployer.resources._ec2 import error_code
from deployer.resources._update import changed, refuse_create_only, tag_changes
from deployer.resources.base import AwsContext, Created, Gone, Pending, Ready
from designer.graph import ResourceNode


def _describe(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    """The log group named exactly ``name`` (DescribeLogGroups only filters by prefix)."""
    paginator = ctx.client("logs").get_paginator("describe_log_groups")
    for page in paginator.paginate(logGroupNamePrefix=name):
        for group in page["logGroups"]:
            if group["logGroupName"] == name:
                return group
    return None


def _arn(group: dict[str, Any]) -> str:
    # The tag calls want the ARN without the ":*" that DescribeLogGroups' "arn" ends with;
    # newer answers also carry it bare as "logGroupArn".
    return group.get("logGroupArn") or group["arn"].removesuffix(":*")


def _tags(ctx: AwsContext, group: dict[str, Any]) -> dict[str, str]:
    return ctx.client("logs").list_tags_for_resource(resourceArn=_arn(group)).get("tags") or {}


def _set_retention(ctx: AwsContext, name: str, days: Any) -> None:
    """The retention period, or none (logs kept forever) when ``days`` is empty."""
    if days:
        ctx.client("logs").put_retention_policy(logGroupName=name, retentionInDays=int(days))
    else:
        ctx.client("logs").delete_retention_policy(logGroupName=name)


class LogGroupHandler:
    type = "AWS::Logs::LogGroup"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        group = _describe(ctx, props["LogGroupName"])
        if group is None:
            return []
        tags = _tags(ctx, group)
        return [group["logGroupName"]] if ctx.owns(node, tags) else []

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        name = props["LogGroupName"]
        tags = {t["Key"]: t["Value"] for t in props.get("Tags") or []} | ctx.tag_dict(node)
        kwargs: dict[str, Any] = {"logGroupName": name, "tags": tags}
        if props.get("KmsKeyId"):
            kwargs["kmsKeyId"] = props["KmsKeyId"]
        try:
            ctx.client("logs").create_log_group(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            if not self.find(ctx, node, props):
                # Keep it a ClientError so the engine reports it as AWS's refusal, with a
                # sentence that says what to do about it.
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ResourceAlreadyExistsException",
                            "Message": f"a log group named {name} already exists and does not "
                            "belong to this deployment",
                        }
                    },
                    "CreateLogGroup",
                ) from exc
        if props.get("RetentionInDays"):
            _set_retention(ctx, name, props["RetentionInDays"])
        # CloudWatch Logs is consistent: the group exists once CreateLogGroup answers.
        return Created(name)

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        if _describe(ctx, physical_id) is None:
            return Pending(f"waiting for CloudWatch Logs to show the log group {physical_id}")
        return Ready({})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """The group's name, retention (``None``: kept forever) and tags, AWS's map as the
        ``[{"Key", "Value"}]`` list the plan uses."""
        group = _describe(ctx, physical_id)
        if group is None:
            return None
        live: dict[str, Any] = {
            "LogGroupName": group["logGroupName"],
            "RetentionInDays": group.get("retentionInDays"),
            "Tags": [{"Key": k, "Value": v} for k, v in _tags(ctx, group).items()],
        }
        if group.get("kmsKeyId"):
            live["KmsKeyId"] = group["kmsKeyId"]
        return live

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        refuse_create_only(self.type, before, after, ctx.region)
        if changed(before, after, "RetentionInDays"):
            _set_retention(ctx, physical_id, after.get("RetentionInDays"))
        to_set, to_remove = tag_changes(before, after)
        if to_set or to_remove:
            group = _describe(ctx, physical_id)
            if group is None:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ResourceNotFoundException",
                            "Message": f"the log group {physical_id} does not exist",
                        }
                    },
                    "TagResource",
                )
            logs = ctx.client("logs")
            if to_set:
                logs.tag_resource(resourceArn=_arn(group), tags=to_set)
            if to_remove:
                logs.untag_resource(resourceArn=_arn(group), tagKeys=to_remove)

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("logs").delete_log_group(logGroupName=physical_id)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _describe(ctx, physical_id) is None:
            return Gone()
        return Pending(f"log group {physical_id} is being deleted")


HANDLER = LogGroupHandler()
