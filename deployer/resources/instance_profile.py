"""``AWS::IAM::InstanceProfile``: physical id = the profile *name* (CloudFormation's ``Ref``);
``Arn`` is the attribute the launch template / instance references.

Like roles, profiles are named per deployment and node (``ctx.physical_name``), so find() is one
``GetInstanceProfile`` plus a check of the gantry tags. create adds the role right after
``CreateInstanceProfile``; IAM may not show a new profile for a moment, in which case the create
waits and the next pass adopts the profile by its tags and adds the role through ``update``.
``Roles`` is the one property that changes in place: ``update`` makes the profile hold exactly
the planned role (a profile holds at most one), whoever changed it. check_ready only looks.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deployer.resources._ec2 import error_code
from deployer.resources._update import changed, refuse_create_only
from deployer.resources.base import AwsContext, Created, Gone, Pending, Ready, RetryLater
from deployer.resources.iam_role import iam_tags
from designer.graph import ResourceNode


def _get_profile(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    try:
        return ctx.client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


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
            arn = ctx.client("iam").create_instance_profile(**kwargs)["InstanceProfile"]["Arn"]
        except ClientError as exc:
            # Ours (a create whose answer was lost) is adopted; anyone else's is an error.
            if error_code(exc) != "EntityAlreadyExists" or not self.find(ctx, node, props):
                raise
            self.update(ctx, node, name, {}, props)  # it may hold its role already
            return name
        for role in props.get("Roles") or []:
            _add_role(ctx, name, role)
        # CreateInstanceProfile answers its ARN, and the role is in it once AddRoleToInstance
        # Profile answers; RunInstances waits out IAM's propagation itself (RetryLater).
        return Created(name, {"Arn": arn})

    def check_ready(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending:
        profile = _get_profile(ctx, physical_id)
        if profile is None:
            return Pending(f"waiting for IAM to show the new instance profile {physical_id}")
        if node.properties.get("Roles") and not profile.get("Roles"):
            return Pending(f"waiting for IAM to show the role in instance profile {physical_id}")
        return Ready({"Arn": profile["Arn"]})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        profile = _get_profile(ctx, physical_id)
        if profile is None:
            return None
        return {
            "InstanceProfileName": profile["InstanceProfileName"],
            "Path": profile.get("Path", "/"),
            "Roles": [role["RoleName"] for role in profile.get("Roles") or []],
        }

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """Make the profile hold exactly ``after``'s roles, from what it holds now (one
        GetInstanceProfile): a role someone swapped in goes, the planned one comes back."""
        refuse_create_only(self.type, before, after, ctx.region)
        if not changed(before, after, "Roles"):
            return
        profile = _get_profile(ctx, physical_id)
        if profile is None:
            raise RetryLater(f"waiting for IAM to show the instance profile {physical_id}")
        wanted = list(after.get("Roles") or [])
        present = [role["RoleName"] for role in profile.get("Roles") or []]
        iam = ctx.client("iam")
        # A profile holds one role: the old one leaves before the new one comes in.
        for role in present:
            if role not in wanted:
                try:
                    iam.remove_role_from_instance_profile(
                        InstanceProfileName=physical_id, RoleName=role
                    )
                except ClientError as exc:
                    if error_code(exc) != "NoSuchEntity":
                        raise
        for role in wanted:
            if role not in present:
                _add_role(ctx, physical_id, role)

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


def _add_role(ctx: AwsContext, profile: str, role: str) -> None:
    """AddRoleToInstanceProfile; ``NoSuchEntity`` right after a create is IAM not showing the
    new profile or role yet (a wait), ``LimitExceeded`` a role added since the last look (the
    next update, from what the profile holds then, swaps it)."""
    try:
        ctx.client("iam").add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise RetryLater(
                f"waiting for IAM to show instance profile {profile} and role {role}"
            ) from exc
        if error_code(exc) == "LimitExceeded":
            raise RetryLater(
                f"instance profile {profile} already holds another role; Gantry replaces it "
                f"with {role}"
            ) from exc
        raise


HANDLER = InstanceProfileHandler()
