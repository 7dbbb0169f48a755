"""Checks of the security scanner (checkov) that do not fit this architecture, with the reason.

What checkov asks for that the design should have is fixed in the design itself
(``designer/plan.py``), so the deployer builds it too and the cost table prices it: the
function's reserved concurrency (CKV_AWS_115) and the load balancer dropping invalid header
fields (CKV_AWS_131). The checks below are skipped in each resource's ``Metadata``, in checkov's
own form (``checkov: skip: [{id, comment}]``), so the reason stands next to the resource; the
README lists the same table, and a test keeps the two equal.
"""

from __future__ import annotations

#: CloudFormation type -> (check id, one-line reason) pairs.
SKIPS: dict[str, tuple[tuple[str, str], ...]] = {
    "AWS::SecretsManager::Secret": (
        (
            "CKV_AWS_149",
            "Encrypted with the AWS managed key aws/secretsmanager; IAM already limits reading "
            "it to the two roles whose policies name this secret, and a customer managed key "
            "would add $1/month and a key policy without narrowing who can read it.",
        ),
    ),
    "AWS::Logs::LogGroup": (
        (
            "CKV_AWS_158",
            "CloudWatch Logs encrypts every log group at rest; the function never logs the "
            "credential, so a customer managed key ($1/month and a key policy for the Logs "
            "service) would protect nothing more.",
        ),
    ),
    "AWS::Lambda::Function": (
        (
            "CKV_AWS_116",
            "Invoked synchronously: the caller receives every result and error; a dead-letter "
            "queue only catches failed asynchronous invocations.",
        ),
        (
            "CKV_AWS_173",
            "The environment holds no secret (the API's host and port and the secret's ARN; "
            "Lambda encrypts it at rest with its AWS managed key); the credential is read from "
            "Secrets Manager.",
        ),
    ),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (
        (
            "CKV_AWS_91",
            "Internal and reachable only from the function's security group, whose every call "
            "is in the function's logs and X-Ray traces already; access logs would need an S3 "
            "bucket and its delivery policy for no new record.",
        ),
    ),
}


def scanner_skips(type_name: str) -> tuple[tuple[str, str], ...]:
    """The checks skipped on every resource of ``type_name``, with their reasons."""
    return SKIPS.get(type_name, ())
