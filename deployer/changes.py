"""Change sets: what applying a graph to a live deployment would do, before anything is done.

For every logical id: ``add``, ``modify`` (in place), ``replace`` (a new physical resource, then
the old one goes) or ``remove``; per property the name, before, after, and whether the change
forces replacement. Computed from the live deployment (each live record's node definition,
applied properties and last drift check) and the new graph, so the same function serves
``terraform plan``-style review, an update, and the repair of drift.

Rules, in this order:

1. A property whose change AWS cannot make in place (``createOnlyProperties`` of the provider
   schema, :mod:`deployer.schemas`) replaces the resource.
2. A replaced resource has a new physical id, so every property that refers to it changes too:
   the resource that refers to it is modified, or replaced when that property is create-only
   (CloudFormation's "Replacement: Conditional").
3. Some resources serve one user at a time: an Elastic IP one NAT gateway, an internet gateway
   one VPC. When the user is replaced, create-first needs a new one of those as well.
4. What AWS would refuse, or what would lose data, is refused with the reason (the secret
   holding the API credential is never replaced or removed; a subnet whose new range overlaps a
   subnet that still exists until the old one is deleted).
5. Changes that interrupt traffic are marked with what they interrupt.
6. Drift found by the last check (``deployer.drift``) of a resource the new graph keeps is put
   back: a property changed by hand is modified back, a rule or route added by hand removed,
   a resource deleted by hand created again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from deployer import schemas
from deployer.constants import ChangeAction, ResourceDrift
from designer.graph import ResourceGraph, ResourceNode

A = ChangeAction

#: Pseudo-properties: what a node's ``meta`` adds to the resource as it is built (the user
#: data the deployer renders from the API port and the credential's secret).
USER_DATA = "UserData"
#: Types whose instances configure the API once, at first boot, from their user data: a new
#: port or credential reaches running instances only through new instances. (CloudFormation
#: marks UserData "some interruptions": a stop and start, which would not re-run the setup.)
FIRST_BOOT_USER_DATA = {"AWS::EC2::Instance"}

#: Type -> the property by which it holds a resource that serves only one user at a time, and
#: why (rule 3).
EXCLUSIVE_USE: dict[str, tuple[str, str]] = {
    "AWS::EC2::NatGateway": (
        "AllocationId",
        "an Elastic IP address serves one NAT gateway at a time, so the new NAT gateway needs a "
        "new address",
    ),
    "AWS::EC2::VPCGatewayAttachment": (
        "InternetGatewayId",
        "an internet gateway attaches to one VPC at a time, so the new attachment needs a new "
        "gateway",
    ),
}

#: What replacing (or removing) a resource of a type interrupts, said in the change set.
INTERRUPTS_WHEN_REPLACED = {
    "AWS::EC2::VPC": "everything in the VPC moves to a new one: the API and the Lambda lose "
    "their network until the new one is built",
    "AWS::EC2::Subnet": "what runs in the subnet moves to a new one",
    "AWS::EC2::Instance": "the API is unavailable while the new instance boots (about a minute)",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "the API's address changes; callers are moved "
    "over when the Lambda is updated",
    "AWS::EC2::NatGateway": "the Lambda's internet access drops while its route moves to the "
    "new NAT gateway",
}
INTERRUPTS_WHEN_REMOVED = {
    "AWS::EC2::NatGateway": "the Lambda loses its internet access",
    "AWS::EC2::Instance": "the API goes away",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "the API goes away",
}
#: Never replaced or removed by an update: the API credential lives in it.
KEEP_ALWAYS = {"AWS::SecretsManager::Secret"}


@dataclass
class PropertyChange:
    name: str
    before: Any
    after: Any
    replacement: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "replacement": self.replacement,
        }


@dataclass
class Change:
    logical_id: str
    type: str
    action: str
    label: str = ""
    properties: list[PropertyChange] = field(default_factory=list)
    reason: str = ""
    #: What applying it interrupts ("" when nothing).
    interrupts: str = ""
    #: For a replacement: the new resource is made first, then the old one deleted.
    strategy: str = ""
    #: It puts back what changed outside Gantry.
    repair: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "logical_id": self.logical_id,
            "type": self.type,
            "action": self.action,
            "label": self.label,
            "properties": [p.to_json() for p in self.properties],
            "reason": self.reason,
            "interrupts": self.interrupts,
            "strategy": self.strategy,
            "repair": self.repair,
        }


@dataclass
class ChangeSet:
    changes: list[Change] = field(default_factory=list)
    #: Why it cannot be applied (empty when it can).
    refused: list[str] = field(default_factory=list)

    @property
    def interruptions(self) -> list[Change]:
        return [c for c in self.changes if c.interrupts]

    @property
    def empty(self) -> bool:
        return not self.changes

    def by_id(self) -> dict[str, Change]:
        return {c.logical_id: c for c in self.changes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChangeSet:
        changes = []
        for item in (data or {}).get("changes", []):
            properties = [PropertyChange(**p) for p in item.get("properties", [])]
            fields_ = {k: v for k, v in item.items() if k != "properties"}
            changes.append(Change(**fields_, properties=properties))
        return cls(changes=changes, refused=list((data or {}).get("refused", [])))

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "refused": list(self.refused),
            "interruptions": [
                {"logical_id": c.logical_id, "interrupts": c.interrupts} for c in self.interruptions
            ],
        }


@dataclass
class Live:
    """What a change set knows of one live resource: the node it was built to, the properties
    applied (resolved), its physical id, and its last drift check."""

    node: ResourceNode
    physical_id: str = ""
    applied: dict[str, Any] = field(default_factory=dict)
    drift: str = ""
    drift_differences: list[dict[str, Any]] = field(default_factory=list)


def comparable(node: ResourceNode) -> dict[str, Any]:
    """The node's properties as they are compared (Refs in their JSON form), with the
    pseudo-property the deployer adds from ``meta`` (user data)."""
    props = node.to_json()["properties"]
    if node.meta.get("user_data"):
        props[USER_DATA] = {
            "api_port": node.meta.get("api_port"),
            "credential_from": node.meta.get("credential_from"),
        }
    return props


#: Attributes that an in-place update changes: a launch template whose data changes gets a new
#: version, so what refers to its version number (the Auto Scaling group) is updated too (its
#: instance refresh), and the change set says so.
ATTRIBUTES_AN_UPDATE_CHANGES = {
    "AWS::EC2::LaunchTemplate": ("LatestVersionNumber", "DefaultVersionNumber"),
}
#: Properties whose change leaves those attributes as they are.
_KEEPS_ATTRIBUTES = {"Tags", "TagSpecifications"}


def _attribute_refs(value: Any) -> set[tuple[str, str]]:
    """(logical id, attribute) of every reference in ``value``."""
    if isinstance(value, dict):
        if set(value) == {"Ref", "Attribute"}:
            return {(value["Ref"], value["Attribute"])}
        return {ref for v in value.values() for ref in _attribute_refs(v)}
    if isinstance(value, list):
        return {ref for v in value for ref in _attribute_refs(v)}
    return set()


def _refs(value: Any) -> set[str]:
    """The logical ids ``value`` refers to."""
    return {logical_id for logical_id, _ in _attribute_refs(value)}


def _forces(type_name: str, name: str, before: Any, after: Any, region: str) -> bool:
    if name == USER_DATA:
        return type_name in FIRST_BOOT_USER_DATA
    try:
        return schemas.forces_replacement(type_name, name, before, after, region)
    except KeyError:  # a type the schemas do not know: to be safe, a new resource
        return True


def _shown(
    value: Any, live: dict[str, Live], new: set[str], versioned: frozenset[str] = frozenset()
) -> Any:
    """A property value for people: a Ref to a resource that stays is its physical id; one to
    a resource that is new or replaced is ``(new <logical id>)``, one to the version an update
    makes ``(new version of <logical id>)``."""
    if isinstance(value, dict):
        if set(value) == {"Ref", "Attribute"}:
            target = value["Ref"]
            if target in new or target not in live:
                return f"(new {target})"
            if target in versioned and value["Attribute"] in ATTRIBUTES_AN_UPDATE_CHANGES.get(
                live[target].node.type, ()
            ):
                return f"(new version of {target})"
            suffix = "" if value["Attribute"] == "Id" else f".{value['Attribute']}"
            return f"{live[target].physical_id}{suffix}" if live[target].physical_id else value
        return {k: _shown(v, live, new, versioned) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v, live, new, versioned) for v in value]
    return value


def _overlaps(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))
    except (TypeError, ValueError):
        return False


def change_set(
    live: dict[str, Live], after: ResourceGraph, *, region: str, repair_drift: bool = True
) -> ChangeSet:
    """What applying ``after`` to the live resources ``live`` (by logical id) does."""
    result = ChangeSet()
    changes: dict[str, Change] = {}
    props_before = {lid: comparable(item.node) for lid, item in live.items()}

    def label(lid: str) -> str:
        node = after[lid] if lid in after else live[lid].node
        return str(node.meta.get("label") or lid)

    # 1. What differs, node by node (additions and removals included).
    for node in after.topological_order():
        lid = node.logical_id
        if lid not in live:
            changes[lid] = Change(lid, node.type, A.ADD, label(lid), reason="new in this version")
            continue
        if live[lid].node.type != node.type:
            changes[lid] = Change(
                lid,
                node.type,
                A.REPLACE,
                label(lid),
                reason=f"it becomes a {node.type} (was {live[lid].node.type})",
            )
            continue
        before, now = props_before[lid], comparable(node)
        diffs = []
        for name in sorted(set(before) | set(now)):
            if before.get(name) != now.get(name):
                forces = _forces(node.type, name, before.get(name), now.get(name), region)
                diffs.append(PropertyChange(name, before.get(name), now.get(name), forces))
        if diffs:
            replace = any(d.replacement for d in diffs)
            changes[lid] = Change(
                lid,
                node.type,
                A.REPLACE if replace else A.MODIFY,
                label(lid),
                properties=diffs,
                reason=(
                    "changes a property AWS cannot change in place: "
                    + ", ".join(d.name for d in diffs if d.replacement)
                )
                if replace
                else "",
            )
    for lid, item in live.items():
        if lid not in after:
            changes[lid] = Change(
                lid, item.node.type, A.REMOVE, label(lid), reason="not in this version"
            )

    # 6 (first, because a resource deleted by hand is re-created and cascades like a
    # replacement). Drift on resources the new graph keeps unchanged.
    if repair_drift:
        for lid, item in live.items():
            if lid not in after or lid in changes or not item.drift:
                continue
            node = after[lid]
            if item.drift == ResourceDrift.DELETED:
                changes[lid] = Change(
                    lid,
                    node.type,
                    A.ADD,
                    label(lid),
                    reason=(
                        "deleted outside Gantry; restored from its recovery window, with the "
                        "credential it holds (created again only once that has passed)"
                        if node.type in KEEP_ALWAYS
                        else "deleted outside Gantry; created again"
                    ),
                    repair=True,
                )
            elif item.drift == ResourceDrift.MODIFIED:
                changes[lid] = Change(
                    lid,
                    node.type,
                    A.MODIFY,
                    label(lid),
                    properties=[
                        PropertyChange(d["property"], d.get("actual"), d.get("expected"), False)
                        for d in item.drift_differences
                    ],
                    reason="changed outside Gantry; put back",
                    repair=True,
                )

    # 2 and 3. Cascade new physical ids through the references, until nothing more changes.
    def new_ids() -> set[str]:
        return {
            lid
            for lid, c in changes.items()
            if c.action == A.REPLACE or (c.action == A.ADD and lid in live)
        } | {lid for lid, c in changes.items() if c.action == A.ADD}

    def new_versions() -> set[str]:
        return {
            lid
            for lid, c in changes.items()
            if c.action == A.MODIFY
            and c.type in ATTRIBUTES_AN_UPDATE_CHANGES
            and any(p.name not in _KEEPS_ATTRIBUTES for p in c.properties)
        }

    versioned: dict[int, frozenset[str]] = {}  # id(PropertyChange) -> the versions it follows
    moved = True
    while moved:
        moved = False
        fresh = new_ids()
        bumped = new_versions() - fresh
        for node in after.topological_order():
            lid = node.logical_id
            if lid not in live or (lid in changes and changes[lid].action in (A.REPLACE, A.ADD)):
                continue
            now = comparable(node)
            for name, value in now.items():
                touched = _refs(value) & fresh
                follows = {
                    target
                    for target, attribute in _attribute_refs(value)
                    if target in bumped
                    and attribute in ATTRIBUTES_AN_UPDATE_CHANGES[changes[target].type]
                }
                if (not touched and not follows) or any(
                    p.name == name for p in changes.get(lid, Change("", "", "")).properties
                ):
                    continue
                if not touched:
                    change = changes.setdefault(lid, Change(lid, node.type, A.MODIFY, label(lid)))
                    prop = PropertyChange(name, value, value, False)
                    change.properties.append(prop)
                    versioned[id(prop)] = frozenset(follows)
                    if not change.reason:
                        change.reason = f"refers to the new version of {', '.join(sorted(follows))}"
                    moved = True
                    continue
                forces = _forces(node.type, name, value, {"moved": sorted(touched)}, region)
                change = changes.setdefault(lid, Change(lid, node.type, A.MODIFY, label(lid)))
                change.properties.append(PropertyChange(name, value, value, forces))
                why = f"refers to {', '.join(sorted(touched))}, which gets a new physical id"
                if forces:
                    change.action = A.REPLACE
                    change.reason = why + f" ({name} cannot change in place)"
                elif not change.reason:
                    change.reason = why
                moved = True
        for lid, change in list(changes.items()):
            if change.action != A.REPLACE or change.type not in EXCLUSIVE_USE:
                continue
            prop, why = EXCLUSIVE_USE[change.type]
            for used in _refs(comparable(after[lid]).get(prop)) if lid in after else ():
                if used in live and changes.get(used, Change("", "", "")).action not in (
                    A.REPLACE,
                    A.REMOVE,
                ):
                    changes[used] = Change(
                        used, after[used].type, A.REPLACE, label(used), reason=why
                    )
                    moved = True

    # 4. Refusals.
    regions_before = {item.node.meta.get("region") for item in live.values()} - {None}
    regions_after = {node.meta.get("region") for node in after} - {None}
    if regions_before and regions_after and regions_before != regions_after:
        result.refused.append(
            f"A live deployment stays in its region ({', '.join(sorted(regions_before))}); this "
            f"version is for {', '.join(sorted(regions_after))}. Deploy it to a target in that "
            "region, then destroy this deployment."
        )
    for lid, change in changes.items():
        if change.type in KEEP_ALWAYS and change.action in (A.REPLACE, A.REMOVE) and lid in live:
            verb = "replace" if change.action == A.REPLACE else "remove"
            result.refused.append(
                f"{label(lid)} ({lid}) holds the API credential, which every change keeps; this "
                f"version would {verb} it ({change.reason}). Keep the design's name and region."
            )
    result.refused += _subnet_conflicts(live, after, changes)

    # 5. Interruptions, and the display values.
    fresh = new_ids()
    for change in changes.values():
        if change.action == A.REPLACE:
            change.strategy = "create the new resource, then delete the old one"
            change.interrupts = INTERRUPTS_WHEN_REPLACED.get(change.type, "")
        elif change.action == A.REMOVE and _removal_interrupts(change, live, changes):
            change.interrupts = INTERRUPTS_WHEN_REMOVED.get(change.type, "")
        for prop in change.properties:
            prop.before = _shown(prop.before, live, set())
            prop.after = _shown(prop.after, live, fresh, versioned.get(id(prop), frozenset()))
    order = {n.logical_id: i for i, n in enumerate(after.topological_order())}
    removed = {lid: len(order) + i for i, lid in enumerate(live)}
    result.changes = sorted(
        changes.values(), key=lambda c: order.get(c.logical_id, removed.get(c.logical_id, 0))
    )
    return result


def _removal_interrupts(change: Change, live: dict[str, Live], changes: dict[str, Change]) -> bool:
    """Whether removing a resource interrupts what stays. A NAT gateway removed with its whole
    zone (its route, that route's table and every subnet routed through it all go too) takes
    nothing away from what is left; one whose route or subnets stay does."""
    if change.type != "AWS::EC2::NatGateway":
        return True

    def removed(lid: str) -> bool:
        return lid in changes and changes[lid].action == A.REMOVE

    def refers(item: Live, prop: str, target: str) -> bool:
        return target in _refs(comparable(item.node).get(prop))

    for lid, item in live.items():
        if item.node.type != "AWS::EC2::Route" or not refers(
            item, "NatGatewayId", change.logical_id
        ):
            continue
        if not removed(lid):
            return True
        table = next(iter(_refs(comparable(item.node).get("RouteTableId"))), "")
        for other, assoc in live.items():
            if (
                assoc.node.type == "AWS::EC2::SubnetRouteTableAssociation"
                and refers(assoc, "RouteTableId", table)
                and not removed(other)
            ):
                return True
    return False


def _subnet_conflicts(
    live: dict[str, Live], after: ResourceGraph, changes: dict[str, Change]
) -> list[str]:
    """A new subnet is created while the old ones still exist (they go at the end), so its
    range may not overlap one that is being replaced or removed in the same VPC."""
    vpc_replaced = any(
        c.type == "AWS::EC2::VPC" and c.action == A.REPLACE for c in changes.values()
    )
    if vpc_replaced:
        return []
    leaving = [
        (lid, item.node.properties.get("CidrBlock"))
        for lid, item in live.items()
        if item.node.type == "AWS::EC2::Subnet"
        and changes.get(lid, Change("", "", "")).action in (A.REPLACE, A.REMOVE)
    ]
    refused = []
    for lid, change in changes.items():
        if change.type != "AWS::EC2::Subnet" or change.action not in (A.ADD, A.REPLACE):
            continue
        cidr = after[lid].properties.get("CidrBlock")
        for old_lid, old_cidr in leaving:
            if _overlaps(cidr, old_cidr):
                refused.append(
                    f"{after[lid].meta.get('label') or lid} would get {cidr} while "
                    f"{old_lid} still holds {old_cidr} (it is deleted only once its "
                    "replacement works), and AWS refuses overlapping subnets in one VPC. Move "
                    "it to a range that overlaps no current subnet, apply, then move it again "
                    "if you need that range."
                )
    return refused


def live_of(records: Iterable[Any]) -> dict[str, Live]:
    """The :class:`Live` view of a deployment's live records (``ResourceRecord`` rows)."""
    result = {}
    for record in records:
        if not record.is_live or not record.node:
            continue
        result[record.logical_id] = Live(
            node=ResourceNode.from_json(record.node),
            physical_id=record.physical_id,
            applied=record.applied or {},
            drift=record.drift,
            drift_differences=list(record.drift_differences or []),
        )
    return result
