"""``AWS::IAM::Policy``: an inline policy put on each of its roles (``PutRolePolicy``).

Inline policies cannot carry tags; they are found by their natural key, the role names and the
policy name. Physical id: ``<role>|<policy name>`` (``<role1>|<role2>|<policy name>`` for several
roles); ``|`` is allowed in neither IAM role names nor policy names, so the id splits back
exactly.

``PutRolePolicy`` is an upsert. find() therefore reports the policy only when every role holds it
with the planned document: a policy that is missing on a role or differs (say the secret it
grants was recreated with a new ARN) is not adopted, and the engine's create puts the right one.

Nothing of it is create-only: ``update`` puts the document on every role that should hold it and
deletes it from the roles (or under the name) it should no longer be on. A change of roles or
name changes the physical id, which ``update`` returns.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from deployer.resources._ec2 import error_code
from deployer.resources._update import changed
from deployer.resources.base import AwsContext, Created, Gone, Pending, Ready
from deployer.resources.iam_role import policy_json
from designer.graph import ResourceNode

SEPARATOR = "|"


def policy_id(roles: list[str], policy_name: str) -> str:
    return SEPARATOR.join([*roles, policy_name])


def split_policy_id(physical_id: str) -> tuple[list[str], str]:
    *roles, policy_name = physical_id.split(SEPARATOR)
    return roles, policy_name


def _get_document(ctx: AwsContext, role: str, policy_name: str) -> Any | None:
    """The policy document on ``role`` as a JSON value, or ``None`` when the role does not hold
    it (or the role does not exist)."""
    try:
        document = ctx.client("iam").get_role_policy(RoleName=role, PolicyName=policy_name)[
            "PolicyDocument"
        ]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    # boto3 decodes the URL-encoded document into a dict; be tolerant of a JSON string too.
    return json.loads(document) if isinstance(document, str) else document


class IamPolicyHandler:
    type = "AWS::IAM::Policy"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        roles = list(props.get("Roles") or [])
        if not roles:
            return []
        wanted = json.loads(policy_json(props["PolicyDocument"]))
        for role in roles:
            if _get_document(ctx, role, props["PolicyName"]) != wanted:
                return []
        return [policy_id(roles, props["PolicyName"])]

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        roles = list(props.get("Roles") or [])
        if not roles:
            # CloudFormation also accepts Users/Groups; Gantry's plan only attaches to roles.
            raise ValueError(f"{node.logical_id}: an inline policy needs at least one role")
        document = policy_json(props["PolicyDocument"])
        iam = ctx.client("iam")
        for role in roles:
            iam.put_role_policy(
                RoleName=role, PolicyName=props["PolicyName"], PolicyDocument=document
            )
        # In the role's policies once PutRolePolicy answers.
        return Created(policy_id(roles, props["PolicyName"]))

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        roles, policy_name = split_policy_id(physical_id)
        for role in roles:
            if _get_document(ctx, role, policy_name) is None:  # IAM is eventually consistent
                return Pending(f"waiting for IAM to show policy {policy_name} on role {role}")
        return Ready({})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """The policy as its roles hold it (one GetRolePolicy per role): ``Roles`` lists those
        that still hold it, ``PolicyDocument`` is the first document that differs from the
        others (so a change on any one role shows). ``None`` when no role holds it."""
        roles, policy_name = split_policy_id(physical_id)
        holders: list[str] = []
        documents: list[Any] = []
        for role in roles:
            document = _get_document(ctx, role, policy_name)
            if document is not None:
                holders.append(role)
                documents.append(document)
        if not holders:
            return None
        odd = [d for d in documents if d != documents[0]]
        return {
            "PolicyName": policy_name,
            "Roles": holders,
            "PolicyDocument": odd[0] if odd else documents[0],
        }

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> str | None:
        """Put the policy where it should be, remove it where it should not; returns the new
        physical id when the roles or the name changed (``None`` otherwise)."""
        roles = list(after.get("Roles") or [])
        if not roles:
            raise ValueError(f"{node.logical_id}: an inline policy needs at least one role")
        name = after["PolicyName"]
        old_roles, old_name = split_policy_id(physical_id)
        document_changed = changed(before, after, "PolicyDocument") or name != old_name
        iam = ctx.client("iam")
        for role in roles:
            if document_changed or role not in old_roles or role not in (before.get("Roles") or []):
                iam.put_role_policy(
                    RoleName=role,
                    PolicyName=name,
                    PolicyDocument=policy_json(after["PolicyDocument"]),
                )
        # Where it was and should no longer be: roles dropped, or all of them under an old name.
        stale = {(r, old_name) for r in old_roles} | {
            (r, before.get("PolicyName", old_name)) for r in before.get("Roles") or []
        }
        for role, policy_name in sorted(stale - {(r, name) for r in roles}):
            try:
                iam.delete_role_policy(RoleName=role, PolicyName=policy_name)
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
        new_id = policy_id(roles, name)
        return new_id if new_id != physical_id else None

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        roles, policy_name = split_policy_id(physical_id)
        iam = ctx.client("iam")
        for role in roles:
            try:
                iam.delete_role_policy(RoleName=role, PolicyName=policy_name)
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        roles, policy_name = split_policy_id(physical_id)
        for role in roles:
            if _get_document(ctx, role, policy_name) is not None:
                return Pending(f"policy {policy_name} is being removed from role {role}")
        return Gone()


HANDLER = IamPolicyHandler()
