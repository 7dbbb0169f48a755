"""The one small interface every resource handler implements.

A handler turns one graph node (a CloudFormation type with CloudFormation properties, see
``designer/plan.py``) into boto3 calls. The reconciler (``deployer/engine.py``) never sleeps: it
calls ``create`` or ``delete`` once, then ``check_ready`` / ``check_gone`` once per pass until the
resource settles, and schedules the next pass itself.

Contract
- ``find(ctx, node)`` returns every physical resource that belongs to this node: for taggable
  types, those :meth:`AwsContext.owns` (``gantry:deployment=<ctx.deployment_tag>``,
  ``gantry:installation=<ctx.installation>`` and ``gantry:logical-id=<node.logical_id>``;
  ignore ones already being deleted/deleted); for
  untaggable ones (routes, associations, attachments, inline policies...), the resource found by
  its natural key (route table + destination, subnet + route table, ...) using the already
  resolved ``props``. More than one result means a lost create response made a duplicate: the
  engine keeps one and deletes the rest.
- ``create(ctx, node, props)`` makes the resource with ``props`` (the node's properties with every
  Ref already resolved to a physical id or attribute) and returns its physical id. Tags
  (``ctx.tags(node)``) go in the create call itself where the API allows it
  (``TagSpecifications``, ``Tags=``); ``ClientToken=ctx.client_token(node)`` where the API takes
  one. Must not wait.
  When the create call's answer already shows the resource usable, it returns
  :class:`Created` (the id with the attributes ``check_ready`` would give) and is not looked
  at again.
- ``check_ready(ctx, node, physical_id)`` looks once and returns :class:`Ready` (with the
  attributes other nodes reference: see ``ATTRIBUTES``), :class:`Pending` (with a human reason:
  "NAT gateway is pending"), or :class:`Failed` (a human sentence). Never waits.
- ``delete(ctx, node, physical_id)`` starts deletion; "already gone" (NotFound-style errors) is
  success. May raise :class:`RetryLater` (e.g. ``DependencyViolation``: "subnet still has network
  interfaces of the deleted Lambda; AWS releases them within ~20 minutes").
- ``check_gone(ctx, node, physical_id)`` returns :class:`Gone` or :class:`Pending`.
- ``read(ctx, node, physical_id)`` returns the live properties under CloudFormation names, in
  the shapes of the resolved properties the handler is given (ids where the plan has Refs), for
  every property the plan sets on the type that AWS reports back (not write-only ones such as
  a secret's ``GenerateSecretString``), ``Tags`` as AWS's list; ``None`` when AWS does not know
  the resource or it is being deleted. ``deployer.drift.compare`` compares it with what was
  applied. Security groups also return ``Rules`` and route tables ``Routes``: every rule or
  non-local route AWS has on them, as the canonical strings of ``_rules.rule_text`` /
  ``route.route_text``, so what was added by hand is seen.
- ``update(ctx, node, physical_id, before, after)`` changes in place what differs between
  ``before`` (what Gantry believes is applied: the last applied properties, ``{}`` for a
  resource just adopted, or what a drift check read) and ``after`` (the target, resolved), for
  the properties AWS can change in place, and returns without waiting (``check_ready`` is
  called until Ready). It converges whatever ``before`` says (a wrong ``before`` costs calls,
  never correctness), and raises :class:`CannotUpdate` for a difference it cannot make in place
  (the change set replaces such a resource). Tags: the planned ones set, keys that ``before``
  had and ``after`` does not removed; the gantry tags never removed. ``Rules``/``Routes`` in
  ``after`` are what may stay: the others in ``before`` are revoked or deleted (planned ones
  are created by their own nodes).
- ``create`` leaves the resource as its properties say (attributes, policies, retention, the
  default egress rule revoked...), typically by calling ``update(..., {}, props)`` for what the
  create call cannot set; ``check_ready`` only looks and never changes anything.

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
TAG_INSTALLATION = "gantry:installation"
TAG_LOGICAL_ID = "gantry:logical-id"
#: On a replacement (a node's next resource, made while its predecessor still exists): which
#: one it is. The first resource of a node carries none, as before replacements existed.
TAG_GENERATION = "gantry:generation"
#: The tag keys Gantry owns on every resource (a spec tag may not use them).
GANTRY_TAGS = (TAG_DEPLOYMENT, TAG_INSTALLATION, TAG_LOGICAL_ID, TAG_GENERATION)


@dataclass(frozen=True)
class Ready:
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pending:
    reason: str
    #: Attributes AWS already answered for a resource that is not ready yet (an instance's
    #: PrivateDnsName while it boots, a load balancer's DNSName while it provisions): a node
    #: that refers only to these (``EARLY_ATTRIBUTES``) need not wait for readiness.
    attributes: dict[str, Any] = field(default_factory=dict)


class Created(str):
    """What ``create`` returns when its own answer already shows the resource ready: the
    physical id (a ``str``, as every create returns) carrying the :class:`Ready` that
    ``check_ready`` would give. For what AWS's API makes usable when the create call answers
    (a route table, a rule, a role...): the walker does not describe it again. A create
    that botocore had to retry is still looked at (its answer may be a retry's)."""

    ready: Ready

    def __new__(cls, physical_id: str, attributes: dict[str, Any] | None = None) -> Created:
        made = super().__new__(cls, physical_id)
        made.ready = Ready(dict(attributes or {}))
        return made


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


class CannotUpdate(Exception):
    """A difference AWS cannot make in place (the change set should have replaced it)."""


class Clients(Protocol):
    def __call__(self, service: str) -> Any: ...


def tag_map(tags: Any) -> dict[str, str]:
    """Tags as ``{key: value}`` from any of AWS's shapes: a dict already (Lambda, Logs), or a
    ``[{"Key", "Value"}]`` list (EC2, IAM, ELBv2, Secrets Manager...)."""
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {t.get("Key"): t.get("Value") for t in tags or [] if isinstance(t, dict)}


def fit_name(base: str, suffix: str, max_len: int) -> str:
    """``<base>-<suffix>`` in at most ``max_len`` characters: the readable base is shortened,
    never the suffix that makes the name unique."""
    room = max_len - len(suffix) - 1
    return f"{base[:room].rstrip('-/')}-{suffix}"


def generation_of(node: ResourceNode) -> int:
    """Which resource of the node this is: 0 for the first, one more for each replacement."""
    return int(node.meta.get("generation") or 0)


@dataclass
class AwsContext:
    """What a handler needs: clients for the target's account and region, and who owns what.

    ``deployment_tag`` is the deployment's identity, the value of ``gantry:deployment``: a
    random id unique across installations and never reused (``gd-<n>`` only for deployments
    made before identities were random). ``installation`` is this installation's id, the value
    of ``gantry:installation`` ("" for those older deployments, whose resources never carried
    it). ``name_suffix`` is the short part of the identity that names AWS makes unique per
    account carry ("" for the older deployments, which keep the names they were made with).
    """

    deployment_tag: str
    region: str
    client: Clients  # client("ec2") -> a boto3 client for the target, retries configured
    spec_tags: dict[str, str] = field(default_factory=dict)
    installation: str = ""
    name_suffix: str = ""
    #: The design's name: the readable start of every generated name.
    stack_name: str = ""

    def tags(self, node: ResourceNode) -> list[dict[str, str]]:
        """Spec tags + Name + the gantry tags, as AWS's [{"Key", "Value"}] list."""
        tags = dict(self.spec_tags)
        tags["Name"] = node.meta.get("name", node.logical_id)
        tags[TAG_DEPLOYMENT] = self.deployment_tag
        if self.installation:
            tags[TAG_INSTALLATION] = self.installation
        tags[TAG_LOGICAL_ID] = node.logical_id
        if generation_of(node):
            tags[TAG_GENERATION] = str(generation_of(node))
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def tag_dict(self, node: ResourceNode) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.tags(node)}

    def owns(self, node: ResourceNode, tags: Any) -> bool:
        """Whether a resource with these tags is this node's: this deployment's exact identity,
        this installation, this logical id. The one test every find() applies, whatever the
        service's tag filters did or did not do (moto ignores some, and a filter silently
        dropped must never make find() adopt another deployment's or installation's resource).
        """
        found = tag_map(tags)
        if found.get(TAG_DEPLOYMENT) != self.deployment_tag:
            return False
        if found.get(TAG_LOGICAL_ID) != node.logical_id:
            return False
        if found.get(TAG_GENERATION, "0") != str(generation_of(node)):
            return False  # the node's predecessor or successor, not this resource
        if self.installation:
            return found.get(TAG_INSTALLATION) == self.installation
        # A deployment made before installations were tagged: its resources carry none.
        return TAG_INSTALLATION not in found

    def owns_deployment(self, tags: Any) -> bool:
        """Whether a resource with these tags belongs to this deployment (any node)."""
        found = tag_map(tags)
        if found.get(TAG_DEPLOYMENT) != self.deployment_tag:
            return False
        if self.installation:
            return found.get(TAG_INSTALLATION) == self.installation
        return TAG_INSTALLATION not in found

    def tag_filters(self, node: ResourceNode) -> list[dict[str, Any]]:
        """EC2 Describe* filters selecting this node's resources by the gantry tags."""
        filters = [
            {"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [self.deployment_tag]},
            {"Name": f"tag:{TAG_LOGICAL_ID}", "Values": [node.logical_id]},
        ]
        if self.installation:
            filters.append({"Name": f"tag:{TAG_INSTALLATION}", "Values": [self.installation]})
        return filters

    def client_token(self, node: ResourceNode) -> str:
        """A stable idempotency token (<= 64 chars) for APIs that take ClientToken: one per
        deployment, node and generation (a replaced resource is a new one)."""
        key = f"{self.deployment_tag}/{node.logical_id}"
        generation = generation_of(node)
        if generation:
            key += f"/{generation}"
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"gantry-{digest[:48]}"

    def suffix(self, node: ResourceNode) -> str:
        """The short, unique part of this node's generated names: the deployment's own for
        the first resource of a node, another one for each replacement (its predecessor
        still holds the first name while the new one is created)."""
        generation = generation_of(node)
        if not generation:
            return self.name_suffix
        key = f"{self.deployment_tag}/{node.logical_id}/{generation}"
        return hashlib.sha256(key.encode()).hexdigest()[: len(self.name_suffix) or 8]

    def unique_name(self, node: ResourceNode, base: str, max_len: int) -> str:
        """A name the plan gave (a function's, a log group's...) made unique per account:
        ``<base>-<suffix>``, as CloudFormation's generated names are. Unchanged for the
        deployments made before names carried the identity (their resources have these
        names already)."""
        suffix = self.suffix(node)
        return fit_name(base, suffix, max_len) if suffix else base

    def physical_name(self, node: ResourceNode, max_len: int = 64) -> str:
        """The name of a resource the plan does not name (IAM roles, instance profiles, target
        groups, load balancers, launch templates, Auto Scaling groups): the design's name and
        the node's (``orders-lambda-role``), then the identity's short part, so two designs
        of the same name, in two teams or two installations, deploy side by side."""
        from designer.plan import kebab

        suffix = self.suffix(node)
        if not suffix:  # before names carried the identity: <deployment tag>-<kebab logical id>
            name = f"{self.deployment_tag}-{kebab(node.logical_id)}"
            if len(name) <= max_len:
                return name
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            return f"{name[: max_len - 9]}-{digest}"
        # From the logical id, not the node's meta: a handler that names another node's
        # resource (an instance profile naming its role) has only the logical id.
        base = "-".join(part for part in (self.stack_name, kebab(node.logical_id)) if part)
        return fit_name(base, suffix, max_len)


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

    def read(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> dict[str, Any] | None: ...

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None: ...


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

#: Attributes AWS answers when the resource is created, long before it is ready, per type:
#: check_ready returns them in Pending.attributes, and a node that refers to nothing else of
#: the resource is created without waiting for it to be ready (the walker's ``ready_for``).
EARLY_ATTRIBUTES: dict[str, frozenset[str]] = {
    "AWS::EC2::Instance": frozenset({"PrivateDnsName", "PrivateIp"}),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": frozenset({"DNSName"}),
}
