"""The function Gantry deploys: call the private API's ``/health`` with the API credential.

It is the whole point of the pattern made visible: a Lambda inside the VPC reads the credential
from Secrets Manager (through the NAT gateway or the interface endpoint) and calls the internal
API (the EC2 instance or the internal ALB) over HTTPS. It is packaged alone, as the zip's
``index.py`` (see ``workload/artifacts.py``), and runs on the python3.12 runtime, which ships
boto3.

Configuration comes from the environment the deployer sets:
``API_HOST``, ``API_PORT``, ``API_SCHEME`` (``https``) and ``API_SECRET_ARN``.

An HTTP answer, whatever its status, is returned as ``{"status": <code>, "body": <JSON or text>}``
so a 401 (wrong credential) or a 503 (no healthy target) is visible to the caller. Anything that
prevents getting an answer (configuration missing, credential unreadable, API unreachable) raises
an exception with a sentence saying what failed, so the invocation is counted as an error in
CloudWatch and X-Ray. The credential itself is never logged or returned.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

#: Upper bound of one HTTP call; the rest of the function's timeout is left for the secret read.
HTTP_TIMEOUT_S = 5.0
#: How much of a non-JSON body is returned (an ALB error page, say).
MAX_TEXT_BODY = 2048

# Read once per cold start (execution environment), not per invocation: Secrets Manager calls cost
# money and latency. It is re-read once if the API rejects it (the credential was rotated).
_credential: str | None = None
_secrets_client: Any = None


class ConfigurationError(RuntimeError):
    """An environment variable the deployer should have set is missing or wrong."""


class CredentialUnavailable(RuntimeError):
    """Secrets Manager did not hand out the API credential."""


class ApiUnreachable(RuntimeError):
    """No HTTP answer from the API: DNS, connection, TLS or timeout."""


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set on the function")
    return value


def _api_url() -> str:
    scheme = os.environ.get("API_SCHEME", "https").strip().lower()
    if scheme != "https":
        # The request carries the credential: never over clear text.
        raise ConfigurationError(f"API_SCHEME must be https, not {scheme!r}")
    host = _env("API_HOST")
    port = _env("API_PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigurationError(f"API_PORT must be a port number, not {port!r}")
    return f"https://{host}:{port}/health"


def _read_credential(*, refresh: bool = False) -> str:
    """The API credential, from the cache unless ``refresh``."""
    global _credential, _secrets_client
    if _credential is not None and not refresh:
        return _credential
    secret_arn = _env("API_SECRET_ARN")
    if _secrets_client is None:
        _secrets_client = boto3.client("secretsmanager")
    try:
        value = _secrets_client.get_secret_value(SecretId=secret_arn).get("SecretString")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if "AWSCURRENT" in str(exc.response.get("Error", {}).get("Message", "")):
            # Gantry creates the secret empty; the API instance stores the credential when it
            # first boots.
            raise CredentialUnavailable(
                f"the secret {secret_arn} has no value yet: the API instance stores one at "
                "its first boot, a minute or two after it starts"
            ) from exc
        raise CredentialUnavailable(
            f"could not read the API credential from {secret_arn}: {code}"
        ) from exc
    except BotoCoreError as exc:
        # Typically a connect timeout: no route to Secrets Manager (NAT gateway or endpoint).
        raise CredentialUnavailable(
            f"could not reach Secrets Manager to read {secret_arn}: {exc}"
        ) from exc
    if not value:
        raise CredentialUnavailable(f"the secret {secret_arn} has no string value yet")
    _credential = value
    return value


def _tls_context() -> ssl.SSLContext:
    """TLS without certificate verification, deliberately.

    The API presents a self-signed certificate (the instance makes its own at boot; the ALB uses
    one the deployer generated and imported into ACM), so there is no CA to verify it against,
    and nothing is pinned either. The channel never leaves the VPC and the security groups
    admit only this function, so TLS here is for confidentiality of the bearer credential on
    the wire, not for authenticating the server.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text[:MAX_TEXT_BODY]


def _timeout(context: Any) -> float:
    """The HTTP timeout: at most HTTP_TIMEOUT_S, and always inside the function's own timeout."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return HTTP_TIMEOUT_S
    remaining = context.get_remaining_time_in_millis() / 1000.0 - 1.0
    return max(0.5, min(HTTP_TIMEOUT_S, remaining))


def _call(url: str, credential: str, timeout: float) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked: https only)
        url,
        headers={"Authorization": f"Bearer {credential}", "Accept": "application/json"},
        method="GET",
    )
    try:
        with urllib.request.urlopen(  # noqa: S310 (https only, see _api_url)
            request, timeout=timeout, context=_tls_context()
        ) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as exc:
        # An answer from the API, just not a 2xx: return it rather than failing.
        try:
            return exc.code, _decode(exc.read())
        finally:
            exc.close()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiUnreachable(f"no answer from {url}: {reason}") from exc


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Call ``/health`` on the private API and return its status and body."""
    url = _api_url()
    timeout = _timeout(context)
    status, body = _call(url, _read_credential(), timeout)
    if status == 401:
        # The credential may have been rotated since this environment cached it: re-read once.
        logger.info("the API rejected the cached credential; reading it again")
        status, body = _call(url, _read_credential(refresh=True), timeout)
    logger.info("GET %s -> %s", url, status)
    return {"status": status, "body": body}
