"""Helpers shared by the compute and load-balancing handlers (instance, launch template, Auto
Scaling group, ELBv2, ACM, Lambda). EC2 basics (error codes, TagSpecifications) come from
``_ec2``; what lives here is what those handlers need beyond it:

- :func:`node_tags`: the tag set a resource is created with (``ctx.owns`` is the find-by-tags
  test for services whose list calls cannot filter by tag: ELBv2, ACM, Lambda).
- :func:`tag_changes`: what an update sets and removes to take a resource's tags from
  ``before`` to ``after`` (the gantry tags are never removed).
- :func:`project` and :func:`differing`: a live value in the shape the plan gives it, and which
  properties an update has to send (compared the way a drift check compares them).
- :func:`elbv2_tagged`: which ELBv2 ARNs carry the node's gantry tags (DescribeTags, 20 at a
  time).
- :func:`request_token`: a ClientToken that changes when the request does.
- :func:`resolve_image_id`: CloudFormation's ``resolve:ssm:`` AMI reference, resolved.
- :func:`credential_secret_arn` and :func:`api_port`: the two values the API's user data needs
  that are not CloudFormation properties of the instance or launch template.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from deployer.drift import normalise
from deployer.resources._ec2 import error_code
from deployer.resources.base import TAG_DEPLOYMENT, AwsContext, RetryLater, tag_map
from designer.graph import ResourceNode

#: DescribeTags (ELBv2) takes at most 20 ARNs per call.
ELBV2_TAG_BATCH = 20
SSM_PREFIX = "resolve:ssm:"
#: What the fallback looks for when the SSM parameter cannot be read: the AL2023 standard AMI
#: (the name pattern of ``al2023-ami-kernel-default-x86_64``; "minimal" images are excluded).
AL2023_NAME_PATTERN = "al2023-ami-2023*-x86_64"


def node_tags(
    ctx: AwsContext, node: ResourceNode, props: dict[str, Any] | None = None
) -> dict[str, str]:
    """The node's CloudFormation ``Tags`` (``[{"Key", "Value", ...}]``) with the context's tags
    (spec tags, ``Name`` and the two gantry tags) winning on a clash: the gantry tags are what
    find() looks resources up by."""
    tags = {t["Key"]: t["Value"] for t in (props or {}).get("Tags") or []}
    tags.update(ctx.tag_dict(node))
    return tags


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


#: Tag key prefixes an update never removes: Gantry's own (what find() and ownership rely on)
#: and AWS's (``aws:...``, which only AWS may write).
KEPT_TAG_PREFIXES = ("gantry:", "aws:")


def tag_changes(before: Any, after: Any) -> tuple[dict[str, str], list[str]]:
    """``(to_set, to_remove)`` taking tags ``before`` (any AWS shape) to ``after``: the keys of
    ``after`` whose value ``before`` does not have, and the keys ``before`` has that ``after``
    has not, except Gantry's and AWS's own. With ``before`` empty (a resource just adopted)
    every tag of ``after`` is set, which is idempotent."""
    old, new = tag_map(before), tag_map(after)
    to_set = {key: value for key, value in new.items() if old.get(key) != value}
    to_remove = [key for key in old if key not in new and not key.startswith(KEPT_TAG_PREFIXES)]
    return to_set, to_remove


def project(live: Any, planned: Any) -> Any:
    """``live`` (what AWS describes) cut to the shape of ``planned`` (what the plan sets): of a
    structure the provider schema defines (``MetadataOptions``, ``VpcConfig``, a listener's
    actions) only the keys the plan gives, so the fields AWS adds with their defaults
    (``VpcId``, ``HttpProtocolIpv6``, ``ForwardConfig``...) are not taken for drift. A list of
    structures is cut item by item to the keys any planned item has. Free-form maps (a
    function's environment variables, tags) must not go through here: a key added to them by
    hand is drift."""
    if isinstance(planned, dict) and isinstance(live, dict):
        return {key: project(live[key], planned[key]) for key in planned if key in live}
    if isinstance(planned, list | tuple) and isinstance(live, list | tuple):
        template: dict[str, Any] = {}
        for item in planned:
            if isinstance(item, dict):
                template = _merged(template, item)
        if not template:
            return list(live)
        return [project(item, template) for item in live]
    return live


def _merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merged(out[key], value)
        else:
            out.setdefault(key, value)
    return out


def same(a: Any, b: Any, key: str = "") -> bool:
    """Whether two property values are equal the way a drift check compares them (numbers and
    booleans as AWS spells them, lists in any order, tags as maps)."""
    return normalise(a, key=key) == normalise(b, key=key)


def differing(
    current: dict[str, Any], wanted: dict[str, Any], names: Iterable[str]
) -> dict[str, Any]:
    """Of ``names``, the properties ``wanted`` has whose value ``current`` does not (compared
    as a drift check compares them), with their wanted values: what an update sends."""
    return {
        name: wanted[name]
        for name in names
        if name in wanted and not same(current.get(name), wanted[name], name)
    }


def elbv2_tagged(ctx: AwsContext, node: ResourceNode, arns: Iterable[str]) -> list[str]:
    """The ARNs among ``arns`` (load balancers, target groups, listeners) that carry the node's
    gantry tags. ELBv2 has no tag filter on its describe calls, so this is list-then-check."""
    elbv2 = ctx.client("elbv2")
    arns = list(arns)
    found: list[str] = []
    for start in range(0, len(arns), ELBV2_TAG_BATCH):
        batch = arns[start : start + ELBV2_TAG_BATCH]
        try:
            descriptions = elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]
        except ClientError as exc:
            # A resource deleted between the list and this call fails the whole batch: look at
            # the survivors one by one.
            if not error_code(exc).endswith("NotFound"):
                raise
            if len(batch) > 1:
                found += [arn for arn in batch if elbv2_tagged(ctx, node, [arn])]
            continue
        found += [d["ResourceArn"] for d in descriptions if ctx.owns(node, d.get("Tags"))]
    return found


def elbv2_tags(ctx: AwsContext, arn: str) -> list[dict[str, str]]:
    """The tags of one ELBv2 resource (load balancer, target group, listener)."""
    descriptions = ctx.client("elbv2").describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return tag_list(tag_map(descriptions[0].get("Tags") if descriptions else []))


def set_elbv2_tags(
    ctx: AwsContext, arn: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Take an ELBv2 resource's tags from ``before["Tags"]`` to ``after["Tags"]`` (AddTags
    overwrites the values of keys it names; the gantry tags are never removed)."""
    if "Tags" not in after:
        return
    to_set, to_remove = tag_changes(before.get("Tags"), after["Tags"])
    elbv2 = ctx.client("elbv2")
    if to_set:
        elbv2.add_tags(ResourceArns=[arn], Tags=tag_list(to_set))
    if to_remove:
        elbv2.remove_tags(ResourceArns=[arn], TagKeys=to_remove)


def request_token(ctx: AwsContext, node: ResourceNode, request: dict[str, Any]) -> str:
    """A ClientToken for this node *and these exact parameters*: ``ctx.client_token(node)``
    combined with a digest of the request.

    EC2 remembers a token for a long time (RunInstances: at least 24 hours after the instance
    is terminated) and answers ``IdempotentParameterMismatch`` when the same token comes back
    with other parameters, e.g. a re-create after a destroy once the AMI parameter moved to a
    newer image. A retry after a lost response repeats the same parameters, so it still gets
    the same token and no duplicate.
    """
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode())
    return derived_token(ctx.client_token(node), digest.hexdigest())


def derived_token(token: str, salt: str) -> str:
    """A new token (<= 64 chars) determined by ``token`` and ``salt``."""
    return "gantry-" + hashlib.sha256(f"{token}/{salt}".encode()).hexdigest()[:48]


def is_emulator(client: Any) -> bool:
    """True when ``client`` talks to something other than AWS (the moto server in dev/tests)."""
    host = urlparse(client.meta.endpoint_url).hostname or ""
    return not (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))


def resolve_image_id(ctx: AwsContext, image_id: str) -> str:
    """An AMI id for ``image_id``, which may be CloudFormation's ``resolve:ssm:<parameter>``.

    The chain, first success wins:

    1. the SSM public parameter (``/aws/service/ami-amazon-linux-latest/...``), what
       CloudFormation itself would resolve;
    2. if the parameter cannot be read (it is missing from an emulator, or the caller may not
       read SSM), the newest Amazon-owned AL2023 x86_64 standard image by ``CreationDate``;
    3. only against an emulator, which has no real images at all: any image it knows, so a
       sandbox deployment still runs. Against AWS this step is never taken.

    It is resolved once, at create time, like a CloudFormation dynamic reference: the instance
    or launch-template version records the AMI it was made with.
    """
    if not image_id.startswith(SSM_PREFIX):
        return image_id
    parameter = image_id[len(SSM_PREFIX) :]
    try:
        return ctx.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) not in {"ParameterNotFound", "AccessDeniedException"}:
            raise
    ec2 = ctx.client("ec2")
    images = ec2.describe_images(
        Owners=["amazon"],
        Filters=[
            {"Name": "name", "Values": [AL2023_NAME_PATTERN]},
            {"Name": "architecture", "Values": ["x86_64"]},
            {"Name": "state", "Values": ["available"]},
        ],
    )["Images"]
    if not images and is_emulator(ec2):
        images = ec2.describe_images()["Images"]
    if not images:
        raise LookupError(
            f"no AMI for {parameter}: the SSM parameter is unreadable and no Amazon Linux 2023 "
            "image is visible in this region"
        )
    newest = max(images, key=lambda image: (image.get("CreationDate") or "", image["ImageId"]))
    return newest["ImageId"]


def credential_secret_arn(ctx: AwsContext, node: ResourceNode) -> str:
    """The ARN of the secret holding the API credential, for the user data.

    The plan names the secret's node in ``meta["credential_from"]`` rather than in a property
    (user data is not a CloudFormation property the engine resolves), so the secret is found
    the way every Gantry resource is: by its two gantry tags. It is a dependency of the node,
    so it exists by now; a secret scheduled for deletion is not listed.
    """
    logical_id = node.meta.get("credential_from")
    if not logical_id:
        raise ValueError(f"{node.logical_id} has no meta credential_from: no secret to read")
    wanted = ResourceNode(logical_id=logical_id, type="AWS::SecretsManager::Secret")
    paginator = ctx.client("secretsmanager").get_paginator("list_secrets")
    arns = [
        secret["ARN"]
        for page in paginator.paginate(
            Filters=[
                {"Key": "tag-key", "Values": [TAG_DEPLOYMENT]},
                {"Key": "tag-value", "Values": [ctx.deployment_tag]},
            ]
        )
        for secret in page["SecretList"]
        if ctx.owns(wanted, secret.get("Tags")) and not secret.get("DeletedDate")
    ]
    if len(arns) == 1:
        return arns[0]
    if not arns:
        raise RetryLater(f"the API credential secret ({logical_id}) is not visible yet")
    raise RetryLater(
        f"{len(arns)} secrets carry the tags of {logical_id}; waiting for the duplicates to go"
    )


def api_port(node: ResourceNode) -> int:
    """The port the API listens on, from the plan's ``meta["api_port"]``.

    Neither ``AWS::EC2::Instance`` nor ``AWS::EC2::LaunchTemplate`` has a property for it, and
    guessing 443 would silently break a spec with another port (the ALB's health checks would
    fail and the Auto Scaling group would replace instances in a loop), so its absence is an
    error.
    """
    port = node.meta.get("api_port")
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(
            f"{node.logical_id} has no meta api_port: the plan must say which port the API "
            "listens on so the instance's user data can serve it"
        )
    return port
