"""``AWS::EC2::Instance``: the API instance (``api_kind: ec2``), in the first API subnet.

The image is the plan's ``resolve:ssm:`` Amazon Linux 2023 reference, resolved at create time
(see ``_compute.resolve_image_id`` for the fallback chain). The user data is rendered by
``workload.artifacts.render_user_data``: an HTTPS ``/health`` API that reads (or, for an empty
secret, generates and stores) the credential in the secret named by ``meta["credential_from"]``.

Physical id: the instance id. Attributes: ``PrivateDnsName`` (the Lambda's ``API_HOST``) and
``PrivateIp``.

RunInstances takes a ClientToken, so a lost response cannot make a second instance. The token
is derived from ``ctx.client_token(node)`` and the request (``_compute.request_token``), and EC2
keeps answering a token with the *same* instance for at least 24 hours after that instance was
terminated: a re-create with the same request in that window would get the dead instance back.
:meth:`InstanceHandler.create` notices and moves to a token derived from the dead instance's id,
which is just as deterministic for a retry.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import (
    api_port,
    credential_secret_arn,
    derived_token,
    node_tags,
    request_token,
    resolve_image_id,
    tag_list,
)
from deployer.resources._ec2 import is_not_found, not_visible_yet
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready, RetryLater
from designer.graph import ResourceNode
from workload.artifacts import render_user_data

#: States find() counts: everything except terminated and shutting-down (being deleted).
LIVE_STATES = ("pending", "running", "stopping", "stopped")
DEAD_STATES = frozenset({"shutting-down", "terminated"})
#: How many dead instances in a row the token derivation steps over before giving up.
MAX_TOKEN_HOPS = 5


def _is_profile_propagation(exc: ClientError) -> bool:
    """RunInstances with an instance profile IAM created seconds ago: EC2 answers
    ``InvalidParameterValue`` "Value (...) for parameter iamInstanceProfile.name is invalid.
    Invalid IAM Instance Profile name" until IAM has propagated it (~10 s)."""
    error = exc.response.get("Error", {})
    return (
        error.get("Code") == "InvalidParameterValue"
        and "iaminstanceprofile" in str(error.get("Message", "")).lower()
    )


def _describe(ctx: AwsContext, instance_id: str) -> dict[str, Any] | None:
    try:
        reservations = ctx.client("ec2").describe_instances(InstanceIds=[instance_id])[
            "Reservations"
        ]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    instances = [i for r in reservations for i in r["Instances"]]
    return instances[0] if instances else None


def _state_reason(instance: dict[str, Any]) -> str:
    reason = instance.get("StateReason") or {}
    return reason.get("Message") or instance.get("StateTransitionReason") or "no reason given"


class InstanceHandler:
    type: ClassVar[str] = "AWS::EC2::Instance"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        filters = [*ctx.tag_filters(node), {"Name": "instance-state-name", "Values": LIVE_STATES}]
        pages = ctx.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
        found = []
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    # Checked again here: a filter the endpoint ignores must not adopt others'.
                    if (
                        ctx.owns(node, instance.get("Tags"))
                        and instance["State"]["Name"] not in DEAD_STATES
                    ):
                        found.append(instance["InstanceId"])
        return found

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        tags = tag_list(node_tags(ctx, node, props))
        profile = props.get("IamInstanceProfile")
        kwargs: dict[str, Any] = {
            "ImageId": resolve_image_id(ctx, props["ImageId"]),
            "InstanceType": props["InstanceType"],
            "MinCount": 1,
            "MaxCount": 1,
            "SubnetId": props["SubnetId"],
            "SecurityGroupIds": props.get("SecurityGroupIds", []),
            "UserData": render_user_data(
                secret_arn=credential_secret_arn(ctx, node),
                region=ctx.region,
                api_port=api_port(node),
                # Called directly by the Lambda, no health checker: every request must
                # present the credential.
                anonymous_liveness=False,
            ),
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
        }
        if profile:
            # CloudFormation's IamInstanceProfile is the profile's name (its Ref); accept an ARN.
            kwargs["IamInstanceProfile"] = (
                {"Arn": profile} if profile.startswith("arn:") else {"Name": profile}
            )
        for key in ("MetadataOptions", "BlockDeviceMappings"):
            if key in props:
                kwargs[key] = props[key]

        token = request_token(ctx, node, kwargs)
        ec2 = ctx.client("ec2")
        for _ in range(MAX_TOKEN_HOPS):
            try:
                instance = ec2.run_instances(**kwargs, ClientToken=token)["Instances"][0]
            except ClientError as exc:
                if _is_profile_propagation(exc):
                    raise RetryLater(
                        "the instance profile is not yet usable by EC2 (IAM propagation takes ~10 s)"
                    ) from exc
                raise
            if instance["State"]["Name"] not in DEAD_STATES:
                return instance["InstanceId"]
            token = derived_token(token, instance["InstanceId"])
        raise RetryLater(
            "EC2 keeps answering with terminated instances for this deployment's launch token"
        )

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        instance = _describe(ctx, physical_id)
        if instance is None:
            return not_visible_yet("instance", physical_id)
        state = instance["State"]["Name"]
        if state == "pending":
            return Pending("instance is starting")
        if state == "running":
            return Ready(
                {
                    "PrivateDnsName": instance.get("PrivateDnsName", ""),
                    "PrivateIp": instance.get("PrivateIpAddress", ""),
                }
            )
        if state in DEAD_STATES:
            return Failed(f"the API instance was terminated: {_state_reason(instance)}")
        return Failed(f"the API instance is {state}: {_state_reason(instance)}")

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("ec2").terminate_instances(InstanceIds=[physical_id])
        except ClientError as exc:
            if is_not_found(exc):
                return
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        instance = _describe(ctx, physical_id)
        if instance is None or instance["State"]["Name"] == "terminated":
            return Gone()
        return Pending(f"instance is {instance['State']['Name']}")


HANDLER = InstanceHandler()
