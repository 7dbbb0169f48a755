"""``AWS::IAM::Role``: physical id = the role *name* (CloudFormation's ``Ref``); ``Arn`` is the
attribute other nodes reference (the Lambda's execution role).

IAM names are account-wide and IAM has no search by tag, so the name is deterministic per
deployment and node (``ctx.physical_name``): find() is one ``GetRole`` plus a check of the gantry
tags, exact and cheap. create attaches the managed policies right after ``CreateRole``; a role
adopted by find() (a create whose answer was lost) gets them, like any change, through
``update``: the description, the trust policy, the managed policies, the session duration, the
permissions boundary and the tags all change in place (the name and path cannot). Inline
policies are separate ``AWS::IAM::Policy`` nodes. check_ready only looks.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from deployer.resources._ec2 import error_code
from deployer.resources._update import changed, refuse_create_only, tag_changes
from deployer.resources.base import (
    AwsContext,
    Created,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from designer.graph import ResourceNode

#: IAM's limit for role names.
ROLE_NAME_MAX = 64


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


def _attached(ctx: AwsContext, name: str) -> list[str]:
    """The ARNs of the managed policies attached to the role."""
    pages = ctx.client("iam").get_paginator("list_attached_role_policies").paginate(RoleName=name)
    return [policy["PolicyArn"] for page in pages for policy in page["AttachedPolicies"]]


def _attach(ctx: AwsContext, name: str, arns: list[str]) -> None:
    """Attach managed policies (AttachRolePolicy is idempotent). IAM answers ``NoSuchEntity``
    both for a policy that does not exist (a mistake, said as such) and for a role it does not
    show yet right after CreateRole (a wait)."""
    iam = ctx.client("iam")
    for arn in arns:
        try:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity" and _get_role(ctx, name) is None:
                raise RetryLater(
                    f"waiting for IAM to show the new role {name} before attaching {arn}"
                ) from exc
            raise


class IamRoleHandler:
    type = "AWS::IAM::Role"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        name = ctx.physical_name(node, ROLE_NAME_MAX)
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
        # From the node (its generation included), so a replacement has a name of its own.
        name = ctx.physical_name(node, ROLE_NAME_MAX)
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": policy_json(props["AssumeRolePolicyDocument"]),
            "Tags": iam_tags(ctx, node, props),
        }
        for key in ("Description", "Path", "MaxSessionDuration", "PermissionsBoundary"):
            if props.get(key):
                kwargs[key] = props[key]
        try:
            arn = ctx.client("iam").create_role(**kwargs)["Role"]["Arn"]
        except ClientError as exc:
            # Ours (a create whose answer was lost) is adopted; anyone else's is an error.
            if error_code(exc) != "EntityAlreadyExists" or not self.find(ctx, node, props):
                raise
            arn = None
        _attach(ctx, name, list(props.get("ManagedPolicyArns") or []))
        # CreateRole answers the role's ARN. How soon another service may use the role is
        # IAM's propagation, which that service's create waits out (RetryLater).
        return Created(name, {"Arn": arn}) if arn else name

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        role = _get_role(ctx, physical_id)
        if role is None:  # IAM is eventually consistent right after CreateRole
            return Pending(f"waiting for IAM to show the new role {physical_id}")
        return Ready({"Arn": role["Arn"]})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """GetRole (description, trust policy, tags...) and the attached managed policies (a
        policy attached by hand is drift as much as one detached)."""
        role = _get_role(ctx, physical_id)
        if role is None:
            return None
        document = role.get("AssumeRolePolicyDocument")
        if isinstance(document, str):  # boto3 decodes it; be tolerant of the raw text
            document = json.loads(unquote(document))
        live: dict[str, Any] = {
            "Description": role.get("Description", ""),
            "AssumeRolePolicyDocument": document,
            "ManagedPolicyArns": sorted(_attached(ctx, physical_id)),
            "Path": role.get("Path", "/"),
            "MaxSessionDuration": role.get("MaxSessionDuration"),
            "Tags": role.get("Tags") or [],
        }
        boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        live["PermissionsBoundary"] = boundary or ""
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
        iam = ctx.client("iam")
        name = physical_id
        if changed(before, after, "AssumeRolePolicyDocument"):
            iam.update_assume_role_policy(
                RoleName=name, PolicyDocument=policy_json(after["AssumeRolePolicyDocument"])
            )
        settings: dict[str, Any] = {}
        if changed(before, after, "Description"):
            settings["Description"] = after.get("Description") or ""
        if changed(before, after, "MaxSessionDuration") and after.get("MaxSessionDuration"):
            settings["MaxSessionDuration"] = int(after["MaxSessionDuration"])
        if settings:
            iam.update_role(RoleName=name, **settings)
        if changed(before, after, "PermissionsBoundary"):
            if after.get("PermissionsBoundary"):
                iam.put_role_permissions_boundary(
                    RoleName=name, PermissionsBoundary=after["PermissionsBoundary"]
                )
            else:
                _tolerate_missing(iam.delete_role_permissions_boundary, RoleName=name)
        if changed(before, after, "ManagedPolicyArns"):
            wanted = list(after.get("ManagedPolicyArns") or [])
            _attach(ctx, name, wanted)
            for arn in before.get("ManagedPolicyArns") or []:
                if arn not in wanted:
                    _tolerate_missing(iam.detach_role_policy, RoleName=name, PolicyArn=arn)
        to_set, to_remove = tag_changes(before, after)
        if to_set:
            iam.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in to_set.items()])
        if to_remove:
            iam.untag_role(RoleName=name, TagKeys=to_remove)

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
