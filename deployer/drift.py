"""Drift: what AWS reports now against what Gantry applied.

Every handler's ``read`` gives a resource's live properties under CloudFormation names; the
record keeps the properties last applied. :func:`compare` says which differ, after putting both
in one shape (tags as a map without AWS's own ``aws:`` keys, lists in any order, numbers and
booleans as AWS spells them, policy documents parsed). Security groups and route tables are
compared whole: their ``Rules`` and ``Routes`` hold every rule or route AWS has on them, so one
added by hand (a world-open SSH rule on SG-API) is drift, not only a planned one changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deployer import schemas

#: Pseudo-properties of containers compared whole (the handlers' ``read`` returns them).
RULES = "Rules"
ROUTES = "Routes"


@dataclass(frozen=True)
class Difference:
    property: str
    expected: Any
    actual: Any

    def to_json(self) -> dict[str, Any]:
        return {"property": self.property, "expected": self.expected, "actual": self.actual}


def normalise(value: Any, *, key: str = "") -> Any:
    """One shape for values AWS and the plan spell differently."""
    if key == "Tags":
        return {
            str(k): normalise(v)
            for k, v in _tag_map(value).items()
            if not str(k).startswith("aws:")
        }
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "{[":
            try:
                return normalise(json.loads(text), key=key)
            except ValueError:
                pass
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, dict):
        return {k: normalise(v, key=k) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        items = [normalise(v, key=key) for v in value]
        if len(items) == 1 and key in ("Action", "Resource", "Principal", "Service"):
            return items[0]  # IAM: "x" and ["x"] are one statement
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _tag_map(tags: Any) -> dict[str, Any]:
    if isinstance(tags, dict):
        return dict(tags)
    return {t.get("Key"): t.get("Value") for t in tags or [] if isinstance(t, dict)}


def compare(
    type_name: str, expected: dict[str, Any], actual: dict[str, Any], region: str = "us-east-1"
) -> list[Difference]:
    """The properties of ``expected`` (what was applied) that ``actual`` (what ``read``
    returned) contradicts. A property ``read`` did not return, or one AWS never returns
    (write-only), is not compared."""
    differences = []
    for name, want in expected.items():
        if name not in actual:
            continue
        try:
            if schemas.is_write_only(type_name, name, region):
                continue
        except KeyError:
            pass
        got = actual[name]
        if normalise(want, key=name) != normalise(got, key=name):
            differences.append(Difference(name, want, got))
    return differences


# --- the check ------------------------------------------------------------------------------


@dataclass
class Finding:
    """One live resource's drift: ``in_sync``, ``modified`` (with differences) or
    ``deleted``."""

    logical_id: str
    type: str
    drift: str
    differences: list[Difference]

    def to_json(self) -> dict[str, Any]:
        return {
            "logical_id": self.logical_id,
            "type": self.type,
            "drift": self.drift,
            "differences": [d.to_json() for d in self.differences],
        }


@dataclass
class DriftReport:
    resources: list[Finding]

    @property
    def drifted(self) -> list[Finding]:
        return [r for r in self.resources if r.drift != IN_SYNC]

    @property
    def status(self) -> str:
        return DRIFTED if self.drifted else IN_SYNC

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "resources": [r.to_json() for r in self.resources]}


IN_SYNC, MODIFIED, DELETED, DRIFTED = "in_sync", "modified", "deleted", "drifted"

#: Rule types and the property naming the group they belong to; route: its table.
_RULE_TYPES = {"AWS::EC2::SecurityGroupIngress": False, "AWS::EC2::SecurityGroupEgress": True}


def expected_properties(records: list[Any], ctx: Any) -> dict[int, dict[str, Any]]:
    """What each live record should look like, by ``id(record)``: the properties last applied
    (or, for a resource made before Gantry recorded them, its node resolved now), and for
    security groups and route tables the whole set of planned rules or routes."""
    from deployer.resources._rules import rule_text_of_props
    from deployer.resources.route import route_text_of_props
    from deployer.walker import Unresolvable, live_by_lid, node_properties

    live = live_by_lid(records)
    expected: dict[int, dict[str, Any]] = {}
    resolved: dict[int, dict[str, Any]] = {}
    for record in live.values():
        node = _node(record)
        try:
            resolved[id(record)] = node_properties(node, live, ctx)
        except Unresolvable:
            resolved[id(record)] = {}
        expected[id(record)] = dict(record.applied or resolved[id(record)])
    by_physical = {r.physical_id: r for r in live.values() if r.physical_id}
    for record in live.values():
        if record.type == "AWS::EC2::SecurityGroup":
            expected[id(record)][RULES] = []
        elif record.type == "AWS::EC2::RouteTable":
            expected[id(record)][ROUTES] = []
    for record in live.values():
        props = expected[id(record)] or resolved[id(record)]
        if record.type in _RULE_TYPES:
            group = by_physical.get(props.get("GroupId", ""))
            if group is not None:
                expected[id(group)][RULES].append(
                    rule_text_of_props(props, egress=_RULE_TYPES[record.type])
                )
        elif record.type == "AWS::EC2::Route":
            table = by_physical.get(props.get("RouteTableId", ""))
            if table is not None:
                expected[id(table)][ROUTES].append(route_text_of_props(props))
    return expected


def _node(record: Any):
    from designer.graph import ResourceNode

    return ResourceNode.from_json(record.node)


def drift_read(records: list[Any], ctx: Any) -> DriftReport:
    """Read every live resource (in parallel threads) and compare it with what was applied."""
    from concurrent.futures import ThreadPoolExecutor

    from deployer.resources import handler_for

    checked = [r for r in records if r.is_live and r.physical_id and r.node]
    expected = expected_properties(records, ctx)

    def read(record: Any) -> dict[str, Any] | None:
        return handler_for(record.type).read(ctx, _node(record), record.physical_id)

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="gantry-drift") as pool:
        actual = list(pool.map(read, checked))
    results = []
    for record, got in zip(checked, actual, strict=True):
        if got is None:
            results.append(Finding(record.logical_id, record.type, DELETED, []))
            continue
        differences = compare(record.type, expected[id(record)], got, ctx.region)
        results.append(
            Finding(
                record.logical_id, record.type, MODIFIED if differences else IN_SYNC, differences
            )
        )
    return DriftReport(results)


def drift_status_of(records: list[Any]) -> str:
    """A deployment's drift status from its live records' last checks: drifted when one is,
    in sync when all were found so, else not known."""
    live = [r for r in records if r.is_live]
    if any(r.drift in (MODIFIED, DELETED) for r in live):
        return DRIFTED
    if live and all(r.drift == IN_SYNC for r in live):
        return IN_SYNC
    return ""
