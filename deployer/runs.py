"""What each run does to each record, set when the run starts (or turns into a rollback).

The walker (``deployer.walker``) does the same thing for every run: it creates and updates
what is marked so, then deletes what is marked so. These functions do the marking:

- :func:`records_for_create`: a new deployment, every node created;
- :func:`mark_update`: a change set applied to a live deployment;
- :func:`mark_destroy`: everything deleted;
- :func:`mark_create_rollback`: what a failed or cancelled create made, deleted;
- :func:`mark_update_rollback`: a failed or cancelled update undone: what it created deleted,
  what it updated updated back, what it was going to delete kept.

They change records in memory and return them; the caller saves them (in its transaction).
"""

from __future__ import annotations

from typing import Any

from deployer.changes import ChangeSet
from deployer.constants import ChangeAction, ResourceAction, ResourceState
from deployer.models import ResourceRecord
from designer.graph import ResourceGraph, ResourceNode

A = ChangeAction
ACT = ResourceAction
R = ResourceState

#: The record fields these functions change (saved by the caller).
MARK_FIELDS = [
    "action",
    "settled",
    "state",
    "node",
    "prior_node",
    "prior_applied",
    "attempts",
    "next_check_at",
    "waiting_reason",
    "last_error",
    "started_at",
    "delete_started_at",
    "physical_id",
]


def _node_json(node: ResourceNode, generation: int) -> dict[str, Any]:
    data = node.to_json()
    if generation:
        data["meta"] = {**data["meta"], "generation": generation}
    else:
        data["meta"].pop("generation", None)
    return data


def records_for_create(deployment: Any, graph: ResourceGraph) -> list[ResourceRecord]:
    """One record per node, each to be created (unsaved)."""
    return [
        ResourceRecord(
            deployment=deployment,
            logical_id=node.logical_id,
            type=node.type,
            position=i,
            node=_node_json(node, 0),
            action=ACT.CREATE,
            settled=False,
        )
        for i, node in enumerate(graph.topological_order())
    ]


def mark_update(
    deployment: Any, records: list[ResourceRecord], change_set: ChangeSet, after: ResourceGraph
) -> tuple[list[ResourceRecord], list[ResourceRecord]]:
    """Mark the live records for the change set, and make the records of what it adds or
    replaces. Returns (records changed, records new)."""
    changes = change_set.by_id()
    live = {r.logical_id: r for r in records if r.is_live}
    changed: list[ResourceRecord] = []
    for record in records:
        if record.state == R.DELETED and record.action:
            record.action, record.settled = ACT.NONE, True  # an earlier run's: history now
            changed.append(record)
    next_generation: dict[str, int] = {}
    for record in records:
        next_generation[record.logical_id] = max(
            next_generation.get(record.logical_id, 0), record.generation + 1
        )
    position = {n.logical_id: i for i, n in enumerate(after.topological_order())}
    new: list[ResourceRecord] = []
    for lid, change in changes.items():
        record = live.get(lid)
        if change.action == A.REMOVE:
            if record is not None:
                _mark(record, ACT.DELETE, fresh=True)
                changed.append(record)
            continue
        node = after[lid]
        if change.action == A.MODIFY and record is not None:
            record.prior_node = record.node
            record.prior_applied = record.applied
            record.node = _node_json(node, record.generation)
            _mark(record, ACT.UPDATE, fresh=True)
            changed.append(record)
            continue
        # Added, replaced, or created again after it was deleted outside Gantry: a new
        # resource of the node, its next generation (a name and tags of its own).
        generation = next_generation.get(lid, 0)
        if record is not None:
            if change.repair and change.action == A.ADD:
                # Nothing is left of it to delete.
                record.action, record.settled, record.state = ACT.DELETE, True, R.DELETED
            else:
                _mark(record, ACT.DELETE, fresh=True)
            changed.append(record)
        new.append(
            ResourceRecord(
                deployment=deployment,
                logical_id=lid,
                type=node.type,
                generation=generation,
                position=position[lid],
                node=_node_json(node, generation),
                action=ACT.CREATE,
                settled=False,
            )
        )
    # Unchanged records take the new version's node (its labels and meta), and positions.
    for lid, record in live.items():
        if lid not in changes and lid in after:
            record.node = _node_json(after[lid], record.generation)
            record.position = position[lid]
            if record.action or not record.settled:
                record.action, record.settled = ACT.NONE, True
            changed.append(record)
    return changed, new


def _mark(record: ResourceRecord, action: str, *, fresh: bool = False) -> None:
    """``fresh``: a new run's action (a rollback or a destroy keeps the error that led to it,
    shown until the walk reaches the record)."""
    record.action = action
    record.settled = False
    record.attempts = 0
    record.next_check_at = None
    record.waiting_reason = ""
    if fresh:
        record.last_error = ""


def mark_destroy(records: list[ResourceRecord]) -> list[ResourceRecord]:
    """Every record not yet deleted is deleted (a failed one is tried again)."""
    changed = []
    for record in records:
        if record.state == R.DELETED:
            if record.action:
                record.action, record.settled = ACT.NONE, True  # an earlier run's: history
                changed.append(record)
            continue
        _mark(record, ACT.DELETE)
        if record.state == R.FAILED and record.physical_id:
            record.state = R.READY
        changed.append(record)
    return changed


def mark_create_rollback(records: list[ResourceRecord]) -> list[ResourceRecord]:
    """A create that failed or was cancelled: what it made is deleted."""
    return mark_destroy(records)


def mark_update_rollback(records: list[ResourceRecord]) -> list[ResourceRecord]:
    """An update that failed or was cancelled, undone (CloudFormation's UPDATE_ROLLBACK):
    - what it created (additions, replacements) is deleted;
    - what it updated, or was updating, is updated back to its previous node and properties;
    - what it was going to delete (the replaced, the removed) is kept, since the cleanup that
      deletes them runs only once everything new works.
    """
    changed = []
    for record in records:
        if record.state == R.DELETED:
            continue
        if record.action == ACT.CREATE:
            _mark(record, ACT.DELETE)
            if record.state == R.FAILED and record.physical_id:
                record.state = R.READY
        elif record.action == ACT.UPDATE:
            started = record.settled or record.state in (R.UPDATING, R.FAILED)
            record.node, record.prior_node = record.prior_node, record.node
            if started:
                # Back to its previous node: the walker updates from what is applied now.
                _mark(record, ACT.UPDATE)
                record.state = R.READY
            else:
                record.action, record.settled = ACT.NONE, True
        elif record.action == ACT.DELETE:
            record.action, record.settled = ACT.NONE, True
            record.waiting_reason = ""
        else:
            continue
        changed.append(record)
    return changed


def applied_graph(records: list[ResourceRecord]) -> ResourceGraph:
    """The graph that is live: the node of every live record (the last one applied), in
    creation order."""
    graph = ResourceGraph()
    live = sorted((r for r in records if r.is_live and r.node), key=lambda r: r.position)
    known = {r.logical_id for r in live}
    for record in live:
        node = ResourceNode.from_json(record.node)
        node.depends_on = [d for d in node.depends_on if d in known]
        graph.add(node)
    return graph
