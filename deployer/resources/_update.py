"""What every handler's ``update`` does the same way, so each rule lives in one place.

``update(ctx, node, physical_id, before, after)`` (see ``base.py``) changes in place what differs
between ``before`` (what Gantry believes is applied, ``{}`` for a resource just adopted, or what a
drift check read) and ``after`` (the target):

- :func:`changed`: whether a property differs, compared the way a drift check compares
  (``deployer.drift.normalise``: tags as a map, lists in any order, numbers as AWS spells them,
  policy documents parsed), and always when ``before`` does not know it (so ``before={}`` sets
  everything);
- :func:`refuse_create_only`: a difference in a property AWS cannot change in place (the
  provider schema's ``createOnlyProperties``) raises :class:`CannotUpdate` naming it;
- :func:`tag_changes`: which tags to set and which to remove: the planned ones set, keys that
  ``before`` had and ``after`` has not removed, the gantry tags (and AWS's own ``aws:`` tags)
  never removed;
- :func:`sync_ec2_tags`: the two EC2 calls that make those tag changes.
"""

from __future__ import annotations

from typing import Any

from deployer import schemas
from deployer.drift import normalise
from deployer.resources.base import AwsContext, CannotUpdate, tag_map

#: Tag key prefixes update never removes: Gantry's own (what find() looks resources up by) and
#: AWS's (which AWS refuses to let anyone remove).
_KEPT_PREFIXES = ("gantry:", "aws:")


def changed(before: dict[str, Any], after: dict[str, Any], name: str) -> bool:
    """Whether property ``name`` must be written: it differs between ``before`` and ``after``
    (as a drift check would see it), or ``before`` does not say what it is. A property in
    neither is unchanged."""
    if name not in after:
        return name in before and before[name] not in (None, "", [], {})
    if name not in before:
        return True
    return normalise(before[name], key=name) != normalise(after[name], key=name)


def refuse_create_only(
    type_name: str, before: dict[str, Any], after: dict[str, Any], region: str
) -> None:
    """Raise :class:`CannotUpdate` when a property both sides state differs and AWS cannot
    change it in place (the change set replaces such a resource; an update that gets one is
    given a wrong plan). A property ``before`` does not state (an adopted resource) is taken as
    already right: the create call set it."""
    refused = [
        name
        for name in after
        if name in before
        and changed(before, after, name)
        and schemas.forces_replacement(type_name, name, before[name], after[name], region)
    ]
    if refused:
        raise CannotUpdate(
            f"{type_name}: {', '.join(sorted(refused))} cannot change on an existing resource; "
            "it has to be replaced"
        )


def tag_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(tags to set, keys to remove) to go from ``before``'s ``Tags`` to ``after``'s.

    Every planned tag whose value ``before`` does not show is set (all of them when ``before``
    has no ``Tags``: setting a tag is idempotent); keys ``before`` had that ``after`` does not
    are removed, except the gantry and ``aws:`` ones. A node without ``Tags`` in ``after`` (an
    untagged type) changes nothing.
    """
    if "Tags" not in after:
        return {}, []
    want = tag_map(after.get("Tags"))
    had = tag_map(before.get("Tags")) if "Tags" in before else {}
    to_set = {key: value for key, value in want.items() if had.get(key) != value}
    to_remove = [key for key in had if key not in want and not key.startswith(_KEPT_PREFIXES)]
    return to_set, to_remove


def sync_ec2_tags(
    ctx: AwsContext, resource_id: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Make :func:`tag_changes` on an EC2 resource (CreateTags overwrites a value in place)."""
    to_set, to_remove = tag_changes(before, after)
    ec2 = ctx.client("ec2")
    if to_set:
        ec2.create_tags(
            Resources=[resource_id], Tags=[{"Key": k, "Value": v} for k, v in to_set.items()]
        )
    if to_remove:
        ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": k} for k in to_remove])
