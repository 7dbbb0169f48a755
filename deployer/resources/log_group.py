"""``AWS::Logs::LogGroup``: physical id = the log group *name* (CloudFormation's ``Ref``).

The Lambda's log group is created by Gantry, before the function, so it carries the gantry tags
and a retention period (a group Lambda creates on its own keeps logs forever). The name is fixed
by the function's name, so a group that already exists is adopted only when its tags say it is
this node's; otherwise the deployment stops with a sentence rather than take over someone's logs.
Retention is applied in check_ready, idempotently, so an adopted group or a create interrupted
between the two calls converges on the next check.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deployer.resources._ec2 import error_code
from deployer.resources.base import AwsContext, Gone, Pending, Ready
from designer.graph import ResourceNode


def _describe(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    """The log group named exactly ``name`` (DescribeLogGroups only filters by prefix)."""
    paginator = ctx.client("logs").get_paginator("describe_log_groups")
    for page in paginator.paginate(logGroupNamePrefix=name):
        for group in page["logGroups"]:
            if group["logGroupName"] == name:
                return group
    return None


def _tags(ctx: AwsContext, group: dict[str, Any]) -> dict[str, str]:
    # ListTagsForResource wants the ARN without the ":*" that DescribeLogGroups' "arn" ends with;
    # newer answers also carry it bare as "logGroupArn".
    arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
    return ctx.client("logs").list_tags_for_resource(resourceArn=arn).get("tags") or {}


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
        return name

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        group = _describe(ctx, physical_id)
        if group is None:
            return Pending(f"waiting for CloudWatch Logs to show the log group {physical_id}")
        retention = node.properties.get("RetentionInDays")
        if retention and group.get("retentionInDays") != int(retention):
            ctx.client("logs").put_retention_policy(
                logGroupName=physical_id, retentionInDays=int(retention)
            )
            return Pending(f"setting the log retention to {int(retention)} days")
        return Ready({})

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
