"""The resource graph: the one model every view (diagram, tables, cost, exports, deployer) reads.

A node has a stable logical id (CloudFormation style, e.g. ``LambdaSubnet1``), the CloudFormation
type name of the resource it becomes, the properties it is created with, and the logical ids it
depends on (real AWS creation order: a route after its gateway, a subnet after its VPC...).
``meta`` carries facts that are not CloudFormation properties but that views need (the subnet's
role and AZ, which NAT a route goes through), so no view has to re-derive them from the spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ref:
    """A reference to another node's physical id (CloudFormation's ``Ref``/``GetAtt``)."""

    logical_id: str
    attribute: str = "Id"

    def to_json(self) -> dict[str, str]:
        return {"Ref": self.logical_id, "Attribute": self.attribute}


@dataclass
class ResourceNode:
    logical_id: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> ResourceNode:
        """The inverse of :meth:`to_json`: Refs come back as :class:`Ref`."""
        return cls(
            logical_id=item["logical_id"],
            type=item["type"],
            properties=_from_jsonable(item.get("properties") or {}),
            depends_on=list(item.get("depends_on") or []),
            meta=_from_jsonable(item.get("meta") or {}),
        )

    def references(self) -> list[str]:
        """The nodes this one's properties refer to (every ``Ref`` target), in order."""
        found: list[str] = []
        for ref in refs_in(self.properties):
            if ref.logical_id not in found:
                found.append(ref.logical_id)
        return found

    def create_after(self) -> list[str]:
        """What its creation waits for: ``depends_on`` without the orderings only its deletion
        needs (``meta["delete_order_only"]``: an Elastic IP is released before the internet
        gateway detaches, but is allocated without one)."""
        only = set(self.meta.get("delete_order_only") or ())
        return [d for d in self.depends_on if d not in only]

    def order_after(self) -> list[str]:
        """The orderings that are not references: the ``depends_on`` no property shows (a
        route to the internet gateway after its attachment), then what a held resource is
        released after (``meta["hold"]["until"]``). An export that cannot hold a resource
        (CloudFormation's ``DependsOn``) orders it after all of these."""
        referenced = set(self.references())
        out = [d for d in self.depends_on if d not in referenced]
        for dep in self.hold_until():
            if dep not in referenced and dep not in out:
                out.append(dep)
        return out

    def hold(self) -> dict[str, Any] | None:
        """``meta["hold"]``: created early with ``properties`` overriding the planned ones,
        released once every node of ``until`` is ready (``designer/plan.py``)."""
        hold = self.meta.get("hold")
        return hold if isinstance(hold, dict) and hold.get("until") is not None else None

    def hold_until(self) -> list[str]:
        hold = self.hold()
        return list(hold.get("until") or []) if hold else []

    def to_json(self) -> dict[str, Any]:
        return {
            "logical_id": self.logical_id,
            "type": self.type,
            "depends_on": list(self.depends_on),
            "properties": _jsonable(self.properties),
            "meta": _jsonable(self.meta),
        }


class GraphError(ValueError):
    """The graph is not a DAG, or an edge points at a node that does not exist."""


@dataclass
class ResourceGraph:
    nodes: dict[str, ResourceNode] = field(default_factory=dict)

    def add(self, node: ResourceNode) -> ResourceNode:
        if node.logical_id in self.nodes:
            raise GraphError(f"duplicate logical id {node.logical_id}")
        self.nodes[node.logical_id] = node
        return node

    def __getitem__(self, logical_id: str) -> ResourceNode:
        return self.nodes[logical_id]

    def __contains__(self, logical_id: object) -> bool:
        return logical_id in self.nodes

    def __iter__(self):
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def of_type(self, type_name: str) -> list[ResourceNode]:
        return [n for n in self.nodes.values() if n.type == type_name]

    def topological_order(self) -> list[ResourceNode]:
        """Nodes in creation order; ties broken by insertion order so the result is stable."""
        order: list[ResourceNode] = []
        state: dict[str, int] = {}

        def visit(lid: str, path: tuple[str, ...]) -> None:
            if state.get(lid) == 2:
                return
            if state.get(lid) == 1:
                raise GraphError("dependency cycle: " + " -> ".join((*path, lid)))
            if lid not in self.nodes:
                raise GraphError(f"{path[-1] if path else '?'} depends on unknown node {lid}")
            state[lid] = 1
            for dep in self.nodes[lid].depends_on:
                visit(dep, (*path, lid))
            state[lid] = 2
            order.append(self.nodes[lid])

        for lid in self.nodes:
            visit(lid, ())
        return order

    def dependents(self) -> dict[str, list[str]]:
        """For every node, the nodes that depend on it (the graph transposed), in insertion
        order: destroy deletes a node only once all of these are gone."""
        result: dict[str, list[str]] = {lid: [] for lid in self.nodes}
        for node in self.nodes.values():
            for dep in node.depends_on:
                if dep in result:
                    result[dep].append(node.logical_id)
        return result

    def reversed(self) -> list[ResourceNode]:
        """Nodes in deletion order: every node before the nodes it depends on."""
        return list(reversed(self.topological_order()))

    def to_json(self) -> list[dict[str, Any]]:
        return [n.to_json() for n in self.topological_order()]

    def to_document(self) -> dict[str, Any]:
        """The graph as it is stored with a deployment: versioned, so a later Gantry reads a
        graph an older one stored without re-planning it."""
        return {"format": GRAPH_FORMAT, "nodes": self.to_json()}

    @classmethod
    def from_json(cls, nodes: list[dict[str, Any]]) -> ResourceGraph:
        """The inverse of :meth:`to_json`: Refs come back as :class:`Ref`."""
        graph = cls()
        for item in nodes:
            graph.add(ResourceNode.from_json(item))
        graph.topological_order()  # a stored graph that is not a DAG is refused here
        return graph

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ResourceGraph:
        """A graph stored by :meth:`to_document` (any format this Gantry can read)."""
        fmt = document.get("format") if isinstance(document, dict) else None
        if fmt not in READABLE_FORMATS:
            raise GraphError(f"stored graph format {fmt!r} is not one this Gantry can read")
        return cls.from_json(document["nodes"])


#: The format :meth:`ResourceGraph.to_document` writes. Raise it when the stored shape changes
#: and keep reading the older ones (``READABLE_FORMATS``): live deployments keep their graph.
GRAPH_FORMAT = 1
READABLE_FORMATS = frozenset({1})


def refs_in(value: Any) -> Iterator[Ref]:
    """Every :class:`Ref` inside a property value (dicts and lists walked depth first)."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from refs_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from refs_in(item)


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref", "Attribute"} and isinstance(value["Ref"], str):
            return Ref(value["Ref"], value["Attribute"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Ref):
        return value.to_json()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
