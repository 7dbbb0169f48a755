"""The one small interface every resource handler implements.

A handler turns one graph node (a CloudFormation type with CloudFormation properties, see
``designer/plan.py``) into boto3 calls. The reconciler (``deployer/engine.py``) never sleeps: it
calls ``create`` or ``delete`` once, then ``check_ready`` / ``check_gone`` once per pass until the
resource settles, and schedules the next pass itself.

Contract
- ``find(ctx, node)`` returns every physical resource that belongs to this node: for taggable
  types, those carrying ``gantry:deployment=<ctx.deployment_tag>`` and
  ``gantry:logical-id=<node.logical_id>`` (ignore ones already being deleted/deleted); for
  untaggable ones (routes, associations, attachments, inline policies...), the resource found by
  its natural key (route table + destination, subnet + route table, ...) using the already
  resolved ``props``. More than one result means a lost create response made a duplicate: the
  engine keeps one and deletes the rest.
- ``create(ctx, node, props)`` makes the resource with ``props`` (the node's properties with every
  Ref already resolved to a physical id or attribute) and returns its physical id. Tags
  (``ctx.tags(node)``) go in the create call itself where the API allows it
  (``TagSpecifications``, ``Tags=``); ``ClientToken=ctx.client_token(node)`` where the API takes
  one. Must not wait.
- ``check_ready(ctx, node, physical_id)`` looks once and returns :class:`Ready` (with the
  attributes other nodes reference: see ``ATTRIBUTES``), :class:`Pending` (with a human reason:
  "NAT gateway is pending"), or :class:`Failed` (a human sentence). Never waits.
- ``delete(ctx, node, physical_id)`` starts deletion; "already gone" (NotFound-style errors) is
  success. May raise :class:`RetryLater` (e.g. ``DependencyViolation``: "subnet still has network
  interfaces of the deleted Lambda; AWS releases them within ~20 minutes").
- ``check_gone(ctx, node, physical_id)`` returns :class:`Gone` or :class:`Pending`.

Physical ids follow CloudFormation's ``Ref`` for the type (a role's *name*, a secret's *ARN*, a
load balancer's *ARN*, a subnet's id...), so a resolved Ref is just the physical id. Untaggable
resources get a composite id (``rtb-1|0.0.0.0/0``).

Errors: let botocore's ``ClientError`` propagate; the engine classifies it (``deployer/errors.py``):
throttling and 5xx are retried with backoff, others fail the node with a sentence. Raise
:class:`RetryLater` for conditions known to be transient that AWS reports as errors (IAM role
propagation, DependencyViolation).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from designer.graph import ResourceNode

TAG_DEPLOYMENT = "gantry:deployment"
TAG_LOGICAL_ID = "gantry:logical-id"


@dataclass(frozen=True)
class Ready:
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pending:
    reason: str


@dataclass(frozen=True)
class Failed:
    reason: str


@dataclass(frozen=True)
class Gone:
    pass


class RetryLater(Exception):
    """A transient condition AWS reports as an error; the engine retries after a backoff."""

    def __init__(self, reason: str, *, delay: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class Clients(Protocol):
    def __call__(self, service: str) -> Any: ...


@dataclass
class AwsContext:
    """What a handler needs: clients for the target's account and region, and the tags."""

    deployment_tag: str  # the value of gantry:deployment, e.g. "gd-42"
    region: str
    client: Clients  # client("ec2") -> a boto3 client for the target, retries configured
    spec_tags: dict[str, str] = field(default_factory=dict)

    def tags(self, node: ResourceNode) -> list[dict[str, str]]:
        """Spec tags + Name + the two gantry tags, as AWS's [{"Key", "Value"}] list."""
        tags = dict(self.spec_tags)
        tags["Name"] = node.meta.get("name", node.logical_id)
        tags[TAG_DEPLOYMENT] = self.deployment_tag
        tags[TAG_LOGICAL_ID] = node.logical_id
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def tag_dict(self, node: ResourceNode) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.tags(node)}

    def tag_filters(self, node: ResourceNode) -> list[dict[str, Any]]:
        """EC2 Describe* filters selecting this node's resources by the gantry tags."""
        return [
            {"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [self.deployment_tag]},
            {"Name": f"tag:{TAG_LOGICAL_ID}", "Values": [node.logical_id]},
        ]

    def client_token(self, node: ResourceNode) -> str:
        """A stable idempotency token (<= 64 chars) for APIs that take ClientToken."""
        digest = hashlib.sha256(f"{self.deployment_tag}/{node.logical_id}".encode()).hexdigest()
        return f"gantry-{digest[:48]}"

    def physical_name(self, node: ResourceNode, max_len: int = 64) -> str:
        """A name unique per deployment for resources AWS names account-wide (IAM roles,
        target groups, load balancers): ``<deployment tag>-<kebab logical id>``, shortened with
        a hash when the type's limit is smaller."""
        from designer.plan import kebab

        name = f"{self.deployment_tag}-{kebab(node.logical_id)}"
        if len(name) <= max_len:
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        return f"{name[: max_len - 9]}-{digest}"


class ResourceHandler(Protocol):
    type: ClassVar[str]

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]: ...

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str: ...

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed: ...

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None: ...

    def check_gone(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Gone | Pending: ...


#: The attributes other nodes reference (Ref(..., attr) in the plan), per type: check_ready must
#: return them in Ready.attributes.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "AWS::EC2::EIP": ("AllocationId", "PublicIp"),
    "AWS::IAM::Role": ("Arn",),
    "AWS::IAM::InstanceProfile": ("Arn",),
    "AWS::EC2::Instance": ("PrivateDnsName", "PrivateIp"),
    "AWS::EC2::LaunchTemplate": ("LatestVersionNumber",),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("DNSName",),
}
