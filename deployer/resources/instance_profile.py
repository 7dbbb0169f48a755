"""``AWS::IAM::InstanceProfile``: physical id = the profile *name* (CloudFormation's ``Ref``);
``Arn`` is the attribute the launch template / instance references.

Like roles, profiles are named per deployment and node (``ctx.physical_name``), so find() is one
``GetInstanceProfile`` plus a check of the gantry tags. The role is added in check_ready, not in
create: IAM may not show a profile for a moment after CreateInstanceProfile, and a profile adopted
by find() (a create whose answer was lost) must get its role too; check_ready handles both by
adding what is missing and reporting pending until the role is in.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deployer.resources._ec2 import error_code
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready, RetryLater
from deployer.resources.iam_role import iam_tags, role_name
from designer.graph import Ref, ResourceNode


def _get_profile(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    try:
        return ctx.client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


def _wanted_roles(ctx: AwsContext, node: ResourceNode) -> list[str]:
    """Role names from the node's ``Roles``. check_ready only has the unresolved node; a
    ``Ref`` to a role resolves to the role's name, which :func:`role_name` computes from the
    role node's logical id exactly as the role handler named it."""
    return [
        role_name(ctx, role.logical_id) if isinstance(role, Ref) else str(role)
        for role in node.properties.get("Roles") or []
    ]


class InstanceProfileHandler:
    type = "AWS::IAM::InstanceProfile"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        name = ctx.physical_name(node)
        profile = _get_profile(ctx, name)
        if profile is None:
            return []
        tags = profile.get("Tags")
        if tags is None:
            tags = ctx.client("iam").list_instance_profile_tags(InstanceProfileName=name)["Tags"]
        return [name] if ctx.owns(node, tags) else []

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        name = ctx.physical_name(node)
        kwargs: dict[str, Any] = {"InstanceProfileName": name, "Tags": iam_tags(ctx, node, props)}
        if props.get("Path"):
            kwargs["Path"] = props["Path"]
        try:
            ctx.client("iam").create_instance_profile(**kwargs)
        except ClientError as exc:
            # Ours (a create whose answer was lost) is adopted; anyone else's is an error.
            if error_code(exc) != "EntityAlreadyExists" or not self.find(ctx, node, props):
                raise
        return name

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        profile = _get_profile(ctx, physical_id)
        if profile is None:
            return Pending(f"waiting for IAM to show the new instance profile {physical_id}")
        present = [role["RoleName"] for role in profile.get("Roles") or []]
        missing = [name for name in _wanted_roles(ctx, node) if name not in present]
        if not missing:
            return Ready({"Arn": profile["Arn"]})
        iam = ctx.client("iam")
        for name in missing:
            try:
                iam.add_role_to_instance_profile(InstanceProfileName=physical_id, RoleName=name)
            except ClientError as exc:
                # A profile holds one role: LimitExceeded means one is already in. If it is not
                # ours (someone changed the profile), that is a failure, not a wait.
                if error_code(exc) != "LimitExceeded":
                    raise
                if present:
                    return Failed(
                        f"instance profile {physical_id} holds role {', '.join(present)} instead "
                        f"of {name}"
                    )
        return Pending(f"adding role {', '.join(missing)} to the instance profile")

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        """Remove the role (IAM refuses to delete a profile that holds one), then the
        profile. This is also what frees the role for its own delete."""
        iam = ctx.client("iam")
        profile = _get_profile(ctx, physical_id)
        if profile is None:
            return
        try:
            for role in profile.get("Roles") or []:
                try:
                    iam.remove_role_from_instance_profile(
                        InstanceProfileName=physical_id, RoleName=role["RoleName"]
                    )
                except ClientError as exc:
                    if error_code(exc) != "NoSuchEntity":
                        raise
            iam.delete_instance_profile(InstanceProfileName=physical_id)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return
            if error_code(exc) == "DeleteConflict":
                message = exc.response.get("Error", {}).get("Message", "")
                raise RetryLater(
                    f"instance profile {physical_id} is still in use ({message})"
                ) from exc
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _get_profile(ctx, physical_id) is None:
            return Gone()
        return Pending(f"instance profile {physical_id} is being deleted")


HANDLER = InstanceProfileHandler()
