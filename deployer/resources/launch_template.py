"""``AWS::EC2::LaunchTemplate``: what the Auto Scaling group launches its API instances from.

``LaunchTemplateData`` is the plan's, with three things the deployer adds:

- the AMI, resolved from the plan's ``resolve:ssm:`` reference at create time (so a template
  version always names one image, as CloudFormation would record it);
- the user data, rendered by ``workload.artifacts.render_user_data`` (base64, as the
  launch-template API wants it; RunInstances encodes by itself, this API does not). Behind the
  ALB the API answers an unauthenticated ``/health`` with a bare 200, because the ALB health
  checker cannot send the credential;
- the gantry tags in the template's instance and volume ``TagSpecifications``, so the
  instances the group launches are attributable. Their ``gantry:logical-id`` is the Auto Scaling
  group's (``ApiAutoScalingGroup``, which owns, launches and terminates them), while their
  ``Name`` stays the plan's (``<name>-api-instance``). The template itself carries its own
  logical id.

Physical id: the launch template id (CloudFormation's ``Ref``). Attribute:
``LatestVersionNumber``, as a string like CloudFormation's ``GetAtt``.

Updates: a launch template version never changes, so a change to what the instances are
launched with (the data above, the user data included: a new API port, another credential
secret) is a new version, made the default, whose number the Auto Scaling group then launches
from (and replaces its running instances with, see ``autoscaling_group``). The update compares
the data Gantry would launch with against the latest version's, so a retried or repeated update
makes no second version. The AMI is resolved once per image reference: each version records the
reference it was resolved from in its description (``image from resolve:ssm:...``), so a newer
AMI behind the same SSM parameter does not make a new version (and roll every instance) on an
unrelated change. The template's own tags change in place.
"""

from __future__ import annotations

import base64
import copy
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import (
    SSM_PREFIX,
    api_port,
    credential_secret_arn,
    node_tags,
    project,
    request_token,
    resolve_image_id,
    same,
    tag_changes,
    tag_list,
)
from deployer.resources._ec2 import error_code, find_by_tags, not_visible_yet
from deployer.resources.base import (
    AwsContext,
    CannotUpdate,
    Failed,
    Gone,
    Pending,
    Ready,
    tag_map,
)
from designer.graph import ResourceNode
from workload.artifacts import render_user_data

#: The logical id the plan gives the Auto Scaling group that launches from this template: its
#: instances are tagged as that node's.
INSTANCES_OWNER = "ApiAutoScalingGroup"
#: Launch-template names are unique per region and at most 128 characters.
NAME_MAX = 128
#: A version's description names the image reference its AMI was resolved from.
IMAGE_NOTE = "image from "
#: EC2 keeps a version description to 255 characters.
DESCRIPTION_MAX = 255


def _is_not_found(exc: ClientError) -> bool:
    # AWS: InvalidLaunchTemplateId.NotFound; moto: InvalidLaunchTemplateName.NotFoundException.
    return error_code(exc).startswith("InvalidLaunchTemplate") and "NotFound" in error_code(exc)


def _instance_tag_specifications(ctx: AwsContext, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's instance/volume TagSpecifications: the plan's tags (its ``Name`` for the
    instances), the spec's tags, and the gantry tags naming the Auto Scaling group."""
    specs = []
    for spec in data.get("TagSpecifications") or []:
        planned = {t["Key"]: t["Value"] for t in spec.get("Tags") or []}
        owner = ResourceNode(INSTANCES_OWNER, "AWS::EC2::Instance", meta=_name_meta(planned))
        tags = {**ctx.spec_tags, **planned, **ctx.tag_dict(owner)}
        specs.append({"ResourceType": spec["ResourceType"], "Tags": tag_list(tags)})
    return specs


def _name_meta(tags: dict[str, str]) -> dict[str, str]:
    return {"name": tags["Name"]} if "Name" in tags else {}


def _image_note(planned_image: str) -> str:
    """The description of a version whose AMI was resolved from ``planned_image`` ("" for an
    AMI id given as such, which needs no note)."""
    if not planned_image.startswith(SSM_PREFIX):
        return ""
    return f"{IMAGE_NOTE}{planned_image}"[:DESCRIPTION_MAX]


def _data(
    ctx: AwsContext, node: ResourceNode, props: dict[str, Any], image_id: str
) -> dict[str, Any]:
    """The launch data Gantry makes versions of: the plan's, with the resolved AMI, the gantry
    tags for the instances and the rendered user data."""
    data = copy.deepcopy(props["LaunchTemplateData"])
    data["ImageId"] = image_id
    data["TagSpecifications"] = _instance_tag_specifications(ctx, data)
    user_data = render_user_data(
        secret_arn=credential_secret_arn(ctx, node),
        region=ctx.region,
        api_port=api_port(node),
        anonymous_liveness=True,
    )
    data["UserData"] = base64.b64encode(user_data.encode()).decode()
    return data


def _template_tags_of(props: dict[str, Any]) -> list[dict[str, str]]:
    """The plan's tags for the template itself (its launch-template TagSpecifications)."""
    return [
        tag
        for spec in props.get("TagSpecifications") or []
        if spec.get("ResourceType") == "launch-template"
        for tag in spec.get("Tags") or []
    ]


def _template_tags(ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> dict[str, str]:
    """The template's own tags: the plan's plus the gantry tags."""
    return node_tags(ctx, node, {"Tags": _template_tags_of(props)})


def _version(ctx: AwsContext, template_id: str, number: int) -> dict[str, Any] | None:
    try:
        versions = ctx.client("ec2").describe_launch_template_versions(
            LaunchTemplateId=template_id, Versions=[str(number)]
        )["LaunchTemplateVersions"]
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise
    return versions[0] if versions else None


def _launch_data(version: dict[str, Any]) -> dict[str, Any]:
    """A version's launch data, without the template's own tags that moto lists among the
    instance TagSpecifications (AWS keeps them apart)."""
    data = copy.deepcopy(version.get("LaunchTemplateData") or {})
    if "TagSpecifications" in data:
        data["TagSpecifications"] = [
            spec
            for spec in data["TagSpecifications"]
            if spec.get("ResourceType") != "launch-template"
        ]
    return data


def _describe(ctx: AwsContext, template_id: str) -> dict[str, Any] | None:
    try:
        templates = ctx.client("ec2").describe_launch_templates(LaunchTemplateIds=[template_id])[
            "LaunchTemplates"
        ]
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise
    return templates[0] if templates else None


class LaunchTemplateHandler:
    type: ClassVar[str] = "AWS::EC2::LaunchTemplate"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(
            ctx, node, "describe_launch_templates", "LaunchTemplates", "LaunchTemplateId"
        )

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        planned_image = props["LaunchTemplateData"]["ImageId"]
        request: dict[str, Any] = {
            "LaunchTemplateName": ctx.physical_name(node, NAME_MAX),
            "LaunchTemplateData": _data(ctx, node, props, resolve_image_id(ctx, planned_image)),
            "TagSpecifications": [
                {
                    "ResourceType": "launch-template",
                    "Tags": tag_list(_template_tags(ctx, node, props)),
                }
            ],
        }
        note = _image_note(planned_image)
        if note:
            request["VersionDescription"] = note
        template = ctx.client("ec2").create_launch_template(
            **request, ClientToken=request_token(ctx, node, request)
        )["LaunchTemplate"]
        return template["LaunchTemplateId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        template = _describe(ctx, physical_id)
        if template is None:
            return not_visible_yet("launch template", physical_id)
        return Ready({"LatestVersionNumber": str(template["LatestVersionNumber"])})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        template = _describe(ctx, physical_id)
        if template is None:
            return None
        version = _version(ctx, physical_id, template["LatestVersionNumber"])
        if version is None:
            return None
        data = _launch_data(version)
        note = version.get("VersionDescription") or ""
        if note.startswith(IMAGE_NOTE) and "ImageId" in data:
            # Under the reference the plan gives, as the version says it was resolved from.
            data["ImageId"] = note[len(IMAGE_NOTE) :]
        return {
            "LaunchTemplateName": template["LaunchTemplateName"],
            "LaunchTemplateData": project(data, node.properties.get("LaunchTemplateData")),
            "TagSpecifications": [
                {
                    "ResourceType": "launch-template",
                    "Tags": tag_list(tag_map(template.get("Tags"))),
                }
            ],
        }

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        ec2 = ctx.client("ec2")
        template = _describe(ctx, physical_id)
        if template is None:
            raise CannotUpdate(f"the launch template {physical_id} no longer exists")
        latest = int(template["LatestVersionNumber"])
        version = _version(ctx, physical_id, latest) or {}
        live = _launch_data(version)
        planned_image = after["LaunchTemplateData"]["ImageId"]
        note = _image_note(planned_image)
        image = (
            live["ImageId"]
            if note and version.get("VersionDescription") == note and live.get("ImageId")
            else resolve_image_id(ctx, planned_image)
        )
        wanted = _data(ctx, node, after, image)
        if not same(project(live, wanted), wanted):
            request: dict[str, Any] = {
                "LaunchTemplateId": physical_id,
                "LaunchTemplateData": wanted,
            }
            if note:
                request["VersionDescription"] = note
            # The token names the version it follows: a retry after a lost answer gets the
            # same version back, a later change to the same data (a rollback) a new one.
            token = request_token(ctx, node, {**request, "after_version": latest})
            created = ec2.create_launch_template_version(**request, ClientToken=token)
            latest = int(created["LaunchTemplateVersion"]["VersionNumber"])
        if int(template.get("DefaultVersionNumber") or 0) != latest:
            ec2.modify_launch_template(LaunchTemplateId=physical_id, DefaultVersion=str(latest))
        wanted_tags = _template_tags(ctx, node, after)
        to_set, _ = tag_changes(template.get("Tags"), wanted_tags)
        _, to_remove = tag_changes(_template_tags_of(before), wanted_tags)
        to_remove = [key for key in to_remove if key in tag_map(template.get("Tags"))]
        if to_set:
            ec2.create_tags(Resources=[physical_id], Tags=tag_list(to_set))
        if to_remove:
            ec2.delete_tags(Resources=[physical_id], Tags=[{"Key": k} for k in to_remove])

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").delete_launch_template(LaunchTemplateId=physical_id)
        except ClientError as exc:
            if _is_not_found(exc):
                return
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _describe(ctx, physical_id) is None:
            return Gone()
        return Pending("launch template is being deleted")


HANDLER = LaunchTemplateHandler()
