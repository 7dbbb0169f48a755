"""The two artifacts that fill the plan's placeholders, for the deployer and the export alike.

- :func:`lambda_zip`: the function's deployment package (``meta["code"]`` of the Lambda node),
  built in memory from ``workload/lambda_src/handler.py``. The bytes are deterministic (fixed
  timestamp and permissions, stored rather than deflated so no zlib version can change them),
  so the function's ``CodeSha256`` only changes when the source does, and a redeploy of the same
  code is recognisable as such.
- :func:`render_user_data`: the API instance's user data (``meta["user_data"]`` of the instance
  and of the launch template), from ``workload/userdata/``: a bash script that installs a tiny
  HTTPS health API under systemd (see ``api_health.sh``, ``prepare.sh`` and ``api_server.py``).
  :func:`user_data_for_sub` is the same script for a CloudFormation template, where the secret's
  ARN and the region are only known when the stack is created: it is written for ``Fn::Sub``.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

_HERE = Path(__file__).resolve().parent
LAMBDA_SOURCE = _HERE / "lambda_src" / "handler.py"
USERDATA_DIR = _HERE / "userdata"

#: The zip's entries all carry this timestamp (the earliest a zip can hold).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: EC2 refuses user data over 16 KB (before base64).
USER_DATA_LIMIT = 16 * 1024

_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_HEREDOC_END = "GANTRY_END_OF_FILE"


def lambda_module_file(handler: str) -> str:
    """The file the runtime imports for a Lambda ``Handler`` setting: ``index.handler`` ->
    ``index.py``. The repo keeps the source as ``handler.py``; the zip names it after the
    plan's ``Handler`` so the two can never disagree."""
    module, sep, function = handler.rpartition(".")
    if not sep or not module or not function or not module.isidentifier():
        raise ValueError(f"Lambda Handler must look like 'module.function', not {handler!r}")
    if function != "handler":
        raise ValueError(
            f"the packaged source defines handler(), so Handler must end in '.handler', not {handler!r}"
        )
    return f"{module}.py"


def lambda_zip(handler: str = "index.handler") -> bytes:
    """The deployment package: ``handler.py`` alone, named for ``handler``. Same source, same
    bytes."""
    info = zipfile.ZipInfo(lambda_module_file(handler), date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix, so the permission bits below are honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16  # a regular file, rw-r--r--
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, LAMBDA_SOURCE.read_bytes())
    return buffer.getvalue()


def lambda_source() -> str:
    """The function's source as text, for CloudFormation's ``Code.ZipFile`` (which writes it to
    ``index.py``, the file :func:`lambda_zip` names it for ``index.handler``)."""
    return LAMBDA_SOURCE.read_text(encoding="utf-8")


def _embeddable(name: str) -> str:
    text = (USERDATA_DIR / name).read_text()
    if any(line.strip() == _HEREDOC_END for line in text.splitlines()):
        raise ValueError(f"{name} contains the heredoc terminator {_HEREDOC_END}")
    return text.rstrip("\n")


def render_user_data(
    *, secret_arn: str, region: str, api_port: int, anonymous_liveness: bool
) -> str:
    """The user data of an API instance.

    ``secret_arn`` is the API credential's secret (the instance reads it, or stores a generated
    value when it has none); ``api_port`` the port the API listens on; ``anonymous_liveness``
    is True behind an ALB, whose health checker cannot present the credential (see
    ``api_server.py``). The values are validated rather than quoted: they end up in a systemd
    environment file, and each has a strict shape. The credential itself is never in the user
    data (which anyone with ec2:DescribeInstanceAttribute can read).
    """
    if not _SECRET_ARN.match(secret_arn):
        raise ValueError(f"not a Secrets Manager secret ARN: {secret_arn!r}")
    if not _REGION.match(region):
        raise ValueError(f"not an AWS region code: {region!r}")
    script = _render(
        secret_arn=secret_arn,
        region=region,
        api_port=api_port,
        anonymous_liveness=anonymous_liveness,
        literal=lambda text: text,
    )
    if len(script.encode()) > USER_DATA_LIMIT:
        raise ValueError(f"the user data is {len(script.encode())} bytes; EC2 accepts 16 KB")
    return script


#: The longest ARN a Secrets Manager secret can have (a 512-character name, a 64-bit account and
#: partition, the 7-character suffix): what the 16 KB check of :func:`user_data_for_sub` assumes.
_SECRET_ARN_MAX = 600


def user_data_for_sub(*, secret_variable: str, api_port: int, anonymous_liveness: bool) -> str:
    """The same user data as :func:`render_user_data`, as the text of a CloudFormation
    ``Fn::Sub``: the secret's ARN is ``${<secret_variable>}`` (the secret's logical id, whose
    ``Ref`` is its ARN) and the region ``${AWS::Region}``, resolved when the stack is created.
    Every other ``${`` of the script (bash's own expansions) is escaped as ``${!``, which
    ``Fn::Sub`` turns back into ``${``, so the instance receives byte for byte what the
    deployer would send it.
    """
    if not secret_variable.isalnum():
        raise ValueError(f"not a CloudFormation logical id: {secret_variable!r}")
    script = _render(
        secret_arn="${" + secret_variable + "}",
        region="${AWS::Region}",
        api_port=api_port,
        anonymous_liveness=anonymous_liveness,
        literal=lambda text: text.replace("${", "${!"),
    )
    # Bytes the instance receives: the escapes removed, the longest possible ARN in.
    resolved = script.replace("${!", "${").replace(
        "${" + secret_variable + "}", "x" * _SECRET_ARN_MAX
    )
    if len(resolved.encode()) > USER_DATA_LIMIT:
        raise ValueError(f"the user data is {len(resolved.encode())} bytes; EC2 accepts 16 KB")
    return script


def _render(
    *,
    secret_arn: str,
    region: str,
    api_port: int,
    anonymous_liveness: bool,
    literal: Callable[[str], str],
) -> str:
    """``api_health.sh`` with its markers replaced; ``literal`` is applied to the script's own
    text (and the files embedded in it), not to the values."""
    if isinstance(api_port, bool) or not isinstance(api_port, int) or not 1 <= api_port <= 65535:
        raise ValueError(f"not a port number: {api_port!r}")
    values = {
        "@@SECRET_ARN@@": secret_arn,
        "@@REGION@@": region,
        "@@API_PORT@@": str(api_port),
        "@@ANONYMOUS_LIVENESS@@": "1" if anonymous_liveness else "0",
        "@@SERVER_PY@@": literal(_embeddable("api_server.py")),
        "@@PREPARE_SH@@": literal(_embeddable("prepare.sh")),
    }
    script = literal((USERDATA_DIR / "api_health.sh").read_text())
    for marker, value in values.items():
        if marker not in script:
            raise ValueError(f"api_health.sh lost its {marker} placeholder")
        script = script.replace(marker, value)
    return script
