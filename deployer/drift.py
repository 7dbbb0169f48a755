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
