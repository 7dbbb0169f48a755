"""What an AWS error means for a deployment: wait and retry, or fail with a sentence a person
can act on (the AWS code and message stay beside it for the engineer)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from deployer.resources.base import CannotUpdate, RetryLater

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "IncorrectState",
        "ResourceConflictException",
        "ConcurrentModification",
        "ConcurrentModificationException",
        "OperationAbortedException",
    }
)

#: "The name is taken": after a retried create whose first answer was lost, the holder may be
#: the node's own resource (the engine then adopts it if it carries the node's tags).
ALREADY_EXISTS = frozenset(
    {
        "AlreadyExists",
        "AlreadyExistsFault",
        "EntityAlreadyExists",
        "InvalidGroup.Duplicate",
        "ResourceConflictException",
        "ResourceAlreadyExistsException",
        "ResourceExistsException",
        "DuplicateLoadBalancerName",
        "DuplicateTargetGroupName",
        "DuplicateListener",
        "InvalidLaunchTemplateName.AlreadyExistsException",
        "RouteAlreadyExists",
        # AttachInternetGateway retried after a lost answer: the gateway is already attached
        # (find() adopts it only when it is attached to this node's VPC).
        "Resource.AlreadyAssociated",
    }
)

#: Sentences for the errors people actually hit, keyed by AWS error code.
SENTENCES = {
    "VpcLimitExceeded": "The account has reached its limit of VPCs in this region; delete an "
    "unused VPC or ask AWS Support to raise the quota.",
    "AddressLimitExceeded": "The account has no Elastic IP addresses left in this region (the "
    "default quota is 5); release unused ones or raise the quota.",
    "NatGatewayLimitExceeded": "The account has reached its NAT gateway limit in this AZ; delete "
    "an unused NAT gateway or raise the quota.",
    "InvalidSubnet.Conflict": "The subnet's CIDR overlaps a subnet that already exists in the VPC.",
    "UnauthorizedOperation": "The deployment role is not allowed to make this call; add the "
    "permission to the role Gantry assumes in this account.",
    "AccessDenied": "The deployment role is not allowed to make this call; add the permission "
    "to the role Gantry assumes in this account.",
    "AccessDeniedException": "The deployment role is not allowed to make this call; add the "
    "permission to the role Gantry assumes in this account.",
    "AuthFailure": "AWS rejected the credentials of the deployment role; check the target's role "
    "ARN and external id.",
    "InvalidClientTokenId": "AWS rejected the credentials of the deployment role; check the "
    "target's role ARN and external id.",
    "LimitExceeded": "An AWS service quota was reached; raise the quota or remove unused resources.",
    "LimitExceededException": "An AWS service quota was reached; raise the quota or remove "
    "unused resources.",
    "EntityAlreadyExists": "A resource with this name already exists in the account and does not "
    "belong to this deployment.",
    "ResourceExistsException": "A resource with this name already exists in the account and does "
    "not belong to this deployment.",
    "ResourceAlreadyExistsException": "A resource with this name already exists in the account "
    "and does not belong to this deployment; delete or rename it, or rename the design.",
    "InvalidGroup.Duplicate": "A security group with this name already exists in the VPC and "
    "does not belong to this deployment.",
    "InsufficientInstanceCapacity": "AWS has no capacity for this instance type in the AZ right "
    "now; try again later or use another AZ.",
    "Unsupported": "The instance type or feature is not offered in this Availability Zone.",
    "InvalidParameterValue": "AWS rejected a parameter of the request.",
    "InvalidParameterValueException": "AWS rejected a parameter of the request.",
}


@dataclass(frozen=True)
class Retry:
    reason: str
    delay: float | None = None
    #: Waiting on AWS to release something (DependencyViolation): no attempt cap, a time cap.
    patient: bool = False


@dataclass(frozen=True)
class Fatal:
    sentence: str
    code: str = ""
    aws_message: str = ""

    def text(self) -> str:
        if self.code:
            return f"{self.sentence} (AWS {self.code}: {self.aws_message})"
        return self.sentence


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "") or ""
    return ""


def classify(exc: BaseException) -> Retry | Fatal:
    """Decide what an exception from a handler means."""
    if isinstance(exc, RetryLater):
        return Retry(exc.reason, exc.delay, patient=True)
    if isinstance(exc, CannotUpdate):
        return Fatal(f"AWS cannot make this change in place: {exc}")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError):
        return Retry(f"AWS could not be reached ({exc}); retrying")
    if isinstance(exc, ResponseParserError):
        # A 5xx page from a proxy or load balancer in front of the API (HTML, not AWS's XML or
        # JSON): botocore cannot parse it, so its own retries never saw a server error.
        return Retry("AWS answered with a server error page instead of an API response; retrying")
    if isinstance(exc, NoCredentialsError):
        return Fatal("No AWS credentials are configured for the worker.")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or ""
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        if code in THROTTLING_CODES:
            return Retry(f"AWS is throttling requests ({code}); backing off")
        if code == "DependencyViolation":
            return Retry(f"AWS says something still depends on it: {message}", patient=True)
        if code in TRANSIENT_CODES or status >= 500:
            return Retry(f"AWS answered {code or status} ({message or 'server error'}); retrying")
        sentence = SENTENCES.get(code, "AWS refused the request.")
        return Fatal(sentence, code, message)
    return Fatal(f"Gantry hit an internal error ({type(exc).__name__}: {exc}).")


def backoff(attempt: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter (AWS Architecture Blog), in seconds."""
    return random.uniform(base / 2, min(cap, base * 2 ** max(0, attempt - 1)))  # noqa: S311
