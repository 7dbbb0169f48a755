"""``AWS::EC2::VPCEndpoint``: physical id ``vpce-...``.

Used for the Secrets Manager interface endpoint, in every design: it gives the API instances
(whose subnets have no route out) and the Lambda a private path to Secrets Manager. An interface endpoint takes a
minute or two to become ``available`` while AWS places its network interfaces in the subnets, so
check_ready reports the pending states instead of waiting.

In place (one ModifyVpcEndpoint): the subnets (an AZ added or removed), the security groups (one
replaced), the route tables, private DNS and the policy; then the tags. AWS moves a modified
interface endpoint back to ``pending`` while it places or removes network interfaces, which
check_ready reports. The VPC, the service and the endpoint type are create-only: a new endpoint.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from deployer.resources._ec2 import (
    Ec2Update,
    describe_by_id,
    find_by_tags,
    not_visible_yet,
    tag_specifications,
)
from deployer.resources._update import changed
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready
from designer.graph import ResourceNode

#: States of an endpoint that is on its way out. AWS answers in lower camel case
#: (``available``); the API model spells them capitalised, so both are listed.
_DEAD_STATES = ("deleting", "deleted", "Deleting", "Deleted")
#: Lower-cased states of an endpoint that will never carry traffic again.
_GONE_STATES = frozenset({"deleting", "deleted", "failed", "rejected", "expired"})

#: List properties ModifyVpcEndpoint changes by difference (Add.../Remove... parameters).
_MEMBERSHIPS = ("SubnetIds", "SecurityGroupIds", "RouteTableIds")
#: Every property ``update`` can change other than the tags.
_SETTABLE = (*_MEMBERSHIPS, "PrivateDnsEnabled", "PolicyDocument")


def _policy_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def endpoint_status(endpoint: dict[str, Any]) -> Ready | Pending | Failed:
    """What one ``DescribeVpcEndpoints`` item means for the deployment."""
    state = str(endpoint.get("State", "")).lower()
    endpoint_id = endpoint.get("VpcEndpointId", "")
    if state == "available":
        return Ready({})
    if state == "pendingacceptance":
        return Pending("VPC endpoint is pending acceptance by the service")
    if state in ("pending", "partial", ""):
        return Pending("VPC endpoint is pending")
    if state in ("failed", "rejected", "expired"):
        error = endpoint.get("LastError") or {}
        detail = error.get("Message") or error.get("Code") or "AWS gave no reason"
        return Failed(f"VPC endpoint {endpoint_id} is {state}: {detail}")
    if state in ("deleting", "deleted"):
        return Failed(f"VPC endpoint {endpoint_id} was deleted outside Gantry")
    return Pending(f"VPC endpoint is {state}")


class VpcEndpointHandler(Ec2Update):
    type = "AWS::EC2::VPCEndpoint"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        return find_by_tags(
            ctx, node, "describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId", _DEAD_STATES
        )

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        kwargs: dict[str, Any] = {
            # CloudFormation's default type is Gateway.
            "VpcEndpointType": props.get("VpcEndpointType", "Gateway"),
            "VpcId": props["VpcId"],
            "ServiceName": props["ServiceName"],
            "ClientToken": ctx.client_token(node),
            "TagSpecifications": tag_specifications(ctx, node, "vpc-endpoint", props),
        }
        for key in ("SubnetIds", "SecurityGroupIds", "RouteTableIds"):
            if props.get(key):
                kwargs[key] = list(props[key])
        if "PrivateDnsEnabled" in props:
            kwargs["PrivateDnsEnabled"] = bool(props["PrivateDnsEnabled"])
        if props.get("PolicyDocument"):
            kwargs["PolicyDocument"] = _policy_text(props["PolicyDocument"])
        response = ctx.client("ec2").create_vpc_endpoint(**kwargs)
        return response["VpcEndpoint"]["VpcEndpointId"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        endpoint = _describe(ctx, physical_id)
        if endpoint is None:
            return not_visible_yet("VPC endpoint", physical_id)
        return endpoint_status(endpoint)

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        """The endpoint's VPC, service, type, subnets, security groups, route tables, private
        DNS, policy and tags; None once it is deleting or deleted, or failed, rejected or
        expired (it never carries traffic again)."""
        endpoint = _describe(ctx, physical_id)
        if endpoint is None or str(endpoint.get("State", "")).lower() in _GONE_STATES:
            return None
        props: dict[str, Any] = {
            "VpcId": endpoint.get("VpcId"),
            "ServiceName": endpoint.get("ServiceName"),
            "VpcEndpointType": endpoint.get("VpcEndpointType") or "Gateway",
            "PrivateDnsEnabled": bool(endpoint.get("PrivateDnsEnabled")),
            "SubnetIds": list(endpoint.get("SubnetIds") or []),
            "SecurityGroupIds": [g["GroupId"] for g in endpoint.get("Groups") or []],
            "RouteTableIds": list(endpoint.get("RouteTableIds") or []),
            "Tags": endpoint.get("Tags") or [],
        }
        if endpoint.get("PolicyDocument"):
            props["PolicyDocument"] = endpoint["PolicyDocument"]
        return props

    def change(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """One ModifyVpcEndpoint for everything but the tags. Its list parameters are
        differences (AddSubnetIds, RemoveSubnetIds...), so when anything but the tags is to
        change they are worked out from the endpoint as AWS describes it now: a stale
        ``before`` cannot make AWS refuse to add a subnet it has or remove one it has not."""
        if any(name in after and changed(before, after, name) for name in _SETTABLE):
            # Not visible yet (just created): every change is an addition.
            live = self.read(ctx, node, physical_id) or {}
            kwargs: dict[str, Any] = {}
            for name in _MEMBERSHIPS:
                if name not in after:
                    continue
                have, want = list(live.get(name) or []), list(after[name] or [])
                stem = name.removesuffix("s")  # "SubnetIds" -> Add/RemoveSubnetIds
                if added := [i for i in want if i not in have]:
                    kwargs[f"Add{stem}s"] = added
                if removed := [i for i in have if i not in want]:
                    kwargs[f"Remove{stem}s"] = removed
            if "PrivateDnsEnabled" in after and changed(live, after, "PrivateDnsEnabled"):
                kwargs["PrivateDnsEnabled"] = bool(after["PrivateDnsEnabled"])
            if after.get("PolicyDocument") and changed(live, after, "PolicyDocument"):
                kwargs["PolicyDocument"] = _policy_text(after["PolicyDocument"])
            if kwargs:
                try:
                    ctx.client("ec2").modify_vpc_endpoint(VpcEndpointId=physical_id, **kwargs)
                except ClientError:
                    # Retried after a lost answer, AWS refuses to add a subnet the first call
                    # added: the endpoint as it now is says whether the change was made.
                    now = self.read(ctx, node, physical_id) or {}
                    if any(changed(now, after, name) for name in _SETTABLE if name in after):
                        raise

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        response = ctx.client("ec2").delete_vpc_endpoints(VpcEndpointIds=[physical_id])
        # DeleteVpcEndpoints reports per-endpoint failures in its answer instead of raising.
        for item in response.get("Unsuccessful") or []:
            error = item.get("Error") or {}
            code = error.get("Code", "")
            if code.endswith("NotFound"):  # InvalidVpcEndpointId.NotFound: already gone
                continue
            raise ClientError(
                {"Error": {"Code": code, "Message": error.get("Message", "")}},
                "DeleteVpcEndpoints",
            )

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        endpoint = _describe(ctx, physical_id)
        if endpoint is None or str(endpoint.get("State", "")).lower() == "deleted":
            return Gone()
        return Pending("VPC endpoint is being deleted")


def _describe(ctx: AwsContext, endpoint_id: str) -> dict[str, Any] | None:
    return describe_by_id(
        ctx, "describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointIds", endpoint_id
    )


HANDLER = VpcEndpointHandler()
