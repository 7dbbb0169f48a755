"""boto3 clients for a deployment target.

Throttling and 5xx are retried by botocore's *standard* retry mode (exponential backoff with
jitter, a retry quota); everything above that is the reconciler's job. The endpoint comes from the
target (the sandbox emulator) or from ``AWS_ENDPOINT_URL``, boto3's own variable, so the same code
talks to moto over HTTP exactly as it talks to AWS.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="gantry",
)

_local = threading.local()


def client_factory(
    *,
    region: str,
    endpoint_url: str | None = None,
    role_arn: str | None = None,
    external_id: str | None = None,
) -> Callable[[str], Any]:
    """A ``client(service)`` function; clients are cached per thread (boto3 clients are
    thread-safe, sessions are not)."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    def session() -> boto3.session.Session:
        key = (region, endpoint, role_arn, external_id)
        cache = _local.__dict__.setdefault("sessions", {})
        expires = _local.__dict__.setdefault("expires", {})
        # Assumed-role credentials last an hour: refresh them well before they expire.
        if key in expires and expires[key] - time.time() < 300:
            cache.pop(key, None)
        if key not in cache:
            if role_arn:
                sts = boto3.session.Session().client(
                    "sts", region_name=region, endpoint_url=endpoint, config=CLIENT_CONFIG
                )
                kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "gantry"}
                if external_id:
                    kwargs["ExternalId"] = external_id
                creds = sts.assume_role(**kwargs)["Credentials"]
                expires[key] = creds["Expiration"].timestamp()
                cache[key] = boto3.session.Session(
                    aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"],
                    region_name=region,
                )
            else:
                cache[key] = boto3.session.Session(region_name=region)
        return cache[key]

    def client(service: str) -> Any:
        sess = session()
        clients = sess.__dict__.setdefault("_gantry_clients", {})
        if service not in clients:
            clients[service] = sess.client(
                service, region_name=region, endpoint_url=endpoint, config=CLIENT_CONFIG
            )
        return clients[service]

    return client
