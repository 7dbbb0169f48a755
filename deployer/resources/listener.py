"""``AWS::ElasticLoadBalancingV2::Listener``: HTTPS on the API port, with the imported certificate,
forwarding to the target group.

Physical id: the listener ARN (CloudFormation's ``Ref``). Ready as soon as it exists.

The plan marks listeners untagged (CloudFormation's listener has no ``Tags``), but the ELBv2 API
does tag listeners, so Gantry tags them at creation like everything else and find() looks at the
listeners of *this* load balancer for the gantry tags. A load balancer has at most one listener
per port (a second CreateListener on the same port with other settings fails
``DuplicateListener``; with the same settings it returns the existing one), so there is no way to
end up with two.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import elbv2_tagged, node_tags, tag_list
from deployer.resources._ec2 import error_code
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready
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


def _exists(ctx: AwsContext, arn: str) -> bool:
    try:
        listeners = ctx.client("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"]
    except ClientError as exc:
        if error_code(exc) in {"ListenerNotFound", "LoadBalancerNotFound"}:
            return False
        raise
    return bool(listeners)


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
