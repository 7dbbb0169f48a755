"""``AWS::IAM::Role``: physical id = the role *name* (CloudFormation's ``Ref``); ``Arn`` is the
attribute other nodes reference (the Lambda's execution role).

IAM names are account-wide and IAM has no search by tag, so the name is deterministic per
deployment and node (``ctx.physical_name``): find() is one ``GetRole`` plus a check of the gantry
tags, exact and cheap. Managed policies are attached in check_ready, idempotently (attach what is
missing, pending until all are attached), so a create interrupted between the two steps, or a role
adopted by find(), converges on the next check. Inline policies are separate
``AWS::IAM::Policy`` nodes.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from deployer.resources._ec2 import error_code
from deployer.resources.base import (
    AwsContext,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

#: IAM's limit for role names.
ROLE_NAME_MAX = 64


def role_name(ctx: AwsContext, logical_id: str) -> str:
    """The role's name, a pure function of the deployment and the logical id: the same for
    every pass, so find() can look the role up directly. Also how another handler turns a
    ``Ref`` to a role node into the role's physical id when it only has the unresolved node."""
    return ctx.physical_name(ResourceNode(logical_id, "AWS::IAM::Role"), ROLE_NAME_MAX)


def policy_json(document: Any) -> str:
    """IAM wants policy documents as JSON text; the plan holds them as dicts."""
    return document if isinstance(document, str) else json.dumps(document)


def iam_tags(ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[dict[str, str]]:
    """The node's CloudFormation ``Tags`` with the context's tags winning on a clash."""
    tags = {t["Key"]: t["Value"] for t in props.get("Tags") or []} | ctx.tag_dict(node)
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _get_role(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    try:
        return ctx.client("iam").get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


def _managed_policy_arns(node: ResourceNode) -> list[str]:
    """The node's managed policy ARNs. check_ready only has the unresolved node, so they must be
    literal ARNs (AWS managed policies are)."""
    arns = list(node.properties.get("ManagedPolicyArns") or [])
    if not all(isinstance(arn, str) for arn in arns):
        raise ValueError(f"{node.logical_id}: ManagedPolicyArns must be literal ARNs")
    return arns


class IamRoleHandler:
    type = "AWS::IAM::Role"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        name = role_name(ctx, node.logical_id)
        role = _get_role(ctx, name)
        if role is None:
            return []
        tags = role.get("Tags")
        if tags is None:  # GetRole has returned tags since 2019; list them if it did not
            tags = ctx.client("iam").list_role_tags(RoleName=name)["Tags"]
        return [name] if ctx.owns(node, tags) else []

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        if props.get("Policies"):
            raise ValueError(
                f"{node.logical_id}: inline policies are planned as AWS::IAM::Policy nodes"
            )
        name = role_name(ctx, node.logical_id)
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": policy_json(props["AssumeRolePolicyDocument"]),
            "Tags": iam_tags(ctx, node, props),
        }
        for key in ("Description", "Path", "MaxSessionDuration", "PermissionsBoundary"):
            if props.get(key):
                kwargs[key] = props[key]
        try:
            ctx.client("iam").create_role(**kwargs)
        except ClientError as exc:
            # Ours (a create whose answer was lost) is adopted; anyone else's is an error.
            if error_code(exc) != "EntityAlreadyExists" or not self.find(ctx, node, props):
                raise
        return name

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        role = _get_role(ctx, physical_id)
        if role is None:  # IAM is eventually consistent right after CreateRole
            return Pending(f"waiting for IAM to show the new role {physical_id}")
        iam = ctx.client("iam")
        attached = {
            policy["PolicyArn"]
            for page in iam.get_paginator("list_attached_role_policies").paginate(
                RoleName=physical_id
            )
            for policy in page["AttachedPolicies"]
        }
        missing = [arn for arn in _managed_policy_arns(node) if arn not in attached]
        for arn in missing:
            iam.attach_role_policy(RoleName=physical_id, PolicyArn=arn)
        if missing:
            names = ", ".join(arn.rsplit("/", 1)[-1] for arn in missing)
            return Pending(f"attaching managed policies to the role: {names}")
        return Ready({"Arn": role["Arn"]})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        """Detach managed policies and delete inline ones (IAM refuses to delete a role that
        has either), then the role. Instance profiles release the role in their own delete,
        which the graph runs first."""
        iam = ctx.client("iam")
        try:
            for page in iam.get_paginator("list_attached_role_policies").paginate(
                RoleName=physical_id
            ):
                for policy in page["AttachedPolicies"]:
                    _tolerate_missing(
                        iam.detach_role_policy, RoleName=physical_id, PolicyArn=policy["PolicyArn"]
                    )
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=physical_id):
                for policy_name in page["PolicyNames"]:
                    _tolerate_missing(
                        iam.delete_role_policy, RoleName=physical_id, PolicyName=policy_name
                    )
            iam.delete_role(RoleName=physical_id)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return
            if error_code(exc) == "DeleteConflict":
                message = exc.response.get("Error", {}).get("Message", "")
                raise RetryLater(
                    f"role {physical_id} is still in use ({message}); Gantry retries once the "
                    "instance profile or policy that holds it is removed"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _get_role(ctx, physical_id) is None:
            return Gone()
        return Pending(f"role {physical_id} is being deleted")


def _tolerate_missing(call: Any, **kwargs: Any) -> None:
    """Run one IAM call; ``NoSuchEntity`` means it was already done."""
    try:
        call(**kwargs)
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise


HANDLER = IamRoleHandler()
