"""The compute and load-balancing handlers against the moto server over HTTP, plus the artifacts
they deploy: the Lambda package, the API instance's user data, and the two programs in them (the
function and the instance's HTTPS health API) run for real against each other.

Nodes come from a real plan; prerequisites that belong to other handler groups (VPC, subnets,
security groups, IAM, the secret) are made with plain boto3 calls carrying the same gantry tags
those handlers would write.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from deployer.aws import client_factory
from deployer.drift import compare
from deployer.resources import handler_for
from deployer.resources._compute import derived_token, request_token, resolve_image_id
from deployer.resources.base import (
    TAG_DEPLOYMENT,
    TAG_INSTALLATION,
    TAG_LOGICAL_ID,
    AwsContext,
    CannotUpdate,
    Failed,
    Gone,
    Pending,
    Ready,
    RetryLater,
)
from deployer.resources.certificate import self_signed_pem
from deployer.resources.lambda_function import code_sha256
from designer.graph import Ref, ResourceGraph, ResourceNode
from designer.plan import plan
from designer.spec import DEFAULT_SPEC, validate_spec
from tests.support import HandlerDriver, aws
from workload import artifacts

REPO = Path(__file__).resolve().parent.parent
API_SERVER = REPO / "workload" / "userdata" / "api_server.py"
PREPARE_SH = REPO / "workload" / "userdata" / "prepare.sh"


#: A role trust policy that lets Lambda assume the role.
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)

# -- helpers ------------------------------------------------------------------------------------


def make_plan(api_kind: str, **changes: Any) -> ResourceGraph:
    """The plan of the article's layout with two API and two Lambda AZs, and ``changes`` to the
    spec (a design's next version: ``api_port=8443``, ``tags={...}``...)."""
    spec = validate_spec(
        {
            **DEFAULT_SPEC,
            "nat": "single",
            "api_kind": api_kind,
            "api_subnet_cidrs": ["10.0.2.0/24", "10.0.3.0/24"],
            "lambda_subnet_cidrs": ["10.0.1.0/24", "10.0.4.0/24"],
            **changes,
        }
    ).spec
    graph = plan(spec)
    # The API's port is not a CloudFormation property of an instance or launch template; the
    # handlers read it from meta["api_port"], which the plan is to carry (see _compute.api_port).
    for logical_id in ("ApiInstance", "ApiLaunchTemplate"):
        if logical_id in graph:
            graph[logical_id].meta.setdefault("api_port", spec.api_port)
    return graph


def resolve(value: Any, known: dict[tuple[str, str], Any]) -> Any:
    """What the engine does before find/create: every Ref replaced by its value."""
    if isinstance(value, Ref):
        return known[(value.logical_id, value.attribute)]
    if isinstance(value, dict):
        return {k: resolve(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, known) for v in value]
    return value


def settle(ctx: AwsContext, node: ResourceNode, physical_id: str) -> Ready | Pending | Failed:
    """check_ready until it stops being Pending (moto moves some states along on each read)."""
    handler = handler_for(node.type)
    for _ in range(5):
        result = handler.check_ready(ctx, node, physical_id)
        if not isinstance(result, Pending):
            return result
    return result


def gantry_tags(ctx: AwsContext, logical_id: str) -> list[dict[str, str]]:
    return [
        {"Key": TAG_DEPLOYMENT, "Value": ctx.deployment_tag},
        {"Key": TAG_INSTALLATION, "Value": ctx.installation},
        {"Key": TAG_LOGICAL_ID, "Value": logical_id},
    ]


def as_dict(tags: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def assert_gantry_tags(ctx: AwsContext, node: ResourceNode, tags: Any) -> None:
    tags = tags if isinstance(tags, dict) else as_dict(tags)
    assert tags[TAG_DEPLOYMENT] == ctx.deployment_tag
    assert tags[TAG_INSTALLATION] == ctx.installation
    assert tags[TAG_LOGICAL_ID] == node.logical_id
    assert tags["Name"] == node.meta["name"]


def delete_twice(ctx: AwsContext, node: ResourceNode, physical_id: str) -> None:
    """delete -> check_gone -> Gone, and a second delete of the deleted resource is fine."""
    handler = handler_for(node.type)
    handler.delete(ctx, node, physical_id)
    assert handler.check_gone(ctx, node, physical_id) == Gone()
    handler.delete(ctx, node, physical_id)
    assert handler.check_gone(ctx, node, physical_id) == Gone()


def client(ctx: AwsContext, service: str) -> Any:
    return ctx.client(service)


@pytest.fixture
def world(aws_context):
    """A fresh deployment with what other handler groups would have made: a VPC with two API
    and two Lambda subnets, security groups, the API credential secret, the Lambda role, the API
    instance profile and the log group."""
    ctx = aws_context()
    ec2 = client(ctx, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for logical_id, cidr, az in (
        ("ApiSubnet1", "10.0.2.0/24", "us-east-1a"),
        ("ApiSubnet2", "10.0.3.0/24", "us-east-1b"),
        ("ApiSubnet3", "10.0.5.0/24", "us-east-1c"),
        ("LambdaSubnet1", "10.0.1.0/24", "us-east-1a"),
        ("LambdaSubnet2", "10.0.4.0/24", "us-east-1b"),
    ):
        subnets[logical_id] = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)[
            "Subnet"
        ]["SubnetId"]
    groups = {
        logical_id: ec2.create_security_group(
            GroupName=f"{ctx.deployment_tag}-{logical_id}", Description=logical_id, VpcId=vpc
        )["GroupId"]
        for logical_id in ("ApiSecurityGroup", "ApiInstanceSecurityGroup", "LambdaSecurityGroup")
    }
    secret_arn = client(ctx, "secretsmanager").create_secret(
        Name=f"gantry/{ctx.deployment_tag}/api-credential",
        SecretString="s3cret-" + uuid.uuid4().hex,
        Tags=gantry_tags(ctx, "ApiSecret"),
    )["ARN"]
    iam = client(ctx, "iam")
    role_arn = iam.create_role(
        RoleName=f"{ctx.deployment_tag}-lambda-role", AssumeRolePolicyDocument=LAMBDA_TRUST
    )["Role"]["Arn"]
    profile_name = f"{ctx.deployment_tag}-api-instance-profile"
    profile_arn = iam.create_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"][
        "Arn"
    ]
    log_group = f"/aws/lambda/{ctx.deployment_tag}"
    client(ctx, "logs").create_log_group(logGroupName=log_group)
    known: dict[tuple[str, str], Any] = {("Vpc", "Id"): vpc, ("ApiSecret", "Id"): secret_arn}
    known.update({(k, "Id"): v for k, v in {**subnets, **groups}.items()})
    known.update(
        {
            ("LambdaRole", "Arn"): role_arn,
            ("LambdaLogGroup", "Id"): log_group,
            ("ApiInstanceProfile", "Id"): profile_name,
            ("ApiInstanceProfile", "Arn"): profile_arn,
        }
    )
    return ctx, known


# -- live stacks: helpers ---------------------------------------------------------------------
#
# Driven by tests.support.HandlerDriver: the properties a handler gets are the engine's own
# (Refs resolved, unique names, the gantry tags in Tags), from the ids and Ready attributes of
# the world's prerequisites and of what the test has made. A design's next version is the plan
# of a changed spec; ``before`` is what the last version applied, as the walker passes it.

V1_TAGS = {"team": "payments", "tier": "1"}
V2_TAGS = {"team": "orders", "cost-centre": "42"}


def driver(ctx: AwsContext, known: dict[tuple[str, str], Any], graph: ResourceGraph):
    dep = HandlerDriver(ctx, graph)
    for (logical_id, attribute), value in known.items():
        if attribute == "Id":
            dep.ids[logical_id] = value
        else:
            dep.attributes.setdefault(logical_id, {})[attribute] = value
    return dep


def next_version(dep: HandlerDriver, graph: ResourceGraph, spec_tags: dict) -> HandlerDriver:
    """The same deployment (identity, physical ids) at the design's next version."""
    later = HandlerDriver(replace(dep.ctx, spec_tags=spec_tags), graph)
    later.ids, later.attributes = dep.ids, dep.attributes
    return later


def via(ctx: AwsContext, endpoint: str) -> AwsContext:
    """The same deployment, its calls through ``endpoint`` (the sandbox in front of moto)."""
    return replace(ctx, client=client_factory(region=ctx.region, endpoint_url=endpoint))


def read(dep: HandlerDriver, logical_id: str) -> dict[str, Any] | None:
    return dep.handler(logical_id).read(dep.ctx, dep.node(logical_id), dep.ids[logical_id])


def drifted(dep: HandlerDriver, logical_id: str) -> set[str]:
    """The properties a drift check finds changed: what was applied against what AWS says."""
    node = dep.node(logical_id)
    return {d.property for d in compare(node.type, dep.props(logical_id), read(dep, logical_id))}


def update(dep: HandlerDriver, logical_id: str, before: dict[str, Any]) -> None:
    node = dep.node(logical_id)
    dep.handler(logical_id).update(
        dep.ctx, node, dep.ids[logical_id], before, dep.props(logical_id)
    )


def poll(attempt: Callable[[], Any], timeout: float = 60.0) -> tuple[Any, list[str]]:
    """``attempt()`` until it neither raises RetryLater nor returns Pending (a deadline, no
    fixed wait); its result and every reason it gave on the way, in order, once each."""
    reasons: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = attempt()
        except RetryLater as exc:
            result, reason = None, exc.reason
        else:
            if not isinstance(result, Pending):
                return result, reasons
            reason = result.reason
        if not reasons or reasons[-1] != reason:
            reasons.append(reason)
        assert time.monotonic() < deadline, f"still waiting: {reasons}"
        time.sleep(0.05)


def ready(dep: HandlerDriver, logical_id: str, timeout: float = 60.0) -> list[str]:
    """check_ready until Ready (recording its attributes for the Refs of later nodes)."""
    result, reasons = poll(lambda: dep.check(logical_id), timeout)
    assert isinstance(result, Ready), (result, reasons)
    dep.attributes[logical_id] = result.attributes
    return reasons


@pytest.fixture
def fast_sandbox(sandbox):
    """The sandbox at a quarter of its usual time scale (an instance refresh waits out each new
    instance's warm-up, the group's 300 s health check grace period: 1.5 s here)."""
    sandbox.config(time_scale=0.005)
    yield sandbox
    sandbox.config(time_scale=0.02)


def gone(dep: HandlerDriver, logical_id: str) -> None:
    """delete, then check_gone until Gone (an Auto Scaling group terminates its instances)."""
    dep.delete(logical_id)
    result, _ = poll(lambda: dep.check_gone(logical_id))
    assert result == Gone()


# -- artifacts ----------------------------------------------------------------------------------


def test_lambda_zip_is_deterministic_and_holds_only_the_handler_as_the_planned_module():
    first = artifacts.lambda_zip("index.handler")
    assert first == artifacts.lambda_zip("index.handler")
    archive = zipfile.ZipFile(io.BytesIO(first))
    assert archive.namelist() == ["index.py"]
    (info,) = archive.infolist()
    assert info.date_time == (1980, 1, 1, 0, 0, 0)
    assert (info.external_attr >> 16) & 0o777 == 0o644
    assert archive.read("index.py") == artifacts.LAMBDA_SOURCE.read_bytes()
    assert artifacts.lambda_zip("app.handler") != first  # named after the Handler setting
    for wrong in ("handler", "index.main", "1x.handler"):
        with pytest.raises(ValueError):
            artifacts.lambda_zip(wrong)


def test_user_data_renders_a_valid_script_without_the_credential():
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gantry/x/api-credential-AbCdEf"
    script = artifacts.render_user_data(
        secret_arn=arn, region="eu-west-1", api_port=8443, anonymous_liveness=True
    )
    assert "@@" not in script
    assert f"GANTRY_API_SECRET_ARN={arn}\n" in script
    assert "GANTRY_API_PORT=8443\n" in script
    assert "GANTRY_API_ANONYMOUS_LIVENESS=1\n" in script
    assert API_SERVER.read_text().rstrip("\n") in script
    assert len(script.encode()) <= artifacts.USER_DATA_LIMIT
    # No shell tracing anywhere: it would echo the credential into the cloud-init log.
    assert not re.search(r"^\s*set\s+-\w*x", script, re.MULTILINE)
    assert not re.search(r"^\s*set\s+-\w*x", PREPARE_SH.read_text(), re.MULTILINE)
    subprocess.run(["bash", "-n"], input=script.encode(), check=True)
    single = artifacts.render_user_data(
        secret_arn=arn, region="eu-west-1", api_port=443, anonymous_liveness=False
    )
    assert "GANTRY_API_ANONYMOUS_LIVENESS=0\n" in single
    for bad in (
        {"secret_arn": "arn:aws:iam::123456789012:role/x"},
        {"secret_arn": arn + "\nGANTRY_API_PORT=1"},
        {"region": "eu-west-1; reboot"},
        {"api_port": 0},
        {"api_port": True},
    ):
        kwargs = {
            "secret_arn": arn,
            "region": "eu-west-1",
            "api_port": 443,
            "anonymous_liveness": False,
        }
        with pytest.raises(ValueError):
            artifacts.render_user_data(**{**kwargs, **bad})


def fn_sub(text: str, variables: dict[str, str]) -> str:
    """CloudFormation's ``Fn::Sub`` of ``text``: ``${Name}`` replaced, ``${!x}`` kept as
    ``${x}`` (its documented escape)."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        return "${" + name[1:] + "}" if name.startswith("!") else variables[name]

    return re.sub(r"\$\{([^}]*)\}", one, text)


@pytest.mark.parametrize("anonymous_liveness", [True, False])
def test_user_data_for_a_template_is_the_deployers_once_cloudformation_substitutes(
    anonymous_liveness,
):
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gantry/x/api-credential-AbCdEf"
    template = artifacts.user_data_for_sub(
        secret_variable="ApiSecret", api_port=8443, anonymous_liveness=anonymous_liveness
    )
    assert "${ApiSecret}" in template and "${AWS::Region}" in template
    resolved = fn_sub(template, {"ApiSecret": arn, "AWS::Region": "eu-west-1"})
    assert resolved == artifacts.render_user_data(
        secret_arn=arn, region="eu-west-1", api_port=8443, anonymous_liveness=anonymous_liveness
    )
    with pytest.raises(ValueError):
        artifacts.user_data_for_sub(
            secret_variable="Api}Secret", api_port=443, anonymous_liveness=False
        )


# -- the two programs, for real -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _amazon_linux_python() -> str:
    """A Python 3.9 interpreter (what Amazon Linux 2023's python3 is) if this machine has a
    working one, else the test interpreter."""
    candidate = shutil.which("python3.9")
    if candidate:
        check = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"],
            capture_output=True,
        )
        if check.returncode == 0:
            return candidate
    return sys.executable


@pytest.fixture
def api_server(tmp_path):
    """Start workload/userdata/api_server.py (under Python 3.9, Amazon Linux 2023's python3,
    when this machine has one) with a self-signed certificate and a credential file."""
    cert, key = self_signed_pem("localhost", ["localhost"])
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    python = _amazon_linux_python()
    procs = []

    def start(credential: str, *, anonymous_liveness: bool) -> int:
        (tmp_path / "credential").write_text(credential + "\n")
        port = _free_port()
        env = {
            **os.environ,
            "GANTRY_API_PORT": str(port),
            "GANTRY_API_BIND": "127.0.0.1",
            "GANTRY_API_CERT": str(tmp_path / "cert.pem"),
            "GANTRY_API_KEY": str(tmp_path / "key.pem"),
            "GANTRY_API_CREDENTIAL_FILE": str(tmp_path / "credential"),
            "GANTRY_API_ANONYMOUS_LIVENESS": "1" if anonymous_liveness else "0",
        }
        proc = subprocess.Popen(
            [python, str(API_SERVER)], env=env, stderr=subprocess.PIPE, text=True
        )
        procs.append(proc)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.05)
        pytest.fail("api_server.py did not start")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
        log = proc.stderr.read()
        # The server logs request lines, never the credential.
        assert (tmp_path / "credential").read_text().strip() not in log


def _get(port: int, headers: dict[str, str], path: str = "/health") -> tuple[int, dict]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_api_server_requires_the_bearer_credential(api_server):
    port = api_server("right-credential", anonymous_liveness=False)
    assert _get(port, {"Authorization": "Bearer right-credential"}) == (
        200,
        {"status": "ok", "authenticated": True},
    )
    assert _get(port, {"Authorization": "Bearer wrong"})[0] == 401
    assert _get(port, {"Authorization": "Basic right-credential"})[0] == 401
    assert _get(port, {})[0] == 401
    assert _get(port, {"Authorization": "Bearer right-credential"}, "/other")[0] == 404


def test_api_server_behind_an_alb_answers_the_health_checker_without_credential(api_server):
    port = api_server("right-credential", anonymous_liveness=True)
    assert _get(port, {}) == (200, {"status": "ok"})
    assert _get(port, {"Authorization": "Bearer wrong"})[0] == 401
    assert _get(port, {"Authorization": "Bearer right-credential"})[1]["authenticated"] is True


@pytest.fixture
def lambda_module(monkeypatch, moto_endpoint):
    """The function's module, configured like the deployed function but against moto."""
    from workload.lambda_src import handler as module

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("API_HOST", "127.0.0.1")
    monkeypatch.setenv("API_SCHEME", "https")
    # A fresh cold start: no cached credential or client.
    monkeypatch.setattr(module, "_credential", None)
    monkeypatch.setattr(module, "_secrets_client", None)
    return module


def _secret(moto_endpoint: str, value: str | None) -> str:
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    kwargs = {"SecretString": value} if value is not None else {}
    return sm.create_secret(Name=f"test/{uuid.uuid4().hex}", **kwargs)["ARN"]


def test_lambda_calls_the_api_with_the_credential_from_secrets_manager(
    api_server, lambda_module, moto_endpoint, monkeypatch
):
    port = api_server("cred-42", anonymous_liveness=False)
    monkeypatch.setenv("API_PORT", str(port))
    monkeypatch.setenv("API_SECRET_ARN", _secret(moto_endpoint, "cred-42"))
    result = lambda_module.handler({}, None)
    assert result == {"status": 200, "body": {"status": "ok", "authenticated": True}}
    assert "cred-42" not in json.dumps(result)


def test_lambda_returns_the_api_refusal_after_rereading_the_credential(
    api_server, lambda_module, moto_endpoint, monkeypatch
):
    port = api_server("the-api-credential", anonymous_liveness=False)
    monkeypatch.setenv("API_PORT", str(port))
    monkeypatch.setenv("API_SECRET_ARN", _secret(moto_endpoint, "another-value"))
    result = lambda_module.handler({}, None)
    assert result["status"] == 401
    assert result["body"] == {"error": "missing or invalid credential"}


def test_lambda_says_clearly_what_failed(lambda_module, moto_endpoint, monkeypatch):
    monkeypatch.setenv("API_PORT", str(_free_port()))  # nothing listens there
    monkeypatch.setenv("API_SECRET_ARN", _secret(moto_endpoint, "x"))
    with pytest.raises(lambda_module.ApiUnreachable, match="no answer from https://127.0.0.1"):
        lambda_module.handler({}, None)

    monkeypatch.setattr(lambda_module, "_credential", None)
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    monkeypatch.setenv("API_SECRET_ARN", missing)
    with pytest.raises(lambda_module.CredentialUnavailable, match="ResourceNotFoundException"):
        lambda_module.handler({}, None)

    monkeypatch.setenv("API_SECRET_ARN", _secret(moto_endpoint, None))
    with pytest.raises(lambda_module.CredentialUnavailable, match="no value yet"):
        lambda_module.handler({}, None)

    monkeypatch.setenv("API_SCHEME", "http")
    with pytest.raises(lambda_module.ConfigurationError, match="https"):
        lambda_module.handler({}, None)
    monkeypatch.setenv("API_SCHEME", "https")
    monkeypatch.delenv("API_HOST")
    with pytest.raises(lambda_module.ConfigurationError, match="API_HOST"):
        lambda_module.handler({}, None)


@pytest.mark.skipif(
    shutil.which("aws") is None or shutil.which("openssl") is None,
    reason="needs the AWS CLI and openssl, which the instance's prepare.sh runs",
)
@pytest.mark.parametrize("existing", [True, False], ids=["secret-has-value", "empty-secret"])
def test_prepare_script_puts_certificate_and_credential_in_place(tmp_path, moto_endpoint, existing):
    """The instance's prepare.sh against moto: reads the credential, or generates and stores
    one when the secret has no value, and never prints it."""
    arn = _secret(moto_endpoint, "existing-credential" if existing else None)
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "GANTRY_API_SECRET_ARN": arn,
        "GANTRY_API_REGION": "us-east-1",
        "GANTRY_API_DIR": str(tmp_path),
        "GANTRY_API_GROUP": group.strip(),
    }
    run = subprocess.run(["bash", str(PREPARE_SH)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    credential = (tmp_path / "credential").read_text()
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    assert credential == sm.get_secret_value(SecretId=arn)["SecretString"]
    if existing:
        assert credential == "existing-credential"
    else:
        assert len(credential) == 40 and credential.isalnum()  # the plan's GenerateSecretString
    assert credential not in run.stdout + run.stderr
    assert (tmp_path / "credential").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "tls-key.pem").stat().st_mode & 0o777 == 0o640
    assert b"BEGIN CERTIFICATE" in (tmp_path / "tls-cert.pem").read_bytes()
    assert not list(tmp_path.glob(".*"))  # no leftover temporary files
    # A restart keeps the certificate (valid for a year) and re-reads the credential.
    cert = (tmp_path / "tls-cert.pem").read_bytes()
    again = subprocess.run(["bash", str(PREPARE_SH)], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "tls-cert.pem").read_bytes() == cert
    assert (tmp_path / "credential").read_text() == credential


# -- Lambda function ----------------------------------------------------------------------------


def test_lambda_function_lifecycle(world, aws_context):
    ctx, known = world
    node = make_plan("alb")["LambdaFunction"]
    known[("ApiLoadBalancer", "DNSName")] = "internal-x-1.us-east-1.elb.amazonaws.com"
    props = resolve(node.properties, known)
    props["FunctionName"] = f"{ctx.deployment_tag}-fn"  # the account is shared between tests
    handler = handler_for(node.type)

    assert handler.find(ctx, node, props) == []
    name = handler.create(ctx, node, props)
    assert name == props["FunctionName"]
    result = settle(ctx, node, name)
    assert isinstance(result, Ready)
    assert result.attributes["Arn"].endswith(f":function:{name}")

    got = client(ctx, "lambda").get_function(FunctionName=name)
    assert_gantry_tags(ctx, node, got["Tags"])
    config = got["Configuration"]
    expected_sha = base64.b64encode(hashlib.sha256(artifacts.lambda_zip()).digest()).decode()
    assert config["CodeSha256"] == expected_sha
    assert config["Handler"] == "index.handler"
    assert config["TracingConfig"] == {"Mode": "Active"}
    assert sorted(config["VpcConfig"]["SubnetIds"]) == sorted(
        [known[("LambdaSubnet1", "Id")], known[("LambdaSubnet2", "Id")]]
    )
    assert config["Environment"]["Variables"]["API_SECRET_ARN"] == known[("ApiSecret", "Id")]
    # CreateFunction cannot reserve concurrency: create did it next, as the plan asks.
    reserved = got["Concurrency"]["ReservedConcurrentExecutions"]
    assert int(reserved) == node.properties["ReservedConcurrentExecutions"] == 10

    assert handler.find(ctx, node, props) == [name]
    # Another deployment never adopts it, although the name is the same.
    assert handler.find(aws_context(), node, props) == []

    delete_twice(ctx, node, name)
    assert handler.find(ctx, node, props) == []


def test_lambda_says_when_the_account_cannot_reserve_its_concurrency(start_moto, moto_endpoint):
    from deployer.aws import client_factory
    from deployer.errors import classify

    # An account whose Lambda concurrency quota is 105: moto enforces AWS's rule (100
    # executions stay unreserved) only in a server started with a quota.
    endpoint = start_moto(MOTO_LAMBDA_CONCURRENCY_QUOTA="105")
    ctx = AwsContext(
        deployment_tag=f"gd-test-{uuid.uuid4().hex[:8]}",
        region="us-east-1",
        client=client_factory(region="us-east-1", endpoint_url=endpoint),
    )
    role = client(ctx, "iam").create_role(
        RoleName="quota-test", AssumeRolePolicyDocument=LAMBDA_TRUST
    )["Role"]["Arn"]
    node = make_plan("ec2")["LambdaFunction"]
    props = {
        "FunctionName": "quota-test",
        "Runtime": "python3.12",
        "Handler": "index.handler",
        "Role": role,
        "ReservedConcurrentExecutions": node.properties["ReservedConcurrentExecutions"],
    }
    handler = handler_for(node.type)
    for attempt in (
        lambda: handler.create(ctx, node, props),
        # The function is there now (found by its tags on a later pass): update says it too.
        lambda: handler.update(ctx, node, "quota-test", {}, props),
    ):
        with pytest.raises(ClientError) as refused:
            attempt()
        # What the deployment page shows: the reason in words, AWS's own beside it.
        reason = classify(refused.value).text()
        assert "cannot reserve 10 concurrent executions" in reason
        assert "100" in reason and "InvalidParameterValueException" in reason
    assert isinstance(settle(ctx, node, "quota-test"), Ready)  # check_ready only looks


def test_lambda_waits_for_iam_propagation(world):
    ctx, known = world
    node = make_plan("ec2")["LambdaFunction"]
    known[("ApiInstance", "PrivateDnsName")] = "ip-10-0-2-5.ec2.internal"
    props = resolve(node.properties, known)
    props["FunctionName"] = f"{ctx.deployment_tag}-fn"
    # moto answers a role it does not know exactly as AWS answers one IAM has not propagated.
    props["Role"] = "arn:aws:iam::123456789012:role/not-propagated-yet"
    with pytest.raises(RetryLater, match="IAM propagation"):
        handler_for(node.type).create(ctx, node, props)


# -- EC2 instance -------------------------------------------------------------------------------


def test_instance_lifecycle(world):
    ctx, known = world
    node = make_plan("ec2")["ApiInstance"]
    props = resolve(node.properties, known)
    handler = handler_for(node.type)
    ec2 = client(ctx, "ec2")

    assert handler.find(ctx, node, props) == []
    instance_id = handler.create(ctx, node, props)
    result = settle(ctx, node, instance_id)
    assert isinstance(result, Ready)
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert result.attributes == {
        "PrivateDnsName": instance["PrivateDnsName"],
        "PrivateIp": instance["PrivateIpAddress"],
    }
    assert result.attributes["PrivateIp"].startswith("10.0.2.")
    assert_gantry_tags(ctx, node, instance["Tags"])
    assert instance["SubnetId"] == known[("ApiSubnet1", "Id")]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    ssm_ami = client(ctx, "ssm").get_parameter(Name=props["ImageId"].removeprefix("resolve:ssm:"))
    assert instance["ImageId"] == ssm_ami["Parameter"]["Value"]
    volume_ids = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
    for volume in ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]:
        assert_gantry_tags(ctx, node, volume["Tags"])
    user_data = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    script = base64.b64decode(user_data["UserData"]["Value"]).decode()
    assert f"GANTRY_API_SECRET_ARN={known[('ApiSecret', 'Id')]}\n" in script
    assert "GANTRY_API_PORT=443\n" in script
    assert "GANTRY_API_ANONYMOUS_LIVENESS=0\n" in script

    assert handler.find(ctx, node, props) == [instance_id]
    duplicate = ec2.run_instances(
        ImageId=instance["ImageId"],
        MinCount=1,
        MaxCount=1,
        SubnetId=known[("ApiSubnet1", "Id")],
        TagSpecifications=[{"ResourceType": "instance", "Tags": gantry_tags(ctx, node.logical_id)}],
    )["Instances"][0]["InstanceId"]
    assert sorted(handler.find(ctx, node, props)) == sorted([instance_id, duplicate])

    delete_twice(ctx, node, duplicate)
    assert handler.find(ctx, node, props) == [instance_id]  # terminated ones are ignored
    delete_twice(ctx, node, instance_id)
    assert handler.find(ctx, node, props) == []


def test_instance_needs_the_secret_and_the_port(world):
    ctx, known = world
    node = make_plan("ec2")["ApiInstance"]
    props = resolve(node.properties, known)
    handler = handler_for(node.type)
    orphan = ResourceNode(node.logical_id, node.type, node.properties, meta={**node.meta})
    orphan.meta.pop("api_port")
    with pytest.raises(ValueError, match="api_port"):
        handler.create(ctx, orphan, props)
    client(ctx, "secretsmanager").delete_secret(
        SecretId=known[("ApiSecret", "Id")], ForceDeleteWithoutRecovery=True
    )
    with pytest.raises(RetryLater, match="ApiSecret"):
        handler.create(ctx, node, props)
    assert handler.find(ctx, node, props) == []


def test_client_tokens_follow_the_request(aws_context):
    ctx = aws_context()
    node = make_plan("ec2")["ApiInstance"]
    request = {"ImageId": "ami-1", "InstanceType": "t3.micro"}
    token = request_token(ctx, node, request)
    assert token == request_token(ctx, node, dict(reversed(request.items())))  # a retry
    assert token != request_token(ctx, node, {**request, "ImageId": "ami-2"})  # a new AMI
    assert token != request_token(aws_context(), node, request)  # another deployment
    assert len(token) <= 64 and len(derived_token(token, "i-0123")) <= 64


def test_image_resolution_falls_back_to_the_newest_al2023_image(aws_context):
    ctx = aws_context()
    assert resolve_image_id(ctx, "ami-12345678") == "ami-12345678"
    resolved = resolve_image_id(ctx, "resolve:ssm:/aws/service/no/such/parameter")
    image = client(ctx, "ec2").describe_images(ImageIds=[resolved])["Images"][0]
    assert image["Name"].startswith("al2023-ami-2023")
    assert image["Name"].endswith("-x86_64")


# -- the ALB stack: certificate, target group, load balancer, listener, template, group ---------


def test_alb_stack_lifecycle(world, fast_sandbox):
    ctx, known = world
    # Through the sandbox: the load balancer provisions, the group's instances boot, and the
    # group's check_ready looks for an instance refresh, which moto does not have.
    ctx = via(ctx, fast_sandbox.url)
    graph = make_plan("alb")
    elbv2 = client(ctx, "elbv2")
    made: list[tuple[ResourceNode, str]] = []

    def create(logical_id: str) -> tuple[ResourceNode, dict[str, Any], str, Ready]:
        node = graph[logical_id]
        props = resolve(node.properties, known)
        handler = handler_for(node.type)
        assert handler.find(ctx, node, props) == []
        physical_id = handler.create(ctx, node, props)
        result, _ = poll(lambda: handler.check_ready(ctx, node, physical_id))
        assert isinstance(result, Ready), result
        assert handler.find(ctx, node, props) == [physical_id]
        known[(logical_id, "Id")] = physical_id
        known.update({(logical_id, k): v for k, v in result.attributes.items()})
        made.append((node, physical_id))
        return node, props, physical_id, result

    # Certificate: self-signed, imported with the tags, the key only in ACM.
    node, props, cert_arn, _ = create("ApiCertificate")
    acm = client(ctx, "acm")
    described = acm.describe_certificate(CertificateArn=cert_arn)["Certificate"]
    assert described["Type"] == "IMPORTED"
    assert described["DomainName"] == f"{ctx.deployment_tag}.internal"
    assert "*.us-east-1.elb.amazonaws.com" in described["SubjectAlternativeNames"]
    assert_gantry_tags(ctx, node, acm.list_tags_for_certificate(CertificateArn=cert_arn)["Tags"])
    cert, key = self_signed_pem("dup.internal", ["dup.internal"])
    duplicate = acm.import_certificate(
        Certificate=cert, PrivateKey=key, Tags=gantry_tags(ctx, node.logical_id)
    )["CertificateArn"]
    assert sorted(handler_for(node.type).find(ctx, node, props)) == sorted([cert_arn, duplicate])
    delete_twice(ctx, node, duplicate)

    # Target group and load balancer: ELBv2 finds are list-then-check-tags.
    node, props, tg_arn, result = create("ApiTargetGroup")
    assert result.attributes == {}
    tg = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
    assert (tg["Protocol"], tg["Port"], tg["HealthCheckPath"]) == ("HTTPS", 443, "/health")
    assert len(tg["TargetGroupName"]) <= 32
    assert_gantry_tags(
        ctx, node, elbv2.describe_tags(ResourceArns=[tg_arn])["TagDescriptions"][0]["Tags"]
    )
    duplicate = elbv2.create_target_group(
        Name=f"dup-{uuid.uuid4().hex[:8]}",
        Protocol="HTTPS",
        Port=443,
        VpcId=known[("Vpc", "Id")],
        Tags=gantry_tags(ctx, node.logical_id),
    )["TargetGroups"][0]["TargetGroupArn"]
    assert sorted(handler_for(node.type).find(ctx, node, props)) == sorted([tg_arn, duplicate])
    delete_twice(ctx, node, duplicate)

    node, props, lb_arn, result = create("ApiLoadBalancer")
    lb = elbv2.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]
    assert result.attributes == {"DNSName": lb["DNSName"]}
    assert lb["Scheme"] == "internal"
    assert len(lb["LoadBalancerName"]) <= 32
    # CreateLoadBalancer takes no attributes: create set the plan's right after it.
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    assert as_dict(attributes)["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert_gantry_tags(
        ctx, node, elbv2.describe_tags(ResourceArns=[lb_arn])["TagDescriptions"][0]["Tags"]
    )
    duplicate = elbv2.create_load_balancer(
        Name=f"dup-{uuid.uuid4().hex[:8]}",
        Subnets=props["Subnets"],
        Scheme="internal",
        Tags=gantry_tags(ctx, node.logical_id),
    )["LoadBalancers"][0]["LoadBalancerArn"]
    assert sorted(handler_for(node.type).find(ctx, node, props)) == sorted([lb_arn, duplicate])
    delete_twice(ctx, node, duplicate)

    node, props, listener_arn, _ = create("ApiListener")
    listener = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["Certificates"][0]["CertificateArn"] == cert_arn
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg_arn
    tags = elbv2.describe_tags(ResourceArns=[listener_arn])["TagDescriptions"][0]["Tags"]
    assert_gantry_tags(ctx, node, tags)

    # While the listener forwards to it, the target group cannot go: a transient condition.
    with pytest.raises(RetryLater, match="listener"):
        handler_for("AWS::ElasticLoadBalancingV2::TargetGroup").delete(
            ctx, graph["ApiTargetGroup"], tg_arn
        )

    # Launch template: instances get the gantry tags of the Auto Scaling group.
    node, props, template_id, result = create("ApiLaunchTemplate")
    assert result.attributes == {"LatestVersionNumber": "1"}
    ec2 = client(ctx, "ec2")
    template = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    assert_gantry_tags(ctx, node, template["Tags"])
    data = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    planned = node.properties["LaunchTemplateData"]["TagSpecifications"][0]["Tags"]
    # moto also lists the template's own "launch-template" tags in the version's data.
    instance_specs = [
        s for s in data["TagSpecifications"] if s["ResourceType"] != "launch-template"
    ]
    assert {s["ResourceType"] for s in instance_specs} == {"instance", "volume"}
    for spec in instance_specs:
        tags = as_dict(spec["Tags"])
        assert tags[TAG_DEPLOYMENT] == ctx.deployment_tag
        assert tags[TAG_LOGICAL_ID] == "ApiAutoScalingGroup"
        assert tags["Name"] == as_dict(planned)["Name"]  # "<name>-api-instance", as planned
    assert data["ImageId"].startswith("ami-")
    assert data["IamInstanceProfile"]["Arn"] == known[("ApiInstanceProfile", "Arn")]
    script = base64.b64decode(data["UserData"]).decode()
    assert "GANTRY_API_ANONYMOUS_LIVENESS=1\n" in script
    assert f"GANTRY_API_SECRET_ARN={known[('ApiSecret', 'Id')]}\n" in script
    duplicate = ec2.create_launch_template(
        LaunchTemplateName=f"dup-{uuid.uuid4().hex[:8]}",
        LaunchTemplateData={"ImageId": data["ImageId"]},
        TagSpecifications=[
            {"ResourceType": "launch-template", "Tags": gantry_tags(ctx, node.logical_id)}
        ],
    )["LaunchTemplate"]["LaunchTemplateId"]
    assert sorted(handler_for(node.type).find(ctx, node, props)) == sorted([template_id, duplicate])
    delete_twice(ctx, node, duplicate)

    # Auto Scaling group: ready once MinSize instances are InService.
    node, props, group_name, result = create("ApiAutoScalingGroup")
    autoscaling = client(ctx, "autoscaling")
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
        "AutoScalingGroups"
    ][0]
    assert group_name == ctx.physical_name(node, 255)
    assert sorted(group["VPCZoneIdentifier"].split(",")) == sorted(props["VPCZoneIdentifier"])
    assert group["TargetGroupARNs"] == [tg_arn]
    assert_gantry_tags(ctx, node, group["Tags"])
    assert not any(t["PropagateAtLaunch"] for t in group["Tags"])
    in_service = [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"]
    assert len(in_service) >= props["MinSize"]
    launched = ec2.describe_instances(InstanceIds=in_service)["Reservations"][0]["Instances"][0]
    assert as_dict(launched["Tags"])[TAG_LOGICAL_ID] == "ApiAutoScalingGroup"
    duplicate = f"dup-{uuid.uuid4().hex[:8]}"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=duplicate,
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
        VPCZoneIdentifier=known[("ApiSubnet1", "Id")],
        Tags=[
            {
                **t,
                "PropagateAtLaunch": False,
                "ResourceId": duplicate,
                "ResourceType": "auto-scaling-group",
            }
            for t in gantry_tags(ctx, node.logical_id)
        ],
    )
    assert sorted(handler_for(node.type).find(ctx, node, props)) == sorted([group_name, duplicate])
    delete_twice(ctx, node, duplicate)

    # Destroy in reverse order; every delete tolerates an already-deleted resource.
    for node, physical_id in reversed(made):
        delete_twice(ctx, node, physical_id)
        assert handler_for(node.type).find(ctx, node, resolve(node.properties, known)) == []


# -- live stacks: read, update in place, drift -------------------------------------------------


def test_lambda_reads_back_updates_in_place_and_repairs_drift(world, moto_endpoint):
    ctx, known = world
    lid = "LambdaFunction"
    v1 = driver(replace(ctx, spec_tags=V1_TAGS), known, make_plan("ec2", tags=V1_TAGS))
    v1.attributes["ApiInstance"] = {"PrivateDnsName": "ip-10-0-2-5.ec2.internal"}
    name = v1.create(lid)
    lam = aws(moto_endpoint, "lambda")
    # The reservation is made by create itself (check_ready only looks).
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 10
    ready(v1, lid)
    assert drifted(v1, lid) == set()
    assert read(v1, lid)["VpcConfig"] == {
        "SubnetIds": [known[("LambdaSubnet1", "Id")], known[("LambdaSubnet2", "Id")]],
        "SecurityGroupIds": [known[("LambdaSecurityGroup", "Id")]],
    }

    # The next version: another API port (the function's environment) and other spec tags.
    v2 = next_version(v1, make_plan("ec2", api_port=8443, tags=V2_TAGS), V2_TAGS)
    update(v2, lid, v1.props(lid))
    ready(v2, lid)
    assert drifted(v2, lid) == set()
    got = lam.get_function(FunctionName=name)
    assert got["Configuration"]["Environment"]["Variables"]["API_PORT"] == "8443"
    tags = got["Tags"]
    assert tags["team"] == "orders" and tags["cost-centre"] == "42" and "tier" not in tags
    assert tags[TAG_DEPLOYMENT] == ctx.deployment_tag and tags[TAG_LOGICAL_ID] == lid
    # And one without the second Lambda AZ: the function's VPC configuration changes in place.
    one_az = make_plan("ec2", api_port=8443, tags=V2_TAGS, lambda_subnet_cidrs=["10.0.1.0/24"])
    v3 = next_version(v2, one_az, V2_TAGS)
    update(v3, lid, v2.props(lid))
    ready(v3, lid)
    assert drifted(v3, lid) == set()
    assert read(v3, lid)["VpcConfig"]["SubnetIds"] == [known[("LambdaSubnet1", "Id")]]
    update(v2, lid, v3.props(lid))  # and back
    ready(v2, lid)

    # Changed by hand: memory, an environment variable added, a tag and the reservation
    # removed, other code. The drift check sees each; an update from what it read repairs them.
    arn = got["Configuration"]["FunctionArn"]
    variables = got["Configuration"]["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=name, MemorySize=1024, Environment={"Variables": {**variables, "DEBUG": "1"}}
    )
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    lam.delete_function_concurrency(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=artifacts.lambda_zip("other.handler"))
    assert drifted(v2, lid) == {"MemorySize", "Environment", "Tags", "ReservedConcurrentExecutions"}
    # One change at a time, as Lambda takes them: the code, then the configuration.
    _, reasons = poll(lambda: update(v2, lid, read(v2, lid)))
    assert reasons == [
        "Lambda is applying the function's new code; its new configuration follows once that "
        "is done"
    ]
    ready(v2, lid)
    assert drifted(v2, lid) == set()
    config = lam.get_function(FunctionName=name)["Configuration"]
    assert config["CodeSha256"] == code_sha256("index.handler")
    assert "DEBUG" not in config["Environment"]["Variables"]
    # Up to date: an update changes nothing (no configuration or code call to wait for).
    update(v2, lid, v2.props(lid))
    assert (
        lam.get_function(FunctionName=name)["Configuration"]["LastModified"]
        == (config["LastModified"])
    )
    with pytest.raises(CannotUpdate, match="name cannot change"):
        after = {**v2.props(lid), "FunctionName": "another-name"}
        v2.handler(lid).update(v2.ctx, v2.node(lid), name, v2.props(lid), after)

    v2.destroy(lid)
    assert read(v2, lid) is None


def test_lambda_changes_wait_while_lambda_applies_the_previous_one(world, sandbox, moto_endpoint):
    """Through the sandbox: a function in a VPC is Pending for a while after its creation, and
    InProgress after each change, and Lambda refuses another change meanwhile."""
    ctx, known = world
    lid = "LambdaFunction"
    v1 = driver(via(ctx, sandbox.url), known, make_plan("ec2"))
    v1.attributes["ApiInstance"] = {"PrivateDnsName": "ip-10-0-2-5.ec2.internal"}
    name = v1.create(lid)
    v2 = next_version(v1, make_plan("ec2", api_port=8443), {})
    # Created a moment ago: still Pending, so the change waits (nothing is started).
    with pytest.raises(RetryLater, match="still applying the function's previous change"):
        update(v2, lid, v1.props(lid))
    assert ready(v1, lid) == ["Lambda is creating its network interfaces in the VPC (~1 minute)"]

    # Other code put in place outside Gantry (straight to moto): the update has a new
    # configuration and new code to apply, which Lambda takes one after the other.
    lam = aws(moto_endpoint, "lambda")
    lam.update_function_code(FunctionName=name, ZipFile=artifacts.lambda_zip("other.handler"))
    with pytest.raises(RetryLater, match="new configuration follows"):
        update(v2, lid, v1.props(lid))
    assert v2.check(lid) == Pending("Lambda is applying the function's new configuration or code")
    with pytest.raises(ClientError) as conflict:
        v2.ctx.client("lambda").update_function_configuration(FunctionName=name, Timeout=20)
    assert conflict.value.response["Error"]["Code"] == "ResourceConflictException"
    _, reasons = poll(lambda: update(v2, lid, v1.props(lid)))
    assert reasons == [
        "Lambda is still applying the function's previous change; the next one starts once "
        "it is done"
    ]
    assert isinstance(v2.check(lid), Pending)  # the configuration change, now
    ready(v2, lid)
    assert drifted(v2, lid) == set()
    config = lam.get_function(FunctionName=name)["Configuration"]
    assert config["Environment"]["Variables"]["API_PORT"] == "8443"
    assert config["CodeSha256"] == code_sha256("index.handler")
    assert config["Timeout"] == v2.props(lid)["Timeout"]  # the refused change never happened


def test_instance_reads_back_updates_in_place_and_repairs_drift(world, moto_endpoint):
    ctx, known = world
    lid = "ApiInstance"
    v1 = driver(replace(ctx, spec_tags=V1_TAGS), known, make_plan("ec2", tags=V1_TAGS))
    instance_id = v1.create(lid)
    ready(v1, lid)
    assert drifted(v1, lid) == set()
    assert read(v1, lid)["IamInstanceProfile"] == known[("ApiInstanceProfile", "Id")]

    # What a new version changes in place on the API instance: its tags (a new port or
    # credential is new user data, which replaces the instance).
    v2 = next_version(v1, make_plan("ec2", tags=V2_TAGS), V2_TAGS)
    update(v2, lid, v1.props(lid))
    ready(v2, lid)
    assert drifted(v2, lid) == set()
    ec2 = aws(moto_endpoint, "ec2")

    def described() -> dict[str, Any]:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]

    tags = as_dict(described()["Tags"])
    assert tags["team"] == "orders" and tags["cost-centre"] == "42" and "tier" not in tags
    assert tags[TAG_DEPLOYMENT] == ctx.deployment_tag

    # Changed by hand: a second security group, IMDSv1 allowed again, another instance
    # profile, a tag removed.
    iam = aws(moto_endpoint, "iam")
    other_profile = iam.create_instance_profile(InstanceProfileName=f"{ctx.deployment_tag}-other")[
        "InstanceProfile"
    ]
    association = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"][0]
    ec2.replace_iam_instance_profile_association(
        IamInstanceProfile={"Arn": other_profile["Arn"]},
        AssociationId=association["AssociationId"],
    )
    ec2.modify_instance_attribute(
        InstanceId=instance_id,
        Groups=[known[("ApiSecurityGroup", "Id")], known[("LambdaSecurityGroup", "Id")]],
    )
    ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="optional")
    ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": "team"}])
    # (moto's DescribeInstances keeps showing the profile the instance was launched with, so
    # the profile's drift shows on AWS only; update judges by the association itself.)
    assert drifted(v2, lid) == {"SecurityGroupIds", "MetadataOptions", "Tags"}
    update(v2, lid, read(v2, lid))
    ready(v2, lid)
    assert drifted(v2, lid) == set()
    instance = described()
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [known[("ApiSecurityGroup", "Id")]]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    (association,) = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    assert association["IamInstanceProfile"]["Arn"] == known[("ApiInstanceProfile", "Arn")]

    # A new instance type: EC2 changes it on a stopped instance only. The update stops it, then
    # changes the type and starts it again, and check_ready waits for it to run.
    bigger = {**v2.props(lid), "InstanceType": "t3.small"}
    handler, node = v2.handler(lid), v2.node(lid)
    _, reasons = poll(lambda: handler.update(ctx, node, instance_id, v2.props(lid), bigger))
    assert reasons[0].startswith("stopping the API instance to change its type (t3.micro -> ")
    ready(v2, lid)
    assert described()["InstanceType"] == "t3.small"
    assert described()["State"]["Name"] == "running"

    # What cannot change on a running instance is refused: the change set replaces it.
    with pytest.raises(CannotUpdate, match="another subnet"):
        moved = {**v2.props(lid), "SubnetId": known[("ApiSubnet2", "Id")]}
        handler.update(ctx, node, instance_id, v2.props(lid), moved)

    v2.delete(lid)
    assert read(v2, lid) is None


ALB_STACK = (
    "ApiCertificate",
    "ApiTargetGroup",
    "ApiLoadBalancer",
    "ApiListener",
    "ApiLaunchTemplate",
    "ApiAutoScalingGroup",
)


def test_alb_stack_reads_back_updates_in_place_and_repairs_drift(
    world, fast_sandbox, moto_endpoint
):
    ctx, known = world
    v1 = driver(
        via(replace(ctx, spec_tags=V1_TAGS), fast_sandbox.url),
        known,
        make_plan("alb", tags=V1_TAGS),
    )
    for lid in ALB_STACK:
        v1.create(lid)
        ready(v1, lid)
        assert drifted(v1, lid) == set(), lid
    applied = {lid: v1.props(lid) for lid in ALB_STACK}
    elbv2 = aws(moto_endpoint, "elbv2")
    # Through the sandbox, AWS's view: the group's instances and the launch template versions
    # (the sandbox keeps the versions' user data, see deployer/sandbox/behaviours.py).
    autoscaling, ec2 = v1.ctx.client("autoscaling"), v1.ctx.client("ec2")
    group_name = v1.ids["ApiAutoScalingGroup"]

    def group() -> dict[str, Any]:
        return autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
            "AutoScalingGroups"
        ][0]

    first_instances = {i["InstanceId"] for i in group()["Instances"]}
    assert len(first_instances) == 2
    template_id = v1.ids["ApiLaunchTemplate"]
    first_image = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]["ImageId"]

    # The next version: API port 8443, a third API AZ, other tags. The target group's port
    # cannot change, so the change set replaces it (its next generation); the rest is modified.
    three_azs = ["10.0.2.0/24", "10.0.3.0/24", "10.0.5.0/24"]
    v2 = next_version(
        v1, make_plan("alb", api_port=8443, api_subnet_cidrs=three_azs, tags=V2_TAGS), V2_TAGS
    )
    first_target_group = v1.ids["ApiTargetGroup"]
    v2.graph["ApiTargetGroup"].meta["generation"] = 1
    v2.create("ApiTargetGroup")
    ready(v2, "ApiTargetGroup")
    waited = {}
    for lid in ALB_STACK:
        if lid != "ApiTargetGroup":
            update(v2, lid, applied[lid])
            waited[lid] = ready(v2, lid)
        assert drifted(v2, lid) == set(), lid
        tags = {t["Key"]: t["Value"] for t in read(v2, lid).get("Tags") or []}
        if lid != "ApiListener" and lid != "ApiLaunchTemplate":
            assert (tags["team"], tags["cost-centre"], "tier" in tags) == ("orders", "42", False)
            assert tags[TAG_DEPLOYMENT] == ctx.deployment_tag and tags[TAG_LOGICAL_ID] == lid

    listener = elbv2.describe_listeners(ListenerArns=[v2.ids["ApiListener"]])["Listeners"][0]
    assert listener["Port"] == 8443
    assert listener["DefaultActions"][0]["TargetGroupArn"] == v2.ids["ApiTargetGroup"]
    lb = elbv2.describe_load_balancers(LoadBalancerArns=[v2.ids["ApiLoadBalancer"]])
    assert len(lb["LoadBalancers"][0]["AvailabilityZones"]) == 3
    # The launch template has a second version, the default, with the new port and the same
    # image (the SSM reference did not change, so the AMI is not looked up again).
    template = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    assert (template["LatestVersionNumber"], template["DefaultVersionNumber"]) == (2, 2)
    assert v2.attributes["ApiLaunchTemplate"] == {"LatestVersionNumber": "2"}
    second = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["2"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert second["ImageId"] == first_image
    assert "GANTRY_API_PORT=8443\n" in base64.b64decode(second["UserData"]).decode()
    update(v2, "ApiLaunchTemplate", v2.props("ApiLaunchTemplate"))  # again: no third version
    template = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    assert template["LatestVersionNumber"] == 2
    # The group launches from version 2 in three AZs, behind the new target group, and its
    # instances from version 1 were replaced by an instance refresh while check_ready waited.
    now = group()
    assert now["LaunchTemplate"]["Version"] == "2"
    assert (now["MinSize"], now["DesiredCapacity"], now["MaxSize"]) == (1, 3, 6)
    assert len(now["VPCZoneIdentifier"].split(",")) == 3
    assert now["TargetGroupARNs"] == [v2.ids["ApiTargetGroup"]]
    assert {i["LaunchTemplate"]["Version"] for i in now["Instances"]} == {"2"}
    assert not first_instances & {i["InstanceId"] for i in now["Instances"]}
    assert any("instance refresh" in r and "% done" in r for r in waited["ApiAutoScalingGroup"])
    refresh = autoscaling.describe_instance_refreshes(AutoScalingGroupName=group_name)[
        "InstanceRefreshes"
    ]
    assert [r["Status"] for r in refresh] == ["Successful"]
    assert refresh[0]["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "2"
    # The replaced target group goes once nothing forwards to it.
    handler_for("AWS::ElasticLoadBalancingV2::TargetGroup").delete(
        ctx, v1.node("ApiTargetGroup"), first_target_group
    )

    # Changed by hand, straight to moto; the drift check sees it, an update from what it
    # read puts it back.
    lb_arn, tg_arn = v2.ids["ApiLoadBalancer"], v2.ids["ApiTargetGroup"]
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb_arn,
        Attributes=[{"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "false"}],
    )
    elbv2.set_security_groups(
        LoadBalancerArn=lb_arn, SecurityGroups=[known[("LambdaSecurityGroup", "Id")]]
    )
    elbv2.remove_tags(ResourceArns=[lb_arn], TagKeys=["team"])
    elbv2.modify_target_group(
        TargetGroupArn=tg_arn, HealthCheckPath="/", Matcher={"HttpCode": "200-399"}
    )
    elbv2.add_tags(ResourceArns=[tg_arn], Tags=[{"Key": "team", "Value": "someone-else"}])
    elbv2.modify_listener(ListenerArn=v2.ids["ApiListener"], SslPolicy="ELBSecurityPolicy-2016-08")
    aws(moto_endpoint, "acm").remove_tags_from_certificate(
        CertificateArn=v2.ids["ApiCertificate"], Tags=[{"Key": "team"}]
    )
    aws(moto_endpoint, "autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=group_name, MaxSize=9
    )
    aws(moto_endpoint, "autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": group_name,
                "ResourceType": "auto-scaling-group",
                "Key": "owner",
                "Value": "someone",
                "PropagateAtLaunch": False,
            }
        ]
    )
    expected = {
        "ApiLoadBalancer": {"LoadBalancerAttributes", "SecurityGroups", "Tags"},
        "ApiTargetGroup": {"HealthCheckPath", "Matcher", "Tags"},
        "ApiListener": {"SslPolicy"},
        "ApiCertificate": {"Tags"},
        "ApiAutoScalingGroup": {"MaxSize", "Tags"},
    }
    assert {lid: drifted(v2, lid) for lid in expected} == expected
    for lid in expected:
        update(v2, lid, read(v2, lid))
        ready(v2, lid)
        assert drifted(v2, lid) == set(), lid
    assert "owner" not in {t["Key"] for t in group()["Tags"]}  # it was not planned

    # A launch template version made by hand (and made the default): AWS's schema keeps the
    # launch data write-only, so the drift check compares none of it, but an update from what
    # it read makes the planned data the latest and default version again.
    hand_made = aws(moto_endpoint, "ec2").create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion="2",
        LaunchTemplateData={"InstanceType": "t3.large"},
    )["LaunchTemplateVersion"]["VersionNumber"]
    aws(moto_endpoint, "ec2").modify_launch_template(
        LaunchTemplateId=template_id, DefaultVersion=str(hand_made)
    )
    update(v2, "ApiLaunchTemplate", read(v2, "ApiLaunchTemplate"))
    ready(v2, "ApiLaunchTemplate")
    template = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    assert template["LatestVersionNumber"] == template["DefaultVersionNumber"] == hand_made + 1
    latest = ec2.describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=[str(hand_made + 1)]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert latest["InstanceType"] == "t3.micro" and latest["UserData"] == second["UserData"]

    with pytest.raises(CannotUpdate, match="Scheme cannot change"):
        internet = {**v2.props("ApiLoadBalancer"), "Scheme": "internet-facing"}
        v2.handler("ApiLoadBalancer").update(
            v2.ctx, v2.node("ApiLoadBalancer"), lb_arn, {}, internet
        )
    with pytest.raises(CannotUpdate, match="Port cannot change"):
        other = {**v2.props("ApiTargetGroup"), "Port": 9443}
        v2.handler("ApiTargetGroup").update(v2.ctx, v2.node("ApiTargetGroup"), tg_arn, {}, other)

    for lid in reversed(ALB_STACK):
        gone(v2, lid)
        assert read(v2, lid) is None, lid


def test_auto_scaling_group_rolled_back_mid_refresh_cancels_it_and_runs_the_old_version(
    world, fast_sandbox
):
    """An update to launch template version 2 rolled back while its instance refresh is at
    work: the refresh is cancelled (on success AWS would give the group version 2 again), and
    the group ends on version 3, version 1's data made anew (a version never changes), every
    instance launched from it."""
    ctx, known = world
    v1 = driver(via(ctx, fast_sandbox.url), known, make_plan("alb"))
    v1.ids["ApiTargetGroup"] = v1.create("ApiTargetGroup")
    for lid in ("ApiLaunchTemplate", "ApiAutoScalingGroup"):
        v1.create(lid)
        ready(v1, lid)
    applied = {lid: v1.props(lid) for lid in ("ApiLaunchTemplate", "ApiAutoScalingGroup")}
    v2 = next_version(v1, make_plan("alb", api_port=8443), {})
    update(v2, "ApiLaunchTemplate", applied["ApiLaunchTemplate"])
    ready(v2, "ApiLaunchTemplate")
    update(v2, "ApiAutoScalingGroup", applied["ApiAutoScalingGroup"])
    autoscaling = v2.ctx.client("autoscaling")
    name = v2.ids["ApiAutoScalingGroup"]
    (refresh,) = autoscaling.describe_instance_refreshes(AutoScalingGroupName=name)[
        "InstanceRefreshes"
    ]
    assert refresh["Status"] in ("Pending", "InProgress")

    # The rollback: both back to what version 1 applied (the template's data as a new version).
    back = next_version(v2, make_plan("alb"), {})
    update(back, "ApiLaunchTemplate", v2.props("ApiLaunchTemplate"))
    ready(back, "ApiLaunchTemplate")
    assert back.attributes["ApiLaunchTemplate"] == {"LatestVersionNumber": "3"}
    poll(lambda: update(back, "ApiAutoScalingGroup", v2.props("ApiAutoScalingGroup")))
    ready(back, "ApiAutoScalingGroup")
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    assert group["LaunchTemplate"]["Version"] == "3"
    assert {i["LaunchTemplate"]["Version"] for i in group["Instances"]} == {"3"}
    refreshes = autoscaling.describe_instance_refreshes(AutoScalingGroupName=name)[
        "InstanceRefreshes"
    ]
    assert refreshes[-1]["InstanceRefreshId"] == refresh["InstanceRefreshId"]
    assert refreshes[-1]["Status"] == "Cancelled"
    assert drifted(back, "ApiAutoScalingGroup") == set()
    for lid in ("ApiAutoScalingGroup", "ApiLaunchTemplate", "ApiTargetGroup"):
        gone(back, lid)
