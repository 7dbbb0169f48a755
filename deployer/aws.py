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
import botocore.session
from botocore.config import Config

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="gantry",
    # One client serves every thread of a process (GANTRY_AWS_THREADS of them at once, by
    # default 8): keep a connection for each.
    max_pool_connections=32,
)

_local = threading.local()
_loader_lock = threading.Lock()
_loader = None

#: The services the resource handlers call.
SERVICES = (
    "ec2",
    "iam",
    "lambda",
    "logs",
    "secretsmanager",
    "elbv2",
    "autoscaling",
    "acm",
    "ssm",
    "sts",
)


def _shared_loader():
    """One botocore data loader per process: parsing a service model (EC2's is megabytes of
    JSON) takes hundreds of milliseconds, and every new session would do it again."""
    global _loader
    with _loader_lock:
        if _loader is None:
            _loader = botocore.session.get_session().get_component("data_loader")
        return _loader


def _new_session(**kwargs: Any) -> boto3.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader())
    return boto3.session.Session(botocore_session=core, **kwargs)


def warm_up(*, region: str = "us-east-1", endpoint_url: str | None = None) -> None:
    """Load the service models of every service Gantry calls, once, before the first pass
    (Celery's worker_process_init), and make the clients of the usual region and endpoint (the
    sandbox's, or AWS's own), so a deployment does not wait for either."""
    client = client_factory(region=region, endpoint_url=endpoint_url)
    for service in SERVICES:
        client(service)


def _count_retries(parsed: Any = None, **_: Any) -> None:
    """Note calls that botocore had to retry (throttling, 5xx, a lost response): a retried
    create may have taken effect twice."""
    metadata = (parsed or {}).get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
    if metadata.get("RetryAttempts"):
        _local.retried = True


class retries_seen:  # noqa: N801 - used as a context manager, reads like a phrase
    """``with retries_seen() as seen: ...; seen.any`` tells whether any call in the block, in this
    thread, was retried by botocore."""

    any = False

    def __enter__(self) -> retries_seen:
        _local.retried = False
        return self

    def __exit__(self, *exc: object) -> None:
        self.any = bool(getattr(_local, "retried", False))


#: Clients by (process, region, endpoint, role, external id, service), shared by every thread of
#: the process: boto3's clients are thread-safe, and making one costs tens of milliseconds of
#: CPU (its event handlers and endpoint rules), which a client per thread paid again in every
#: new AWS thread of every worker process. Sessions are not thread-safe: they are only used
#: under ``_clients_lock``, to make clients.
_clients: dict[tuple, Any] = {}
#: Assumed-role credentials' expiry (epoch seconds) by the same key without the service.
_expires: dict[tuple, float] = {}
_sessions: dict[tuple, boto3.session.Session] = {}
_clients_lock = threading.Lock()


def _stale(key: tuple) -> bool:
    """Assumed-role credentials last an hour: refresh them well before they expire."""
    return key in _expires and _expires[key] - time.time() < 300


def client_factory(
    *,
    region: str,
    endpoint_url: str | None = None,
    role_arn: str | None = None,
    external_id: str | None = None,
) -> Callable[[str], Any]:
    """A ``client(service)`` function. Its clients are made once per process and shared by
    its threads."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    key = (os.getpid(), region, endpoint, role_arn, external_id)

    def session() -> boto3.session.Session:
        if _stale(key):
            _sessions.pop(key, None)
            _expires.pop(key, None)
            for cached in [k for k in _clients if k[:-1] == key]:
                _clients.pop(cached, None)
        if key not in _sessions:
            if role_arn:
                sts = _new_session().client(
                    "sts", region_name=region, endpoint_url=endpoint, config=CLIENT_CONFIG
                )
                kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "gantry"}
                if external_id:
                    kwargs["ExternalId"] = external_id
                creds = sts.assume_role(**kwargs)["Credentials"]
                _expires[key] = creds["Expiration"].timestamp()
                _sessions[key] = _new_session(
                    aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"],
                    region_name=region,
                )
            else:
                _sessions[key] = _new_session(region_name=region)
        return _sessions[key]

    def client(service: str) -> Any:
        wanted = (*key, service)
        found = _clients.get(wanted)
        if found is not None and not _stale(key):
            return found
        with _clients_lock:
            sess = session()
            if wanted not in _clients:
                made = sess.client(
                    service, region_name=region, endpoint_url=endpoint, config=CLIENT_CONFIG
                )
                made.meta.events.register("after-call", _count_retries)
                _clients[wanted] = made
            return _clients[wanted]

    return client
