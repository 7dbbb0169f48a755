"""The sandbox proxy against a real moto server, driven by real boto3 clients.

A private moto_server subprocess and one proxy (in this process, on a thread) serve the whole
module; each test starts from a reset sandbox. AWS durations run at ``SCALE`` (90 s -> 1.8 s), so
every wait here is short; the tests poll with short sleeps, the sandbox itself never sleeps.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

from deployer.sandbox import SandboxConfig, SandboxProxy, SandboxState
from deployer.sandbox.behaviours import Behaviours, Prepared
from deployer.sandbox.protocol import EC2, JSON, QUERY, REST_JSON, UNKNOWN, Reply, identify

SCALE = 0.02
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_cache() -> Iterator[None]:
    """Overrides conftest's per-test Redis cache namespace: nothing here touches Django's cache
    or database, so the sandbox suite needs no Redis."""
    yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{what} did not start")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A private moto server, so these tests neither see nor disturb other suites' resources."""
    server = os.path.join(os.path.dirname(sys.executable), "moto_server")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port, proc, "moto_server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def proxy(moto_url: str) -> Iterator[SandboxProxy]:
    with SandboxProxy(("127.0.0.1", 0), moto_url, config=SandboxConfig(time_scale=SCALE)) as p:
        yield p


def control(
    proxy: SandboxProxy, method: str, path: str, payload: Any = None, *, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    req = urllib.request.Request(proxy.url + path, data=data, method=method)  # noqa: S310
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local test server
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(autouse=True)
def _fresh_sandbox(proxy: SandboxProxy) -> None:
    assert control(proxy, "POST", "/_sandbox/reset")[0] == 200
    assert (
        control(proxy, "POST", "/_sandbox/config", {"time_scale": SCALE, "eni_hold_seconds": 1200})[
            0
        ]
        == 200
    )


@pytest.fixture
def aws(proxy: SandboxProxy) -> Callable[..., Any]:
    def make(service: str, max_attempts: int = 6) -> Any:
        """A client like Gantry's; ``max_attempts`` counts retries (botocore's meaning), so
        ``0`` makes exactly one attempt."""
        return boto3.client(
            service,
            endpoint_url=proxy.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
        )

    return make


def wait_until(fn: Callable[[], Any], expected: Any, timeout: float = 10.0) -> float:
    """Poll ``fn`` until it returns ``expected``; the seconds that took."""
    start = time.monotonic()
    while True:
        value = fn()
        if value == expected:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            pytest.fail(f"still {value!r} after {timeout} s, expected {expected!r}")
        time.sleep(0.05)


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _network(ec2: Any, cidr_prefix: str = "10.0") -> dict[str, str]:
    vpc = ec2.create_vpc(CidrBlock=f"{cidr_prefix}.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr_prefix}.{i}.0/24", AvailabilityZone=az)[
            "Subnet"
        ]["SubnetId"]
        for i, az in ((1, "us-east-1a"), (2, "us-east-1b"))
    ]
    sg = ec2.create_security_group(
        VpcId=vpc, GroupName=f"sg-{uuid.uuid4().hex[:6]}", Description="test"
    )["GroupId"]
    return {"vpc": vpc, "a": subnets[0], "b": subnets[1], "sg": sg}


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return 1\n")
    return buf.getvalue()


def _role(iam: Any) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return iam.create_role(
        RoleName=f"role-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]


# --- time behaviour ------------------------------------------------------------------------------


def test_nat_gateway_is_pending_then_available_and_holds_its_eip_and_subnet(aws) -> None:
    ec2 = aws("ec2")
    net = _network(ec2, "10.1")
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    start = time.monotonic()
    nat = ec2.create_nat_gateway(SubnetId=net["a"], AllocationId=eip)["NatGateway"]
    nat_id = nat["NatGatewayId"]
    assert nat["State"] == "pending"

    def state() -> str:
        return ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"]

    assert state() == "pending"
    # A state filter sees the state AWS would show, not moto's instant "available".
    by_vpc = {"Name": "vpc-id", "Values": [net["vpc"]]}
    pending = ec2.describe_nat_gateways(Filters=[{"Name": "state", "Values": ["pending"]}, by_vpc])
    available = ec2.describe_nat_gateways(
        Filters=[by_vpc, {"Name": "state", "Values": ["available"]}]
    )
    assert [n["NatGatewayId"] for n in pending["NatGateways"]] == [nat_id]
    assert available["NatGateways"] == []

    with pytest.raises(ClientError) as exc:
        ec2.release_address(AllocationId=eip)
    assert error_code(exc) == "InvalidIPAddress.InUse"
    with pytest.raises(ClientError) as exc:
        ec2.delete_subnet(SubnetId=net["a"])
    assert error_code(exc) == "DependencyViolation"

    wait_until(state, "available")
    assert time.monotonic() - start >= 90 * SCALE - 0.05

    ec2.delete_nat_gateway(NatGatewayId=nat_id)
    deleted_at = time.monotonic()
    assert state() == "deleting"
    with pytest.raises(ClientError) as exc:
        ec2.release_address(AllocationId=eip)
    assert error_code(exc) == "InvalidIPAddress.InUse"
    wait_until(state, "deleted")
    assert time.monotonic() - deleted_at >= 60 * SCALE - 0.05
    ec2.release_address(AllocationId=eip)
    ec2.delete_subnet(SubnetId=net["a"])


def test_client_token_makes_a_lost_create_idempotent(aws, proxy) -> None:
    """moto ignores ClientToken; the sandbox honours it like AWS, so a retry after a lost
    response returns the same NAT gateway instead of a second one."""
    ec2 = aws("ec2")
    net = _network(ec2, "10.2")
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    token = uuid.uuid4().hex
    control(
        proxy,
        "POST",
        "/_sandbox/config",
        {"lose_response_rate": 1, "actions": ["CreateNatGateway"], "max_faults": 1},
    )
    nat = ec2.create_nat_gateway(SubnetId=net["a"], AllocationId=eip, ClientToken=token)
    assert nat["ResponseMetadata"]["RetryAttempts"] == 1
    in_subnet = ec2.describe_nat_gateways(Filters=[{"Name": "subnet-id", "Values": [net["a"]]}])[
        "NatGateways"
    ]
    assert [n["NatGatewayId"] for n in in_subnet] == [nat["NatGateway"]["NatGatewayId"]]

    with pytest.raises(ClientError) as exc:
        ec2.create_nat_gateway(SubnetId=net["b"], AllocationId=eip, ClientToken=token)
    assert error_code(exc) == "IdempotentParameterMismatch"
    stats = control(proxy, "GET", "/_sandbox/stats")[1]
    assert stats["simulated"]["idempotent_replay"] == 1
    assert stats["faults"]["lose_response"] == 1


def test_lambda_needs_a_propagated_role_and_starts_pending(aws) -> None:
    ec2, iam, lam = aws("ec2"), aws("iam"), aws("lambda")
    net = _network(ec2, "10.3")
    role = _role(iam)
    name = f"fn-{uuid.uuid4().hex[:8]}"
    args = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": role,
        "Handler": "handler.handler",
        "Code": {"ZipFile": _zip()},
        "VpcConfig": {"SubnetIds": [net["a"]], "SecurityGroupIds": [net["sg"]]},
    }
    with pytest.raises(ClientError) as exc:
        lam.create_function(**args)
    assert error_code(exc) == "InvalidParameterValueException"
    assert "cannot be assumed by Lambda" in str(exc.value)
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=name)  # the refused call never reached moto

    time.sleep(10 * SCALE + 0.05)
    created = lam.create_function(**args)
    start = time.monotonic()
    assert created["State"] == "Pending"
    assert created["StateReasonCode"] == "Creating"
    config = lam.get_function_configuration(FunctionName=created["FunctionArn"])
    assert (config["State"], config["StateReasonCode"]) == ("Pending", "Creating")
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=name, Timeout=10)
    assert error_code(exc) == "ResourceConflictException"

    wait_until(lambda: lam.get_function(FunctionName=name)["Configuration"]["State"], "Active")
    assert time.monotonic() - start >= 60 * SCALE - 0.1
    lam.update_function_configuration(FunctionName=name, Timeout=10)


def test_deleted_vpc_lambda_holds_its_subnet_and_security_group(aws, proxy) -> None:
    ec2, iam, lam = aws("ec2"), aws("iam"), aws("lambda")
    control(proxy, "POST", "/_sandbox/config", {"eni_hold_seconds": 100, "time_scale": 0.0})
    net = _network(ec2, "10.4")
    name = f"fn-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=_role(iam),
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        VpcConfig={"SubnetIds": [net["a"]], "SecurityGroupIds": [net["sg"]]},
    )
    control(proxy, "POST", "/_sandbox/config", {"time_scale": SCALE})  # hold = 100 * SCALE = 2 s
    with pytest.raises(ClientError) as exc:
        ec2.delete_subnet(SubnetId=net["a"])
    assert error_code(exc) == "DependencyViolation"  # the live function's interfaces

    lam.delete_function(FunctionName=name)
    deleted_at = time.monotonic()
    with pytest.raises(ClientError) as exc:
        ec2.delete_subnet(SubnetId=net["a"])
    assert error_code(exc) == "DependencyViolation"
    assert f"The subnet '{net['a']}' has dependencies and cannot be deleted." in str(exc.value)
    with pytest.raises(ClientError) as exc:
        ec2.delete_security_group(GroupId=net["sg"])
    assert f"resource {net['sg']} has a dependent object" in str(exc.value)
    holds = control(proxy, "GET", "/_sandbox/resources")[1]["eni_holds"]
    assert holds[0]["subnets"] == [net["a"]]

    def subnet_deletable() -> bool:
        try:
            ec2.delete_subnet(SubnetId=net["a"])
        except ClientError as err:
            assert err.response["Error"]["Code"] == "DependencyViolation"
            return False
        return True

    wait_until(subnet_deletable, True)
    assert time.monotonic() - deleted_at >= 100 * SCALE - 0.05
    ec2.delete_security_group(GroupId=net["sg"])
    assert control(proxy, "GET", "/_sandbox/stats")[1]["simulated"]["dependency_violation"] >= 3


def test_load_balancer_provisions_then_is_active(aws, proxy) -> None:
    ec2, elb = aws("ec2"), aws("elbv2")
    net = _network(ec2, "10.5")
    control(proxy, "POST", "/_sandbox/config", {"time_scale": 0.01})
    start = time.monotonic()
    lb = elb.create_load_balancer(
        Name=f"lb-{uuid.uuid4().hex[:8]}",
        Subnets=[net["a"], net["b"]],
        SecurityGroups=[net["sg"]],
        Scheme="internal",
        Type="application",
    )["LoadBalancers"][0]
    assert lb["State"]["Code"] == "provisioning"

    def code() -> str:
        found = elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])
        return found["LoadBalancers"][0]["State"]["Code"]

    assert code() == "provisioning"
    wait_until(code, "active")
    assert time.monotonic() - start >= 150 * 0.01 - 0.05
    with pytest.raises(ClientError) as exc:
        ec2.delete_subnet(SubnetId=net["b"])
    assert error_code(exc) == "DependencyViolation"
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    ec2.delete_subnet(SubnetId=net["b"])


def test_time_scale_change_applies_to_resources_in_flight(aws, proxy) -> None:
    ec2 = aws("ec2")
    net = _network(ec2, "10.6")
    control(proxy, "POST", "/_sandbox/config", {"time_scale": 1.0})
    run = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=net["a"], InstanceType="t3.micro"
    )
    instance_id = run["Instances"][0]["InstanceId"]
    assert run["Instances"][0]["State"]["Name"] == "pending"
    control(proxy, "POST", "/_sandbox/config", {"time_scale": 0})
    found = ec2.describe_instances(InstanceIds=[instance_id])
    assert found["Reservations"][0]["Instances"][0]["State"] == {"Code": 16, "Name": "running"}


#: For the tests that look at an instance right after launch: its 20 s boot at ``SCALE`` is
#: 0.4 s, less than a busy machine may take between two calls, so they run at this scale (2 s).
BOOT_SCALE = 0.1


def boot_scale(proxy: SandboxProxy) -> float:
    assert control(proxy, "POST", "/_sandbox/config", {"time_scale": BOOT_SCALE})[0] == 200
    return BOOT_SCALE


def test_instance_pending_running_then_shutting_down_terminated(aws, proxy) -> None:
    scale = boot_scale(proxy)
    ec2 = aws("ec2")
    net = _network(ec2, "10.7")
    start = time.monotonic()
    run = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        SubnetId=net["a"],
        SecurityGroupIds=[net["sg"]],
        InstanceType="t3.micro",
    )
    instance_id = run["Instances"][0]["InstanceId"]
    assert run["Instances"][0]["State"] == {"Code": 0, "Name": "pending"}

    def state() -> str:
        found = ec2.describe_instances(InstanceIds=[instance_id])
        return found["Reservations"][0]["Instances"][0]["State"]["Name"]

    assert state() == "pending"
    running = ec2.describe_instances(
        Filters=[
            {"Name": "instance-id", "Values": [instance_id]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )
    assert running["Reservations"] == []
    wait_until(state, "running")
    assert time.monotonic() - start >= 20 * scale - 0.05

    terminated = ec2.terminate_instances(InstanceIds=[instance_id])
    assert terminated["TerminatingInstances"][0]["CurrentState"]["Name"] == "shutting-down"
    with pytest.raises(ClientError) as exc:
        ec2.delete_security_group(GroupId=net["sg"])
    assert error_code(exc) == "DependencyViolation"
    wait_until(state, "terminated")
    ec2.delete_security_group(GroupId=net["sg"])


def test_auto_scaling_instances_are_pending_then_in_service(aws, proxy) -> None:
    scale = boot_scale(proxy)
    ec2, autoscaling = aws("ec2"), aws("autoscaling")
    net = _network(ec2, "10.8")
    ec2.create_launch_template(
        LaunchTemplateName="asg-pending",
        LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "t3.micro"},
    )
    start = time.monotonic()
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="asg-pending",
        LaunchTemplate={"LaunchTemplateName": "asg-pending", "Version": "$Latest"},
        MinSize=1,
        MaxSize=1,
        VPCZoneIdentifier=f"{net['a']},{net['b']}",
    )

    def lifecycle() -> list[str]:
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["asg-pending"])
        return [i["LifecycleState"] for i in group["AutoScalingGroups"][0]["Instances"]]

    assert lifecycle() == ["Pending"]
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["asg-pending"])
    instance_id = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    found = ec2.describe_instances(InstanceIds=[instance_id])
    assert found["Reservations"][0]["Instances"][0]["State"]["Name"] == "pending"
    wait_until(lifecycle, ["InService"])
    assert time.monotonic() - start >= 20 * scale - 0.05


def test_interface_endpoint_is_pending_then_available_and_holds_its_subnet(aws) -> None:
    ec2 = aws("ec2")
    net = _network(ec2, "10.11")
    endpoint = ec2.create_vpc_endpoint(
        VpcId=net["vpc"],
        ServiceName="com.amazonaws.us-east-1.secretsmanager",
        VpcEndpointType="Interface",
        SubnetIds=[net["a"]],
        SecurityGroupIds=[net["sg"]],
    )["VpcEndpoint"]
    endpoint_id = endpoint["VpcEndpointId"]
    assert endpoint["State"] == "pending"

    def state() -> str:
        found = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])
        return found["VpcEndpoints"][0]["State"]

    wait_until(state, "available")
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])
    assert state() == "deleting"
    with pytest.raises(ClientError) as exc:
        ec2.delete_subnet(SubnetId=net["a"])
    assert error_code(exc) == "DependencyViolation"
    wait_until(state, "deleted")
    ec2.delete_subnet(SubnetId=net["a"])


def test_an_endpoint_moved_off_a_subnet_no_longer_holds_it(aws) -> None:
    """AWS deletes an interface endpoint's network interface in a subnet removed from it;
    moto keeps it, so without the sandbox the old subnet of a replaced Lambda subnet could
    never be deleted (found by an update that moved the Lambda's subnets)."""
    ec2 = aws("ec2")
    net = _network(ec2, "10.12")
    endpoint_id = ec2.create_vpc_endpoint(
        VpcId=net["vpc"],
        ServiceName="com.amazonaws.us-east-1.secretsmanager",
        VpcEndpointType="Interface",
        SubnetIds=[net["a"], net["b"]],
        SecurityGroupIds=[net["sg"]],
    )["VpcEndpoint"]["VpcEndpointId"]

    def interfaces(subnet: str) -> list[str]:
        found = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])
        return [n["NetworkInterfaceId"] for n in found["NetworkInterfaces"]]

    assert interfaces(net["a"]) and interfaces(net["b"])
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, RemoveSubnetIds=[net["a"]])
    assert interfaces(net["a"]) == []
    assert interfaces(net["b"])  # the subnet it still serves keeps its interface
    ec2.delete_subnet(SubnetId=net["a"])
    with pytest.raises(ClientError) as exc:
        ec2.delete_subnet(SubnetId=net["b"])
    assert error_code(exc) == "DependencyViolation"


def test_new_instance_profile_is_not_usable_at_once(aws) -> None:
    ec2, iam = aws("ec2"), aws("iam")
    name = f"profile-{uuid.uuid4().hex[:8]}"
    iam.create_instance_profile(InstanceProfileName=name)
    args = {
        "ImageId": "ami-12345678",
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": "t3.micro",
        "IamInstanceProfile": {"Name": name},
    }
    with pytest.raises(ClientError) as exc:
        ec2.run_instances(**args)
    assert error_code(exc) == "InvalidParameterValue"
    assert "Invalid IAM Instance Profile name" in str(exc.value)
    time.sleep(10 * SCALE + 0.05)
    ec2.run_instances(**args)


def test_deletes_moto_accepts_but_aws_refuses(aws) -> None:
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    api = ec2.create_security_group(VpcId=vpc, GroupName="api", Description="api")["GroupId"]
    fn = ec2.create_security_group(VpcId=vpc, GroupName="fn", Description="fn")["GroupId"]
    ec2.authorize_security_group_egress(
        GroupId=fn,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "UserIdGroupPairs": [{"GroupId": api}],
            }
        ],
    )
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]

    with pytest.raises(ClientError) as exc:
        ec2.delete_internet_gateway(InternetGatewayId=igw)  # moto refuses this one itself
    assert error_code(exc) == "DependencyViolation"
    with pytest.raises(ClientError) as exc:
        ec2.delete_security_group(GroupId=api)  # still referenced by fn's egress rule
    assert error_code(exc) == "DependencyViolation"
    ec2.delete_security_group(GroupId=fn)
    ec2.delete_security_group(GroupId=api)

    with pytest.raises(ClientError) as exc:
        ec2.delete_vpc(VpcId=vpc)  # internet gateway attached, route table left
    assert error_code(exc) == "DependencyViolation"
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    with pytest.raises(ClientError):
        ec2.delete_vpc(VpcId=vpc)  # the route table
    ec2.delete_route_table(RouteTableId=rtb)
    ec2.delete_vpc(VpcId=vpc)


# --- faults ---------------------------------------------------------------------------------------


def test_throttling_is_retried_by_botocore_standard_mode(aws, proxy) -> None:
    control(proxy, "POST", "/_sandbox/config", {"throttle_rate": 1, "max_faults": 2})
    answer = aws("ec2").describe_vpcs()
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    stats = control(proxy, "GET", "/_sandbox/stats")[1]
    assert stats["faults"]["throttle"] == 2
    assert stats["faults"]["total"] == 2
    assert stats["faults_by_action"] == {"ec2:DescribeVpcs": {"throttle": 2}}
    assert stats["faults_remaining"] == 0
    assert stats["requests"] == 3 and stats["forwarded"] == 1


@pytest.mark.parametrize(
    ("service", "operation", "status"),
    [
        ("ec2", "describe_vpcs", 503),
        ("iam", "list_roles", 400),
        ("elbv2", "describe_load_balancers", 400),
        ("autoscaling", "describe_auto_scaling_groups", 400),
        ("sts", "get_caller_identity", 400),
        ("secretsmanager", "list_secrets", 400),
        ("logs", "describe_log_groups", 400),
        ("acm", "list_certificates", 400),
        ("lambda", "list_functions", 429),
    ],
)
def test_faults_speak_each_services_protocol(aws, proxy, service, operation, status) -> None:
    """botocore must parse the injected error and classify it as throttling (or as a 5xx)."""
    client = aws(service, max_attempts=0)
    control(proxy, "POST", "/_sandbox/config", {"throttle_rate": 1})
    with pytest.raises(ClientError) as exc:
        getattr(client, operation)()
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    context = RetryContext(attempt_number=1, parsed_response=exc.value.response)
    assert ThrottledRetryableChecker().is_retryable(context), exc.value.response["Error"]

    control(proxy, "POST", "/_sandbox/config", {"throttle_rate": 0, "error_rate": 1, "seed": 3})
    with pytest.raises(ClientError) as exc:
        getattr(client, operation)()
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    assert exc.value.response["Error"]["Code"] in (
        "InternalError",
        "ServiceException",
        "ServiceUnavailable",
    )


def test_server_error_on_one_action_is_retried(aws, proxy) -> None:
    ec2 = aws("ec2")
    control(
        proxy,
        "POST",
        "/_sandbox/config",
        {"error_rate": 1, "actions": ["ec2:CreateVpc"], "max_faults": 1},
    )
    ec2.describe_vpcs()  # not a targeted action: untouched
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")
    assert vpc["ResponseMetadata"]["RetryAttempts"] == 1
    stats = control(proxy, "GET", "/_sandbox/stats")[1]
    assert stats["faults_by_action"] == {"ec2:CreateVpc": {"error": 1}}


@pytest.mark.parametrize("mode", ["drop", "500", "502"])
def test_a_lost_response_still_took_effect(aws, proxy, mode) -> None:
    """The call reaches moto and creates the VPC; the caller hears only an error. Retrying then
    creates a second VPC: what Gantry's find-by-tags must clean up."""
    tag = uuid.uuid4().hex
    args = {
        "CidrBlock": "10.10.0.0/16",
        "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "t", "Value": tag}]}],
    }
    settings = {
        "lose_response_rate": 1,
        "lose_mode": mode,
        "actions": ["CreateVpc"],
        "max_faults": 1,
    }
    ec2_once, ec2 = aws("ec2", max_attempts=0), aws("ec2")

    def tagged() -> int:
        return len(ec2.describe_vpcs(Filters=[{"Name": "tag:t", "Values": [tag]}])["Vpcs"])

    control(proxy, "POST", "/_sandbox/config", settings)
    with pytest.raises((ClientError, BotoCoreError)):
        ec2_once.create_vpc(**args)
    assert tagged() == 1

    control(proxy, "POST", "/_sandbox/config", settings)
    assert ec2.create_vpc(**args)["ResponseMetadata"]["RetryAttempts"] == 1
    assert tagged() == 3
    assert control(proxy, "GET", "/_sandbox/stats")[1]["faults"]["lose_response"] == 2


def test_stats_give_moto_s_own_time_per_action(aws, proxy) -> None:
    """What the benchmark reads to tell the emulator's cost from Gantry's: the seconds moto
    took per action, without the simulated round trip."""
    control(proxy, "POST", "/_sandbox/config", {"latency_ms": 200})
    ec2 = aws("ec2")
    started = time.monotonic()
    ec2.describe_vpcs()
    took = time.monotonic() - started
    stats = control(proxy, "GET", "/_sandbox/stats")[1]
    assert stats["by_action"]["ec2:DescribeVpcs"] == 1
    # Moto's share of the call: some, and never the simulated round trip.
    assert 0 < stats["upstream_seconds"]["ec2:DescribeVpcs"] <= took - 0.2


# --- the proxy itself -------------------------------------------------------------------------------


def test_unknown_paths_and_unsigned_requests_are_forwarded(proxy, moto_url) -> None:
    for path in ("/moto-api/data.json", "/no/such/path?x=1"):
        direct = _http(moto_url + path)
        via = _http(proxy.url + path)
        assert via[0] == direct[0]
        if direct[0] == 200:
            assert json.loads(via[1]).keys() == json.loads(direct[1]).keys()
    stats = control(proxy, "GET", "/_sandbox/stats")[1]
    assert stats["forwarded"] == 2 and stats["by_action"] == {}


def _http(url: str, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method)  # noqa: S310 - local test server
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local test server
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_control_api_validates_its_input(proxy) -> None:
    bad = [
        {"throttle_rate": 1.5},
        {"error_rate": -0.1},
        {"lose_response_rate": "0.5"},
        {"time_scale": -1},
        {"eni_hold_seconds": True},
        {"actions": "CreateVpc"},
        {"actions": [""]},
        {"seed": 1.5},
        {"max_faults": -1},
        {"lose_mode": "sometimes"},
        {"throttle": 1},
        [1, 2],
    ]
    for payload in bad:
        status, answer = control(proxy, "POST", "/_sandbox/config", payload)
        assert status == 400, payload
        assert answer["error"]
    assert control(proxy, "POST", "/_sandbox/config", raw=b"{not json")[0] == 400
    assert control(proxy, "GET", "/_sandbox/config")[1]["throttle_rate"] == 0  # nothing applied
    assert control(proxy, "GET", "/_sandbox/nothing")[0] == 404
    assert control(proxy, "DELETE", "/_sandbox/config")[0] == 405
    assert control(proxy, "GET", "/_sandbox/reset")[0] == 405

    status, config = control(
        proxy,
        "POST",
        "/_sandbox/config",
        {"throttle_rate": 0.25, "actions": ["ec2:CreateVpc", "CreateFunction"], "seed": 7},
    )
    assert status == 200
    assert config["throttle_rate"] == 0.25
    assert config["actions"] == ["ec2:CreateVpc", "CreateFunction"]
    assert config["time_scale"] == SCALE  # untouched by a partial update
    assert control(proxy, "GET", "/_sandbox/health")[1]["upstream_ok"] is True
    reset = control(proxy, "POST", "/_sandbox/reset")[1]
    assert reset["config"]["throttle_rate"] == 0 and reset["config"]["time_scale"] == SCALE


def test_odd_requests_do_not_break_the_proxy(proxy) -> None:
    host, port = proxy.address
    for raw, answer in (
        (b"\x16\x03\x01\x00 not http at all\r\n\r\n", b""),
        (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 501"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", b"HTTP/1.1 400"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 400",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=broken"
            b"\r\nX-Amz-Target: \r\nConnection: close\r\nContent-Length: 3\r\n\r\n{{{",
            b"HTTP/1.1 ",  # forwarded: whatever moto says
        ),
    ):
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(raw)
            assert sock.recv(4096).startswith(answer), raw

    # A chunked, signed-looking EC2 call is de-chunked and forwarded with a Content-Length.
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=10)
    body = iter([b"Action=DescribeVpcs", b"&Version=2016-11-15"])
    conn.request(
        "POST",
        "/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/"
            "aws4_request, SignedHeaders=host, Signature=00",
        },
        encode_chunked=True,
    )
    response = conn.getresponse()
    assert response.status == 200
    assert b"DescribeVpcsResponse" in response.read()
    conn.close()
    assert control(proxy, "GET", "/_sandbox/health")[1]["ok"] is True


def test_cli_serves_and_stops_on_sigterm(moto_url) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deployer.sandbox",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            moto_url,
            "--time-scale",
            "0.5",
            "--eni-hold-seconds",
            "60",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_port(port, proc, "python -m deployer.sandbox")
        status, body = _http(f"http://127.0.0.1:{port}/_sandbox/config")
        config = json.loads(body)
        assert status == 200
        assert (config["time_scale"], config["eni_hold_seconds"]) == (0.5, 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr.decode()
    assert b"sandbox listening" in stderr


# --- units ------------------------------------------------------------------------------------------


def test_fault_dice_are_reproducible_capped_and_filtered() -> None:
    def draws(seed: int) -> list[str | None]:
        state = SandboxState()
        state.update_config({"throttle_rate": 0.3, "error_rate": 0.3, "seed": seed})
        return [state.draw_fault("ec2", "CreateVpc") for _ in range(50)]

    assert draws(11) == draws(11)
    assert {"throttle", "error", None} <= set(draws(11))

    state = SandboxState()
    state.update_config({"error_rate": 1, "max_faults": 3, "actions": ["lambda:CreateFunction"]})
    assert state.draw_fault("ec2", "CreateFunction") is None  # other service
    assert [state.draw_fault("lambda", "CreateFunction") for _ in range(5)] == ["error"] * 3 + [
        None
    ] * 2
    state.update_config({"max_faults": 1})  # a new cap restarts the count
    assert state.draw_fault("lambda", "CreateFunction") == "error"


def test_a_deleted_nat_gateway_moto_forgot_is_still_shown() -> None:
    """AWS shows a deleted NAT gateway for about an hour; if moto drops it, the sandbox answers
    from its snapshot (deleting, then deleted)."""
    now = [100.0]
    state = SandboxState(SandboxConfig(time_scale=1.0), clock=lambda: now[0])
    behaviours = Behaviours(state)
    ns = "http://ec2.amazonaws.com/doc/2016-11-15/"
    headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=A/20240101/us-east-1/ec2/aws4_request"}
    form = "application/x-www-form-urlencoded"

    def call(body: str) -> Any:
        return identify("POST", "/", {**headers, "Content-Type": form}, body.encode())

    create = call("Action=CreateNatGateway&SubnetId=subnet-1&AllocationId=eipalloc-1")
    created = (
        f'<CreateNatGatewayResponse xmlns="{ns}"><natGateway><natGatewayId>nat-1</natGatewayId>'
        "<state>available</state><subnetId>subnet-1</subnetId></natGateway>"
        "</CreateNatGatewayResponse>"
    ).encode()
    out = behaviours.after(create, Prepared(), Reply(200, [], created), lambda *a: None)
    assert b"<state>pending</state>" in out.body and f'xmlns="{ns}"'.encode() in out.body

    behaviours.after(
        call("Action=DeleteNatGateway&NatGatewayId=nat-1"),
        Prepared(),
        Reply(200, [], b""),
        lambda *a: None,
    )
    describe = call("Action=DescribeNatGateways&NatGatewayId.1=nat-1")
    empty = (
        f'<DescribeNatGatewaysResponse xmlns="{ns}"><natGatewaySet/></DescribeNatGatewaysResponse>'
    )
    out = behaviours.after(describe, Prepared(), Reply(200, [], empty.encode()), lambda *a: None)
    assert b"<natGatewayId>nat-1</natGatewayId>" in out.body
    assert b"<state>deleting</state>" in out.body

    now[0] += 61
    not_found = (
        "<Response><Errors><Error><Code>NatGatewayNotFound</Code><Message>x</Message></Error>"
        "</Errors></Response>"
    )
    out = behaviours.after(
        describe, Prepared(), Reply(400, [], not_found.encode()), lambda *a: None
    )
    assert out.status == 200 and b"<state>deleted</state>" in out.body


def test_calls_are_identified_per_protocol() -> None:
    def scope(service: str) -> dict[str, str]:
        return {
            "Authorization": f"AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/{service}/"
            "aws4_request, SignedHeaders=host, Signature=abc"
        }

    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    ec2 = identify(
        "POST", "/", {**scope("ec2"), **form}, b"Action=CreateVpc&CidrBlock=10.0.0.0%2F16"
    )
    assert (ec2.service, ec2.region, ec2.action, ec2.protocol) == (
        "ec2",
        "eu-west-1",
        "CreateVpc",
        EC2,
    )
    assert ec2.params["CidrBlock"] == "10.0.0.0/16"
    iam = identify("POST", "/", {**scope("iam"), **form}, b"Action=CreateRole")
    assert (iam.action, iam.protocol) == ("CreateRole", QUERY)
    logs = identify(
        "POST", "/", {**scope("logs"), "X-Amz-Target": "Logs_20140328.CreateLogGroup"}, b"{}"
    )
    assert (logs.action, logs.protocol) == ("CreateLogGroup", JSON)
    arn = "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Afn"
    lam = identify("GET", f"/2015-03-31/functions/{arn}/configuration", scope("lambda"), b"")
    assert (lam.action, lam.protocol) == ("GetFunctionConfiguration", REST_JSON)
    assert lam.path_params["FunctionName"].endswith(":function:fn")
    assert (
        identify("POST", "/2015-03-31/functions", scope("lambda"), b"{}").action == "CreateFunction"
    )
    assert (
        identify("DELETE", "/2015-03-31/functions/fn", scope("lambda"), b"").action
        == "DeleteFunction"
    )
    presigned = identify(
        "GET",
        "/?Action=GetCallerIdentity&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fsts%2Faws4_request",
        {},
        b"",
    )
    assert (presigned.service, presigned.action, presigned.protocol) == (
        "sts",
        "GetCallerIdentity",
        QUERY,
    )
    assert identify("GET", "/moto-api/", {}, b"").protocol == UNKNOWN
    assert identify("POST", "/", {"Authorization": "junk"}, b"\xff\xfe").protocol == UNKNOWN
