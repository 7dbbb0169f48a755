"""The graph a deployment builds, stored with it.

A deployment's graph is planned once, when it starts, and stored on the row
(``Deployment.graph``, :meth:`ResourceGraph.to_document`). The engine, the pages and the API
read that stored graph and never re-plan: a later Gantry whose planner adds or removes a node,
or whose validation is stricter, still shows, changes and destroys what an earlier one built.
"""

from __future__ import annotations

from typing import Any

from designer.graph import ResourceGraph, ResourceNode
from designer.plan import plan
from designer.spec import Spec, validate_spec


def graph_document(spec: Spec) -> dict[str, Any]:
    """What a new deployment of ``spec`` stores: the plan, versioned."""
    return plan(spec).to_document()


def deployment_graph(deployment: Any) -> ResourceGraph:
    """The graph the deployment was started with (parsed once per row object)."""
    cached = deployment.__dict__.get("_graph_cache")
    if cached is not None and cached[0] is deployment.graph:
        return cached[1]
    graph = ResourceGraph.from_document(deployment.graph)
    deployment.__dict__["_graph_cache"] = (deployment.graph, graph)
    return graph


def _spec_of_snapshot(snapshot: dict[str, Any]) -> Spec:
    """The Spec of a stored snapshot. It validated when it was taken; if today's rules refuse
    it, it is rebuilt as it was, because what it built exists whatever the rules say now."""
    result = validate_spec(snapshot)
    if result.spec is not None:
        return result.spec
    return Spec(
        name=snapshot["name"],
        region=snapshot["region"],
        vpc_cidr=snapshot["vpc_cidr"],
        public_subnet_cidrs=tuple(snapshot.get("public_subnet_cidrs") or ()),
        lambda_subnet_cidrs=tuple(snapshot["lambda_subnet_cidrs"]),
        api_subnet_cidrs=tuple(snapshot["api_subnet_cidrs"]),
        api_port=int(snapshot["api_port"]),
        nat=snapshot["nat"],
        api_kind=snapshot["api_kind"],
        tags=tuple(sorted((snapshot.get("tags") or {}).items())),
    )


def legacy_graph_document(snapshot: dict[str, Any], records: dict[str, str]) -> dict[str, Any]:
    """The stored graph of a deployment made before graphs were stored: its snapshot planned
    by this release, limited to the nodes it has records for (``records``: logical id -> type,
    in creation order). A node this planner adds was never built and is left out; a recorded
    node it no longer plans is kept as a bare node (no properties, ``meta["unplanned"]``), so
    its resource is still deleted by its physical id."""
    planned = plan(_spec_of_snapshot(snapshot))
    graph = ResourceGraph()
    for node in planned.topological_order():
        if node.logical_id in records:
            node.depends_on = [d for d in node.depends_on if d in records]
            graph.add(node)
    for logical_id, type_name in records.items():
        if logical_id not in graph:
            graph.add(
                ResourceNode(logical_id, type_name, meta={"label": logical_id, "unplanned": True})
            )
    return graph.to_document()
