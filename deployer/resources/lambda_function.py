"""``AWS::Lambda::Function``: the function that calls the private API, in the Lambda subnets.

The code is Gantry's own (``workload/lambda_src/handler.py``), packaged by
``workload.artifacts.lambda_zip`` for the plan's ``meta["code"]`` placeholder.

``ReservedConcurrentExecutions`` is not a CreateFunction parameter: create reserves it with
PutFunctionConcurrency right after CreateFunction (Lambda accepts it while the function is still
``Pending``), and update does the same for a function found by its tags after a lost create.

Physical id: the function *name* (CloudFormation's ``Ref``). The name comes from the plan, so a
function of that name belonging to someone else makes CreateFunction fail with
ResourceConflictException, which is the right outcome: Gantry never adopts what it did not tag.

Updates (CloudFormation's "no interruption" for everything the plan sets but the name):
tags (TagResource / UntagResource), the reservation (Put/DeleteFunctionConcurrency), the
configuration (UpdateFunctionConfiguration: runtime, handler, role, memory, timeout, tracing,
logging, VPC, environment) and the code with the architecture (UpdateFunctionCode, when the
package Gantry builds for the handler no longer has the function's ``CodeSha256``). Lambda applies
a configuration or code change asynchronously (``LastUpdateStatus: InProgress``, for a minute or
more when the VPC changes) and refuses another one meanwhile (``ResourceConflictException``).
So an update compares with what GetFunction says is live, not with what Gantry last applied,
starts at most one of the two changes (the code first) and, when the other is still due, asks to
be called again (:class:`RetryLater`) once Lambda has finished: a retried update never starts the
same change twice. ``check_ready`` is Pending while an update is in progress.

Timing on real AWS: a function in a VPC is ``Pending`` for about a minute while Lambda creates its
Hyperplane network interfaces. After DeleteFunction those interfaces stay in the subnets and
security groups for ~20-40 minutes; the subnet and security-group handlers wait that out
(``DependencyViolation`` -> ``RetryLater``), nothing here has to.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from deployer.resources._compute import (
    differing,
    node_tags,
    project,
    same,
    tag_changes,
    tag_list,
)
from deployer.resources._ec2 import error_code
from deployer.resources.base import (
    AwsContext,
    CannotUpdate,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
    tag_map,
)
from designer.graph import ResourceNode
from workload.artifacts import lambda_zip

#: Plain values GetFunction reports under their CloudFormation names.
SCALARS = ("Runtime", "Handler", "Role", "Description", "MemorySize", "Timeout")
#: Structures the provider schema defines, read back cut to the keys the plan gives (AWS adds
#: ``VpcId``, ``LogFormat``... with their defaults). ``Environment`` is compared whole: a
#: variable added by hand is drift.
STRUCTURES = ("TracingConfig", "LoggingConfig", "VpcConfig", "EphemeralStorage")
#: What UpdateFunctionConfiguration changes (same names in CloudFormation and the API).
CONFIGURATION = (*SCALARS, *STRUCTURES, "Environment")
#: CloudFormation properties passed to CreateFunction unchanged (same names in both).
PASSTHROUGH = ("FunctionName", *CONFIGURATION, "Architectures")

#: CreateFunction errors that only mean "IAM has not finished propagating the new role or its
#: policies to Lambda" (it takes ~10 s). Matched on the message: the code,
#: InvalidParameterValueException, is also used for real mistakes.
_PROPAGATION_MESSAGES = (
    "cannot be assumed by lambda",
    "does not have permissions to call createnetworkinterface",
    "does not have permissions to call describenetworkinterfaces",
)
BUSY = "Lambda is still applying the function's previous change"


def _is_not_found(exc: ClientError) -> bool:
    return error_code(exc) == "ResourceNotFoundException"


def _get(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    """GetFunction: configuration, tags and reserved concurrency in one call; None when Lambda
    does not know the function."""
    try:
        return ctx.client("lambda").get_function(FunctionName=name)
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise


def code_sha256(handler: str) -> str:
    """Lambda's ``CodeSha256`` of the package Gantry deploys for ``handler``."""
    return base64.b64encode(hashlib.sha256(lambda_zip(handler)).digest()).decode()


def _busy(config: dict[str, Any]) -> bool:
    return config.get("State") == "Pending" or config.get("LastUpdateStatus") == "InProgress"


def _reserve(ctx: AwsContext, name: str, wanted: Any, reserved: Any) -> None:
    """Make the function's reservation ``wanted`` (None: no reservation), given what is
    reserved now. PutFunctionConcurrency takes effect when it answers. When the account's
    quota cannot spare it, the refusal says so in words (AWS's own message stays beside it)."""
    lam = ctx.client("lambda")
    if wanted is None:
        if reserved is not None:
            lam.delete_function_concurrency(FunctionName=name)
        return
    if reserved is not None and int(reserved) == int(wanted):
        return
    try:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=int(wanted))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = str(error.get("Message", ""))
        if error_code(exc) != "InvalidParameterValueException" or (
            "UnreservedConcurrentExecution" not in message
        ):
            raise
        explained = (
            f"the account cannot reserve {wanted} concurrent executions for the function: "
            "Lambda keeps at least 100 of the account's quota unreserved (ask AWS Support to "
            f"raise the Lambda concurrent executions quota). {message}"
        )
        raise ClientError(
            {**exc.response, "Error": {**error, "Message": explained}}, exc.operation_name
        ) from exc


class LambdaFunctionHandler:
    type: ClassVar[str] = "AWS::Lambda::Function"

    def find(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> list[str]:
        # Function names are unique per account and region, so there is at most one candidate;
        # GetFunction returns its tags, which must be this node's.
        name = props["FunctionName"]
        function = _get(ctx, name)
        return [name] if function is not None and ctx.owns(node, function.get("Tags")) else []

    def create(self, ctx: AwsContext, node: ResourceNode, props: dict[str, Any]) -> str:
        kwargs = {key: props[key] for key in PASSTHROUGH if key in props}
        lam = ctx.client("lambda")
        try:
            function = lam.create_function(
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
        name = function["FunctionName"]
        # What CreateFunction cannot set. Should this fail, the function is found by its tags
        # on the next pass and update() reserves it.
        _reserve(ctx, name, props.get("ReservedConcurrentExecutions"), None)
        return name

    def check_ready(
        self, ctx: AwsContext, node: ResourceNode, physical_id: str
    ) -> Ready | Pending | Failed:
        function = _get(ctx, physical_id)
        if function is None:
            # Lambda is consistent right after CreateFunction: this one was deleted since.
            return Failed(f"the function {physical_id} no longer exists")
        config = function["Configuration"]
        state = config.get("State") or "Active"
        if state == "Pending":
            return Pending("Lambda is creating its network interfaces in the VPC (~1 minute)")
        if state == "Failed":
            reason = config.get("StateReason") or config.get("StateReasonCode") or "no reason given"
            return Failed(f"Lambda could not create the function: {reason}")
        update = config.get("LastUpdateStatus")
        if update == "InProgress":
            return Pending("Lambda is applying the function's new configuration or code")
        if update == "Failed":
            reason = config.get("LastUpdateStatusReason") or "no reason given"
            return Failed(f"Lambda could not apply the function's configuration: {reason}")
        # Active, or Inactive (idle for weeks; the next invocation reactivates it).
        return Ready({"Arn": config["FunctionArn"]})

    def release(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> Ready:
        """A function created held (no concurrency reserved: nothing can invoke it) given its
        planned reservation: one PutFunctionConcurrency, in effect when it answers."""
        _reserve(
            ctx,
            physical_id,
            after.get("ReservedConcurrentExecutions"),
            before.get("ReservedConcurrentExecutions"),
        )
        return Ready()

    def read(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> dict[str, Any] | None:
        function = _get(ctx, physical_id)
        return None if function is None else _live(function, node.properties)

    def update(
        self,
        ctx: AwsContext,
        node: ResourceNode,
        physical_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        if after.get("FunctionName", physical_id) != physical_id:
            raise CannotUpdate(
                f"a Lambda function's name cannot change ({physical_id} -> "
                f"{after['FunctionName']}); it is replaced by a new function"
            )
        lam = ctx.client("lambda")
        function = lam.get_function(FunctionName=physical_id)
        config = function["Configuration"]
        live = _live(function, after)

        if "Tags" in after:
            # Set from what is live (one call for whatever differs), remove what Gantry had
            # set and no longer plans.
            to_set, _ = tag_changes(function.get("Tags"), after["Tags"])
            _, to_remove = tag_changes(before.get("Tags"), after["Tags"])
            to_remove = [key for key in to_remove if key in (function.get("Tags") or {})]
            if to_set:
                lam.tag_resource(Resource=config["FunctionArn"], Tags=to_set)
            if to_remove:
                lam.untag_resource(Resource=config["FunctionArn"], TagKeys=to_remove)
        if "ReservedConcurrentExecutions" in after or "ReservedConcurrentExecutions" in before:
            _reserve(
                ctx,
                physical_id,
                after.get("ReservedConcurrentExecutions"),
                live["ReservedConcurrentExecutions"],
            )

        # What AWS does not report (an emulator leaves some out) is compared with ``before``.
        configuration = differing({**before, **live}, after, CONFIGURATION)
        handler = after.get("Handler") or config["Handler"]
        architectures = after.get("Architectures") or config.get("Architectures")
        code_due = config.get("CodeSha256") != code_sha256(handler) or not same(
            config.get("Architectures") or ["x86_64"], architectures
        )
        if not configuration and not code_due:
            return
        if _busy(config):
            raise RetryLater(f"{BUSY}; the next one starts once it is done")
        # The code first: it is compared with what Lambda reports (its CodeSha256), so a
        # retried update never sends it twice; a configuration property an endpoint does not
        # report is sent again, harmlessly, by the last step only.
        if code_due:
            lam.update_function_code(
                FunctionName=physical_id,
                ZipFile=lambda_zip(handler),
                Architectures=list(architectures or ["x86_64"]),
                Publish=False,
            )
            if configuration:
                raise RetryLater(
                    "Lambda is applying the function's new code; its new configuration "
                    "follows once that is done"
                )
            return
        lam.update_function_configuration(FunctionName=physical_id, **configuration)

    def delete(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
        try:
            ctx.client("lambda").delete_function(FunctionName=physical_id)
        except ClientError as exc:
            if _is_not_found(exc):
                return
            raise

    def check_gone(self, ctx: AwsContext, node: ResourceNode, physical_id: str) -> Gone | Pending:
        if _get(ctx, physical_id) is None:
            return Gone()
        return Pending("Lambda function is being deleted")


def _live(function: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    """GetFunction's answer under CloudFormation names, in the shapes of ``planned`` (the
    node's properties or the resolved ones)."""
    config = function["Configuration"]
    out: dict[str, Any] = {
        key: config[key] for key in ("FunctionName", *SCALARS, "Architectures") if key in config
    }
    for key in STRUCTURES:
        if key in config:
            out[key] = project(config[key], planned[key]) if key in planned else config[key]
    # AWS leaves these out when empty; an empty value is what a drift check must see then.
    if "VpcConfig" not in out:
        out["VpcConfig"] = project(
            {"SubnetIds": [], "SecurityGroupIds": []}, planned.get("VpcConfig")
        )
    out["Environment"] = {
        "Variables": dict((config.get("Environment") or {}).get("Variables") or {})
    }
    out["ReservedConcurrentExecutions"] = (function.get("Concurrency") or {}).get(
        "ReservedConcurrentExecutions"
    )
    out["Tags"] = tag_list(tag_map(function.get("Tags")))
    return out


HANDLER = LambdaFunctionHandler()
