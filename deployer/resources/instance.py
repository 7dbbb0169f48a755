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

Updates compare with the instance as DescribeInstances shows it (one call) and change in place
what EC2 allows on a running instance: its security groups (ModifyInstanceAttribute
``Groups``), its instance profile (Associate / ReplaceIamInstanceProfileAssociation), its
metadata options (ModifyInstanceMetadataOptions) and its tags. A new instance type needs the
instance stopped (CloudFormation's "some interruptions"): the update stops it and asks to be
called again, then changes the type and starts it, and ``check_ready`` waits for it to run. The
image, the subnet, the volumes and the user data (which configures the API at first boot only)
cannot change on a running instance: the change set replaces the instance, and update refuses
them (:class:`CannotUpdate`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import (
    api_port,
    credential_secret_arn,
    derived_token,
    node_tags,
    project,
    request_token,
    resolve_image_id,
    same,
    tag_changes,
    tag_list,
)
from deployer.resources._ec2 import is_not_found, not_visible_yet
from deployer.resources.base import (
    AwsContext,
    CannotUpdate,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
    tag_map,
)
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


def _profile_name(profile: Any) -> str | None:
    """An instance profile's name from its name or ARN (``arn:...:instance-profile/path/name``):
    CloudFormation's ``IamInstanceProfile`` is the name (its Ref), EC2 reports the ARN."""
    if isinstance(profile, dict):
        profile = profile.get("Arn") or profile.get("Name")
    if not profile:
        return None
    return str(profile).rsplit("/", 1)[-1] if str(profile).startswith("arn:") else str(profile)


def _live(instance: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    """DescribeInstances' answer under CloudFormation names, in the plan's shapes.

    Left out: ``ImageId`` (the plan's is an SSM reference the instance does not keep, and an
    instance's image never changes) and ``BlockDeviceMappings`` (EC2 describes only the
    attached volumes' ids, not their type, size or encryption)."""
    out: dict[str, Any] = {
        "InstanceType": instance.get("InstanceType"),
        "SubnetId": instance.get("SubnetId"),
        "SecurityGroupIds": [g["GroupId"] for g in instance.get("SecurityGroups") or []],
        "IamInstanceProfile": _profile_name(instance.get("IamInstanceProfile")),
        "Tags": tag_list(tag_map(instance.get("Tags"))),
    }
    if "MetadataOptions" in instance:
        out["MetadataOptions"] = project(
            instance["MetadataOptions"], planned.get("MetadataOptions")
        )
    return out


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
            # Its private name and address are assigned at launch: what refers only to them
            # need not wait for the boot.
            early = {
                "PrivateDnsName": instance.get("PrivateDnsName", ""),
                "PrivateIp": instance.get("PrivateIpAddress", ""),
            }
            return Pending("instance is starting", {k: v for k, v in early.items() if v})
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

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        instance = _describe(ctx, physical_id)
        if instance is None or instance["State"]["Name"] in DEAD_STATES:
            return None
        return _live(instance, node.properties)

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        instance = _describe(ctx, physical_id)
        if instance is None or instance["State"]["Name"] in DEAD_STATES:
            raise CannotUpdate(f"the API instance {physical_id} no longer exists")
        live = _live(instance, after)
        for name in ("ImageId", "BlockDeviceMappings"):
            if name in before and name in after and not same(before[name], after[name], name):
                raise CannotUpdate(
                    f"an instance's {name} cannot change while it runs; it is replaced by a "
                    "new instance"
                )
        if "SubnetId" in after and live["SubnetId"] != after["SubnetId"]:
            raise CannotUpdate(
                f"an instance cannot move to another subnet ({live['SubnetId']} -> "
                f"{after['SubnetId']}); it is replaced by a new instance"
            )
        ec2 = ctx.client("ec2")
        if "SecurityGroupIds" in after and not same(
            live["SecurityGroupIds"], after["SecurityGroupIds"]
        ):
            ec2.modify_instance_attribute(
                InstanceId=physical_id, Groups=list(after["SecurityGroupIds"])
            )
        if "IamInstanceProfile" in after or "IamInstanceProfile" in before:
            self._set_profile(ctx, physical_id, after.get("IamInstanceProfile"))
        if "MetadataOptions" in after and not same(
            live.get("MetadataOptions"), after["MetadataOptions"], "MetadataOptions"
        ):
            ec2.modify_instance_metadata_options(InstanceId=physical_id, **after["MetadataOptions"])
        if "Tags" in after:
            to_set, _ = tag_changes(live["Tags"], after["Tags"])
            _, to_remove = tag_changes(before.get("Tags"), after["Tags"])
            to_remove = [key for key in to_remove if key in tag_map(live["Tags"])]
            if to_set:
                ec2.create_tags(Resources=[physical_id], Tags=tag_list(to_set))
            if to_remove:
                ec2.delete_tags(Resources=[physical_id], Tags=[{"Key": k} for k in to_remove])
        if "InstanceType" in after and live["InstanceType"] != after["InstanceType"]:
            self._change_type(ctx, instance, after["InstanceType"])

    @staticmethod
    def _set_profile(ctx: AwsContext, instance_id: str, wanted: Any) -> None:
        """Give the instance the instance profile ``wanted`` (a name or ARN; None: none),
        judged by its association, which is what EC2 changes (an emulator's DescribeInstances
        may keep showing the profile the instance was launched with)."""
        name = _profile_name(wanted)
        ec2 = ctx.client("ec2")
        associations = ec2.describe_iam_instance_profile_associations(
            Filters=[
                {"Name": "instance-id", "Values": [instance_id]},
                {"Name": "state", "Values": ["associating", "associated"]},
            ]
        )["IamInstanceProfileAssociations"]
        current = [_profile_name(a.get("IamInstanceProfile")) for a in associations]
        if current == ([name] if name else []):
            return
        spec = {"Arn": wanted} if str(wanted).startswith("arn:") else {"Name": name}
        try:
            if name is None:
                for association in associations:
                    ec2.disassociate_iam_instance_profile(
                        AssociationId=association["AssociationId"]
                    )
            elif associations:
                ec2.replace_iam_instance_profile_association(
                    IamInstanceProfile=spec, AssociationId=associations[0]["AssociationId"]
                )
            else:
                ec2.associate_iam_instance_profile(IamInstanceProfile=spec, InstanceId=instance_id)
        except ClientError as exc:
            if _is_profile_propagation(exc):
                raise RetryLater(
                    "the instance profile is not yet usable by EC2 (IAM propagation takes ~10 s)"
                ) from exc
            raise

    @staticmethod
    def _change_type(ctx: AwsContext, instance: dict[str, Any], wanted: str) -> None:
        """A new instance type: EC2 changes it only on a stopped instance. Stop, then (on a
        later call) change and start; each step asks to be called again until the next one
        can be taken."""
        ec2 = ctx.client("ec2")
        instance_id, state = instance["InstanceId"], instance["State"]["Name"]
        change = f"{instance['InstanceType']} -> {wanted}"
        if state == "pending":
            raise RetryLater(
                f"the API instance is starting; its type changes ({change}) once it runs"
            )
        if state == "running":
            ec2.stop_instances(InstanceIds=[instance_id])
            raise RetryLater(
                f"stopping the API instance to change its type ({change}); EC2 changes the type "
                "of a stopped instance only, so the API is unavailable until it starts again"
            )
        if state == "stopping":
            raise RetryLater(f"waiting for the API instance to stop to change its type ({change})")
        ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": wanted})
        ec2.start_instances(InstanceIds=[instance_id])

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
