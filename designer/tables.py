"""Route tables and security-group rules as the article shows them, read from the graph alone.

These views never look at the spec: they read the route, association and rule nodes that the
deployer will create, so what the preview shows is what AWS will hold. Names come from the
nodes' ``meta["label"]`` (``RT-Lambda``, ``SG-API``...), the same labels the diagram uses.
"""

from __future__ import annotations

from typing import Any

from designer.graph import Ref, ResourceGraph, ResourceNode

ROUTE_TABLE = "AWS::EC2::RouteTable"
ROUTE = "AWS::EC2::Route"
ASSOCIATION = "AWS::EC2::SubnetRouteTableAssociation"
SECURITY_GROUP = "AWS::EC2::SecurityGroup"
INGRESS = "AWS::EC2::SecurityGroupIngress"
EGRESS = "AWS::EC2::SecurityGroupEgress"

#: The properties of AWS::EC2::Route that name its target, in the order they are looked for.
ROUTE_TARGETS = (
    "NatGatewayId",
    "GatewayId",
    "VpcEndpointId",
    "TransitGatewayId",
    "VpcPeeringConnectionId",
    "NetworkInterfaceId",
    "InstanceId",
)

#: Article order: the Lambda's table(s), then the API's, then the public one.
_ROLE_ORDER = {"lambda": 0, "api": 1, "public": 2}


def _label(node: ResourceNode) -> str:
    return node.meta.get("label", node.logical_id)


def _ref_id(value: Any) -> str | None:
    return value.logical_id if isinstance(value, Ref) else None


def route_tables(graph: ResourceGraph) -> list[dict[str, Any]]:
    """Every route table with its subnets and routes, the implicit local route first.

    AWS puts a ``<VPC CIDR> -> local`` route in every route table of the VPC; it is not a
    resource of its own, so it is added here from the VPC node the table belongs to. Subnets
    come from the association nodes (what will actually be associated), not from meta.
    """
    tables = graph.of_type(ROUTE_TABLE)
    subnets: dict[str, list[dict[str, Any]]] = {t.logical_id: [] for t in tables}
    routes: dict[str, list[dict[str, Any]]] = {t.logical_id: [] for t in tables}
    for node in graph:
        if node.type == ASSOCIATION:
            table_id = _ref_id(node.properties.get("RouteTableId"))
            subnet_id = _ref_id(node.properties.get("SubnetId"))
            if table_id in subnets and subnet_id in graph:
                subnet = graph[subnet_id]
                subnets[table_id].append(
                    {
                        "logical_id": subnet_id,
                        "cidr": subnet.properties.get("CidrBlock"),
                        "az": subnet.properties.get("AvailabilityZone"),
                    }
                )
        elif node.type == ROUTE:
            table_id = _ref_id(node.properties.get("RouteTableId"))
            if table_id in routes:
                routes[table_id].append(_route(graph, node))

    out = []
    for table in tables:
        vpc_id = _ref_id(table.properties.get("VpcId"))
        vpc_cidr = graph[vpc_id].properties.get("CidrBlock") if vpc_id in graph else None
        local = {"destination": vpc_cidr, "target": "local", "target_logical_id": None}
        out.append(
            {
                "logical_id": table.logical_id,
                "name": _label(table),
                "role": table.meta.get("role"),
                "subnets": subnets[table.logical_id],
                "routes": [local, *routes[table.logical_id]],
            }
        )
    out.sort(key=lambda t: _ROLE_ORDER.get(t["role"], len(_ROLE_ORDER)))
    return out


def _route(graph: ResourceGraph, node: ResourceNode) -> dict[str, Any]:
    props = node.properties
    destination = props.get("DestinationCidrBlock") or props.get("DestinationIpv6CidrBlock")
    for key in ROUTE_TARGETS:
        target_id = _ref_id(props.get(key))
        if target_id is not None:
            target = _label(graph[target_id]) if target_id in graph else target_id
            return {"destination": destination, "target": target, "target_logical_id": target_id}
        if isinstance(props.get(key), str):  # a target outside the graph, by physical id
            return {"destination": destination, "target": props[key], "target_logical_id": None}
    return {"destination": destination, "target": "unknown", "target_logical_id": None}


def security_group_rules(graph: ResourceGraph) -> list[dict[str, Any]]:
    """Every security group with its inbound and outbound rules, peers named by group label.

    A group whose meta says ``revoke_default_egress`` shows only its planned egress rules (the
    deployer removes the allow-all rule AWS adds on create); any other group shows that default
    rule, because AWS would keep it.
    """
    groups = graph.of_type(SECURITY_GROUP)
    ingress: dict[str, list[dict[str, Any]]] = {g.logical_id: [] for g in groups}
    egress: dict[str, list[dict[str, Any]]] = {g.logical_id: [] for g in groups}
    for node in graph:
        if node.type == INGRESS:
            rules, peer_key = ingress, "SourceSecurityGroupId"
        elif node.type == EGRESS:
            rules, peer_key = egress, "DestinationSecurityGroupId"
        else:
            continue
        group_id = _ref_id(node.properties.get("GroupId"))
        if group_id in rules:
            rules[group_id].append(_rule(graph, node, peer_key))

    out = []
    for group in groups:
        group_egress = egress[group.logical_id]
        if not group.meta.get("revoke_default_egress"):
            group_egress = [*group_egress, _ALLOW_ALL_EGRESS]
        out.append(
            {
                "logical_id": group.logical_id,
                "name": _label(group),
                "ingress": ingress[group.logical_id],
                "egress": group_egress,
            }
        )
    return out


_ALLOW_ALL_EGRESS = {
    "protocol": "all",
    "port": "all",
    "peer": "0.0.0.0/0",
    "peer_logical_id": None,
    "description": "AWS default: all traffic out",
}


def _rule(graph: ResourceGraph, node: ResourceNode, peer_key: str) -> dict[str, Any]:
    props = node.properties
    protocol = str(props.get("IpProtocol", "-1"))
    from_port, to_port = props.get("FromPort"), props.get("ToPort")
    if protocol == "-1":
        protocol, port = "all", "all"
    elif from_port == to_port:
        port = from_port
    else:
        port = f"{from_port}-{to_port}"
    peer_id = _ref_id(props.get(peer_key))
    if peer_id is not None:
        peer = _label(graph[peer_id]) if peer_id in graph else peer_id
    else:
        peer = props.get("CidrIp") or props.get("CidrIpv6") or props.get(peer_key)
    return {
        "logical_id": node.logical_id,
        "protocol": protocol,
        "port": port,
        "peer": peer,
        "peer_logical_id": peer_id,
        "description": props.get("Description", ""),
    }
