"""Deployments end to end: a real Celery worker process, the real database and Redis, and AWS
as the moto server over HTTP behind the sandbox proxy (pending states, IAM propagation, held
network interfaces, throttling, 5xx and lost responses, at a fast time scale).

AWS itself is the one thing that cannot exist here; moto + the sandbox stand in for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deployer import services
from deployer.models import Deployment, DeploymentEvent, ResourceRecord
from designer.services import design_create
from designer.spec import DEFAULT_SPEC
from tests.support import aws, tagged

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 180


@pytest.fixture
def owner(make_user, team):
    return make_user("owner", team=team)


def wait_for(
    deployment: Deployment, statuses: tuple[str, ...], timeout: float = TIMEOUT
) -> Deployment:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.refresh_from_db()
        if deployment.status in statuses:
            return deployment
        time.sleep(0.25)
    events = "\n".join(e.message for e in deployment.events.order_by("seq"))
    pytest.fail(f"deployment is {deployment.status}, not {statuses}, after {timeout} s:\n{events}")


def start(team, owner, spec=None, **kwargs) -> Deployment:
    design = design_create(team=team, user=owner, spec_data=spec or DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    return services.deployment_start(design=design, target=target, user=owner, **kwargs)


def test_deploys_the_article_topology_and_reads_back_from_aws(worker, team, owner, moto_endpoint):
    deployment = wait_for(start(team, owner), ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    records = {r.logical_id: r for r in deployment.resources.all()}
    assert all(r.state == "ready" and r.physical_id for r in records.values())

    ec2 = aws(moto_endpoint, "ec2")
    vpc = ec2.describe_vpcs(VpcIds=[records["Vpc"].physical_id])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    tags = {t["Key"]: t["Value"] for t in vpc["Tags"]}
    assert tags["gantry:deployment"] == deployment.tag
    assert tags["gantry:logical-id"] == "Vpc"
    assert tags["Name"]

    subnets = {
        s["SubnetId"]: s
        for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
            "Subnets"
        ]
    }
    assert {s["CidrBlock"] for s in subnets.values()} == {
        "10.0.0.0/24",
        "10.0.1.0/24",
        "10.0.2.0/24",
    }
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets.values())

    def routes(table_lid):
        table = ec2.describe_route_tables(RouteTableIds=[records[table_lid].physical_id])[
            "RouteTables"
        ][0]
        return {
            r["DestinationCidrBlock"]: r.get("NatGatewayId") or r.get("GatewayId")
            for r in table["Routes"]
        }

    assert routes("LambdaRouteTable") == {
        "10.0.0.0/16": "local",
        "0.0.0.0/0": records["NatGateway1"].physical_id,
    }
    assert routes("ApiRouteTable") == {"10.0.0.0/16": "local"}
    assert routes("PublicRouteTable")["0.0.0.0/0"] == records["InternetGateway"].physical_id

    api_sg = ec2.describe_security_groups(GroupIds=[records["ApiSecurityGroup"].physical_id])[
        "SecurityGroups"
    ][0]
    ingress = [
        (p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p.get("IpRanges"))
        for p in api_sg["IpPermissions"]
    ]
    assert (443, [records["LambdaSecurityGroup"].physical_id], []) in ingress
    assert all(not ranges for _, _, ranges in ingress)  # group references, never CIDRs
    lambda_sg = ec2.describe_security_groups(GroupIds=[records["LambdaSecurityGroup"].physical_id])[
        "SecurityGroups"
    ][0]
    assert lambda_sg["IpPermissions"] == []  # SG-Lambda: no ingress
    assert not any(p["IpProtocol"] == "-1" for p in lambda_sg["IpPermissionsEgress"]), (
        "AWS's default allow-all egress must be revoked"
    )

    fn = aws(moto_endpoint, "lambda").get_function(
        FunctionName=records["LambdaFunction"].physical_id
    )
    config = fn["Configuration"]
    assert sorted(config["VpcConfig"]["SubnetIds"]) == [records["LambdaSubnet1"].physical_id]
    assert config["VpcConfig"]["SecurityGroupIds"] == [records["LambdaSecurityGroup"].physical_id]
    assert config["TracingConfig"]["Mode"] == "Active"
    assert fn["Tags"]["gantry:deployment"] == deployment.tag

    seqs = list(deployment.events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # numbered without gaps

    deployment = services.deployment_destroy(deployment=deployment, user=owner)
    deployment = wait_for(deployment, ("destroyed", "destroy_failed"))
    assert deployment.status == "destroyed", deployment.reason
    assert tagged(moto_endpoint, deployment.tag) == []


def test_waits_out_aws_time_behaviour_and_says_why(worker, team, owner, moto_endpoint):
    deployment = wait_for(start(team, owner), ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    messages = " | ".join(deployment.events.values_list("message", flat=True))
    assert "pending" in messages.lower()  # NAT gateway / Lambda pending were waited for
    deployment = services.deployment_destroy(deployment=deployment, user=owner)
    deployment = wait_for(deployment, ("destroyed", "destroy_failed"))
    assert deployment.status == "destroyed", deployment.reason
    # The sandbox holds the Lambda's subnet and security group after the function is deleted.
    waits = deployment.events.filter(
        kind="waiting", logical_id__in=["LambdaSubnet1", "LambdaSecurityGroup"]
    )
    assert waits.exists(), "the destroy should have waited out DependencyViolation and said why"
    assert any("network interface" in m for m in waits.values_list("message", flat=True))


def test_faults_never_duplicate_or_leave_anything(worker, team, owner, sandbox, moto_endpoint):
    sandbox.config(throttle_rate=0.15, error_rate=0.05, lose_response_rate=0.08, seed=7)
    deployment = wait_for(start(team, owner), ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    stats = sandbox.stats()
    assert (
        sum(stats.get("faults", {}).values() if isinstance(stats.get("faults"), dict) else [1]) > 0
    )
    ec2 = aws(moto_endpoint, "ec2")
    flt = [{"Name": "tag:gantry:deployment", "Values": [deployment.tag]}]
    assert len(ec2.describe_vpcs(Filters=flt)["Vpcs"]) == 1
    assert len(ec2.describe_subnets(Filters=flt)["Subnets"]) == 3
    assert (
        len(
            [
                n
                for n in ec2.describe_nat_gateways(Filters=flt)["NatGateways"]
                if n["State"] == "available"
            ]
        )
        == 1
    )
    assert len(ec2.describe_addresses(Filters=flt)["Addresses"]) == 1
    deployment = services.deployment_destroy(deployment=deployment, user=owner)
    deployment = wait_for(deployment, ("destroyed", "destroy_failed"))
    assert deployment.status == "destroyed", deployment.reason
    sandbox.config(throttle_rate=0, error_rate=0, lose_response_rate=0)
    assert tagged(moto_endpoint, deployment.tag) == []


@pytest.mark.parametrize("kill_after", [0.5, 2.0, 4.0])
def test_a_worker_killed_mid_deploy_does_not_stop_or_duplicate(
    worker, team, owner, moto_endpoint, kill_after
):
    deployment = start(team, owner)
    time.sleep(kill_after)
    worker.kill()
    time.sleep(0.5)
    worker.start()
    deployment = wait_for(deployment, ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    flt = [{"Name": "tag:gantry:deployment", "Values": [deployment.tag]}]
    ec2 = aws(moto_endpoint, "ec2")
    assert len(ec2.describe_vpcs(Filters=flt)["Vpcs"]) == 1
    assert len(ec2.describe_security_groups(Filters=flt)["SecurityGroups"]) == 3
    assert (
        len(
            [
                n
                for n in ec2.describe_nat_gateways(Filters=flt)["NatGateways"]
                if n["State"] != "deleted"
            ]
        )
        == 1
    )
    services.deployment_destroy(deployment=deployment, user=owner)
    assert wait_for(deployment, ("destroyed", "destroy_failed")).status == "destroyed"


def test_a_failure_rolls_back_and_keep_leaves_resources(
    worker, team, owner, sandbox, moto_endpoint
):
    # AWS refuses the log group, as it does a deployment role without logs:CreateLogGroup: the
    # deployment must fail on it, say so in words, and remove what it made.
    sandbox.config(
        refuse=[
            {
                "action": "logs:CreateLogGroup",
                "code": "AccessDeniedException",
                "message": "User is not authorized to perform: logs:CreateLogGroup",
            }
        ]
    )
    deployment = wait_for(
        start(team, owner), ("rolled_back", "failed", "succeeded", "destroy_failed")
    )
    assert deployment.status == "rolled_back", deployment.reason
    assert "LambdaLogGroup" in deployment.reason
    assert "not allowed to make this call" in deployment.reason
    assert tagged(moto_endpoint, deployment.tag) == []
    failed = deployment.resources.get(logical_id="LambdaLogGroup")
    assert "logs:CreateLogGroup" in failed.last_error

    other = {**DEFAULT_SPEC, "name": "kept-for-debugging"}
    kept = wait_for(
        start(team, owner, spec=other, keep_on_failure=True),
        ("failed", "rolled_back", "succeeded"),
    )
    assert kept.status == "failed"
    assert "kept for debugging" in kept.reason
    assert tagged(moto_endpoint, kept.tag)  # still there
    services.deployment_destroy(deployment=kept, user=owner)
    assert wait_for(kept, ("destroyed", "destroy_failed")).status == "destroyed"


def test_cancel_rolls_back(worker, team, owner, moto_endpoint):
    deployment = start(team, owner)
    time.sleep(1.0)
    services.deployment_cancel(deployment=deployment, user=owner)
    deployment = wait_for(deployment, ("cancelled", "succeeded", "destroy_failed"))
    assert deployment.status == "cancelled", deployment.reason
    assert tagged(moto_endpoint, deployment.tag) == []


def test_two_simultaneous_deploys_of_a_design_give_one_deployment(worker_env, team, owner):
    design = design_create(team=team, user=owner, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def deploy():
        from django.db import connection

        barrier.wait()
        try:
            outcomes.append(services.deployment_start(design=design, target=target, user=owner))
        except services.DeploymentConflict as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deploy) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(o, Deployment) for o in outcomes) == 1
    assert sum(isinstance(o, services.DeploymentConflict) for o in outcomes) == 1
    assert Deployment.objects.filter(design=design).count() == 1


def test_a_redelivered_or_stale_message_does_nothing(worker_env, team, owner):
    from deployer.engine import deployment_advance

    deployment = start(team, owner)  # no worker consumes the queue in this test
    assert deployment_advance(deployment_id=deployment.pk, token="stale") is None
    assert DeploymentEvent.objects.filter(deployment=deployment).count() == 1
    assert ResourceRecord.objects.filter(deployment=deployment, state="pending").count() == len(
        deployment.resources.all()
    )


def test_cli_deploy_and_destroy_wait_and_print_json(worker_env, worker, moto_endpoint, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**DEFAULT_SPEC, "name": "cli-deploy"}))
    env = worker_env["env"]

    def manage(*args):
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=TIMEOUT,
        )

    proc = manage("deploy", str(spec), "--team", "automation", "--wait", "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "succeeded"
    assert out["resources"]["Vpc"].startswith("vpc-")
    assert out["started_at"] and out["finished_at"]
    assert len(tagged(moto_endpoint, out["identity"])) > 10

    proc = manage("destroy", str(out["id"]), "--wait", "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    assert done["status"] == "destroyed" and done["id"] == out["id"]
    assert tagged(moto_endpoint, out["identity"]) == []


def test_the_reaper_restarts_a_stalled_deployment(worker_env, team, owner):
    from django.utils import timezone

    deployment = start(team, owner)
    Deployment.objects.filter(pk=deployment.pk).update(
        next_run_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    old_token = Deployment.objects.get(pk=deployment.pk).run_token
    assert services.deployments_reap(stale_after=60) == [deployment.pk]
    deployment.refresh_from_db()
    assert deployment.run_token != old_token
    assert deployment.events.filter(kind="reaper").exists()


@pytest.mark.parametrize(
    "action",
    [
        "ec2:CreateVpc",
        "ec2:CreateSecurityGroup",
        "ec2:AttachInternetGateway",
        "lambda:CreateFunction",
        "iam:CreateRole",
    ],
)
def test_a_lost_create_response_is_adopted_not_duplicated(
    worker, team, owner, sandbox, moto_endpoint, action
):
    # The create takes effect, its answer is lost, botocore retries: the retry meets the name
    # taken (or makes a twin). Gantry must end with exactly one resource, its own.
    sandbox.config(lose_response_rate=1, actions=[action], max_faults=1, lose_mode="500")
    deployment = wait_for(start(team, owner), ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    assert sandbox.stats()["faults"]["total"] == 1
    flt = [{"Name": "tag:gantry:deployment", "Values": [deployment.tag]}]
    ec2 = aws(moto_endpoint, "ec2")
    assert len(ec2.describe_vpcs(Filters=flt)["Vpcs"]) == 1
    assert len(ec2.describe_security_groups(Filters=flt)["SecurityGroups"]) == 3
    services.deployment_destroy(deployment=deployment, user=owner)
    assert wait_for(deployment, ("destroyed", "destroy_failed")).status == "destroyed"
    assert tagged(moto_endpoint, deployment.tag) == []
