"""The resource graph: the one model every view (diagram, tables, cost, exports, deployer) reads.

A node has a stable logical id (CloudFormation style, e.g. ``LambdaSubnet1``), the CloudFormation
type name of the resource it becomes, the properties it is created with, and the logical ids it
depends on (real AWS creation order: a route after its gateway, a subnet after its VPC...).
``meta`` carries facts that are not CloudFormation properties but that views need (the subnet's
role and AZ, which NAT a route goes through), so no view has to re-derive them from the spec.
"""

from __future__ import annotations

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

    def to_json(self) -> list[dict[str, Any]]:
        return [n.to_json() for n in self.topological_order()]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Ref):
        return value.to_json()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
