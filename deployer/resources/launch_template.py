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
"""

from __future__ import annotations

import base64
import copy
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import (
    api_port,
    credential_secret_arn,
    node_tags,
    request_token,
    resolve_image_id,
    tag_list,
)
from deployer.resources._ec2 import error_code, find_by_tags, not_visible_yet
from deployer.resources.base import (
    AwsContext,
    Failed,
    Gone,
    Pending,
    Ready,
)
from designer.graph import ResourceNode
from workload.artifacts import render_user_data

#: The logical id the plan gives the Auto Scaling group that launches from this template: its
#: instances are tagged as that node's.
INSTANCES_OWNER = "ApiAutoScalingGroup"
#: Launch-template names are unique per region and at most 128 characters.
NAME_MAX = 128


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
        data = copy.deepcopy(props["LaunchTemplateData"])
        data["ImageId"] = resolve_image_id(ctx, data["ImageId"])
        data["TagSpecifications"] = _instance_tag_specifications(ctx, data)
        user_data = render_user_data(
            secret_arn=credential_secret_arn(ctx, node),
            region=ctx.region,
            api_port=api_port(node),
            anonymous_liveness=True,
        )
        data["UserData"] = base64.b64encode(user_data.encode()).decode()
        # The template's own tags: the plan's launch-template TagSpecifications plus ours.
        plan_tags = [
            tag
            for spec in props.get("TagSpecifications") or []
            if spec.get("ResourceType") == "launch-template"
            for tag in spec.get("Tags") or []
        ]
        request = {
            "LaunchTemplateName": ctx.physical_name(node, NAME_MAX),
            "LaunchTemplateData": data,
            "TagSpecifications": [
                {
                    "ResourceType": "launch-template",
                    "Tags": tag_list(node_tags(ctx, node, {"Tags": plan_tags})),
                }
            ],
        }
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
