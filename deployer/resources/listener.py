"""``AWS::ElasticLoadBalancingV2::Listener``: HTTPS on the API port, with the imported certificate,
forwarding to the target group.

Physical id: the listener ARN (CloudFormation's ``Ref``). Ready as soon as it exists.

The plan marks listeners untagged (CloudFormation's listener has no ``Tags``), but the ELBv2 API
does tag listeners, so Gantry tags them at creation like everything else and find() looks at the
listeners of *this* load balancer for the gantry tags. A load balancer has at most one listener
per port (a second CreateListener on the same port with other settings fails
``DuplicateListener``; with the same settings it returns the existing one), so there is no way to
end up with two.

Updates in place (ModifyListener): port, protocol, TLS policy, certificate and default actions
(a new target group after a new API port). The load balancer is create-only. The tags stay the
ones it was created with: CloudFormation's listener has no ``Tags`` for a change to name.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import differing, elbv2_tagged, node_tags, project, tag_list
from deployer.resources._ec2 import error_code
from deployer.resources.base import AwsContext, CannotUpdate, Failed, Gone, Pending, Ready
from designer.graph import ResourceNode

PASSTHROUGH = (
    "LoadBalancerArn",
    "Protocol",
    "Port",
    "SslPolicy",
    "Certificates",
    "DefaultActions",
    "AlpnPolicy",
)


#: What ModifyListener changes (same names in CloudFormation and the API).
MODIFIABLE = ("Port", "Protocol", "SslPolicy", "Certificates", "DefaultActions", "AlpnPolicy")


def _describe(ctx: AwsContext, arn: str) -> dict[str, Any] | None:
    try:
        listeners = ctx.client("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"]
    except ClientError as exc:
        if error_code(exc) in {"ListenerNotFound", "LoadBalancerNotFound"}:
            return None
        raise
    return listeners[0] if listeners else None


def _exists(ctx: AwsContext, arn: str) -> bool:
    return _describe(ctx, arn) is not None


def _live(listener: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    """A listener under CloudFormation names; its certificates and actions in the plan's shape
    (AWS adds a forward action's ``ForwardConfig`` and the like)."""
    out = {key: listener[key] for key in ("LoadBalancerArn", *MODIFIABLE) if key in listener}
    for key in ("Certificates", "DefaultActions"):
        if key in out and key in planned:
            out[key] = project(out[key], planned[key])
    return out


class ListenerHandler:
    type: ClassVar[str] = "AWS::ElasticLoadBalancingV2::Listener"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        paginator = ctx.client("elbv2").get_paginator("describe_listeners")
        try:
            arns = [
                listener["ListenerArn"]
                for page in paginator.paginate(LoadBalancerArn=props["LoadBalancerArn"])
                for listener in page["Listeners"]
            ]
        except ClientError as exc:
            if error_code(exc) == "LoadBalancerNotFound":
                return []
            raise
        return elbv2_tagged(ctx, node, arns)

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        kwargs = {key: props[key] for key in PASSTHROUGH if key in props}
        listener = ctx.client("elbv2").create_listener(
            Tags=tag_list(node_tags(ctx, node, props)), **kwargs
        )["Listeners"][0]
        return listener["ListenerArn"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        if not _exists(ctx, physical_id):
            return Pending("waiting for AWS to show the new listener")
        return Ready({})

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        listener = _describe(ctx, physical_id)
        return None if listener is None else _live(listener, node.properties)

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        listener = _describe(ctx, physical_id)
        if listener is None:
            raise CannotUpdate(f"the listener {physical_id} no longer exists")
        live = _live(listener, after)
        if "LoadBalancerArn" in after and live.get("LoadBalancerArn") != after["LoadBalancerArn"]:
            raise CannotUpdate(
                "a listener cannot move to another load balancer; it is replaced by a new one"
            )
        changes = differing(live, after, MODIFIABLE)
        if changes:
            ctx.client("elbv2").modify_listener(ListenerArn=physical_id, **changes)

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("elbv2").delete_listener(ListenerArn=physical_id)
        except ClientError as exc:
            if error_code(exc) == "ListenerNotFound":
                return
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if not _exists(ctx, physical_id):
            return Gone()
        return Pending("listener is being deleted")


HANDLER = ListenerHandler()
