"""``AWS::Lambda::Function``: the function that calls the private API, in the Lambda subnets.

The code is Gantry's own (``workload/lambda_src/handler.py``), packaged by
``workload.artifacts.lambda_zip`` for the plan's ``meta["code"]`` placeholder.

``ReservedConcurrentExecutions`` is not a CreateFunction parameter: check_ready reserves it
(PutFunctionConcurrency, effective when it answers) once the function is active.

Physical id: the function *name* (CloudFormation's ``Ref``). The name comes from the plan, so a
function of that name belonging to someone else makes CreateFunction fail with
ResourceConflictException, which is the right outcome: Gantry never adopts what it did not tag.

Timing on real AWS: a function in a VPC is ``Pending`` for about a minute while Lambda creates its
Hyperplane network interfaces. After DeleteFunction those interfaces stay in the subnets and
security groups for ~20-40 minutes; the subnet and security-group handlers wait that out
(``DependencyViolation`` -> ``RetryLater``), nothing here has to.
"""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import node_tags
from deployer.resources._ec2 import error_code
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready, RetryLater
from designer.graph import ResourceNode
from workload.artifacts import lambda_zip

#: CloudFormation properties passed to CreateFunction unchanged (same names in both).
PASSTHROUGH = (
    "FunctionName",
    "Runtime",
    "Handler",
    "Role",
    "Description",
    "MemorySize",
    "Timeout",
    "Architectures",
    "TracingConfig",
    "LoggingConfig",
    "VpcConfig",
    "Environment",
    "EphemeralStorage",
)

#: CreateFunction errors that only mean "IAM has not finished propagating the new role or its
#: policies to Lambda" (it takes ~10 s). Matched on the message: the code,
#: InvalidParameterValueException, is also used for real mistakes.
_PROPAGATION_MESSAGES = (
    "cannot be assumed by lambda",
    "does not have permissions to call createnetworkinterface",
    "does not have permissions to call describenetworkinterfaces",
)


def _is_not_found(exc: ClientError) -> bool:
    return error_code(exc) == "ResourceNotFoundException"


def _reserve_concurrency(
    ctx: AwsContext, node: ResourceNode, name: str, function: dict[str, Any]
) -> Failed | None:
    """Reserve the plan's ``ReservedConcurrentExecutions`` (CreateFunction cannot) unless
    GetFunction already shows it. PutFunctionConcurrency takes effect when it answers, so the
    function is ready in the same pass; a :class:`Failed` says why the account refused.

    Done here rather than in create() so that a function found by its tags after a lost
    create response gets its reservation too, like a security group's default egress rule.
    """
    wanted = node.properties.get("ReservedConcurrentExecutions")
    if wanted is None:
        return None
    reserved = (function.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    if reserved is not None and int(reserved) == int(wanted):
        return None
    try:
        ctx.client("lambda").put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=int(wanted)
        )
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if error_code(exc) == "InvalidParameterValueException" and (
            "UnreservedConcurrentExecution" in message
        ):
            return Failed(
                f"the account cannot reserve {wanted} concurrent executions for the function: "
                "Lambda keeps at least 100 of the account's quota unreserved (ask AWS Support "
                "to raise the Lambda concurrent executions quota)"
            )
        raise
    return None


class LambdaFunctionHandler:
    type: ClassVar[str] = "AWS::Lambda::Function"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        # Function names are unique per account and region, so there is at most one candidate;
        # GetFunction returns its tags, which must be this node's.
        name = props["FunctionName"]
        try:
            function = ctx.client("lambda").get_function(FunctionName=name)
        except ClientError as exc:
            if _is_not_found(exc):
                return []
            raise
        return [name] if ctx.owns(node, function.get("Tags") or {}) else []

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        kwargs = {key: props[key] for key in PASSTHROUGH if key in props}
        try:
            function = ctx.client("lambda").create_function(
                **kwargs,
                Code={"ZipFile": lambda_zip(props["Handler"])},
                Tags=node_tags(ctx, node, props),
                Publish=False,
            )
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", "")).lower()
            if error_code(exc) == "InvalidParameterValueException" and any(
                m in message for m in _PROPAGATION_MESSAGES
            ):
                raise RetryLater(
                    "IAM role is not yet usable by Lambda (IAM propagation takes ~10 s)"
                ) from exc
            raise
        return function["FunctionName"]

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        try:
            function = ctx.client("lambda").get_function(FunctionName=physical_id)
        except ClientError as exc:
            if _is_not_found(exc):
                # Lambda is consistent right after CreateFunction: this one was deleted since.
                return Failed(f"the function {physical_id} no longer exists")
            raise
        config = function["Configuration"]
        state = config.get("State") or "Active"
        if state == "Pending":
            return Pending("Lambda is creating its network interfaces in the VPC (~1 minute)")
        if state == "Failed":
            reason = config.get("StateReason") or config.get("StateReasonCode") or "no reason given"
            return Failed(f"Lambda could not create the function: {reason}")
        update = config.get("LastUpdateStatus")
        if update == "InProgress":
            return Pending("Lambda is applying the function's configuration")
        if update == "Failed":
            reason = config.get("LastUpdateStatusReason") or "no reason given"
            return Failed(f"Lambda could not apply the function's configuration: {reason}")
        # Active, or Inactive (idle for weeks; the next invocation reactivates it).
        refused = _reserve_concurrency(ctx, node, physical_id, function)
        if refused is not None:
            return refused
        return Ready({"Arn": config["FunctionArn"]})

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("lambda").delete_function(FunctionName=physical_id)
        except ClientError as exc:
            if _is_not_found(exc):
                return
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        try:
            ctx.client("lambda").get_function(FunctionName=physical_id)
        except ClientError as exc:
            if _is_not_found(exc):
                return Gone()
            raise
        return Pending("Lambda function is being deleted")


HANDLER = LambdaFunctionHandler()
