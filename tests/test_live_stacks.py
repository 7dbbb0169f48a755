"""Live stacks end to end: a deployed design changed in place, field by field, against moto
through the sandbox (pending states, held network interfaces, faults), with a real worker.

Each change is checked the way a platform engineer would: the change set's actions first, then
the update applied and read back from AWS straight (not through Gantry): what the change did not
touch keeps its physical id, nothing of the old shape is left, nothing is duplicated; and at the
end a destroy leaves nothing. One deployment walks through a chain of changes per test, so the
suite pays for one create and one destroy per chain rather than per change.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deployer import services
from deployer.models import Deployment
from designer.services import design_create, design_update
from designer.spec import DEFAULT_SPEC, validate_spec
from tests.support import aws, ec2_logical_ids, tagged
from tests.test_deployer_e2e import wait_for

ROOT = Path(__file__).resolve().parent.parent
DONE = ("succeeded", "failed", "rolled_back", "update_rolled_back", "update_failed")
#: Types whose resources carry the gantry tags (the others are found inside them).
TAGGED = {
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::RouteTable",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::EIP",
    "AWS::EC2::NatGateway",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::Instance",
    "AWS::EC2::LaunchTemplate",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::Lambda::Function",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
    "AWS::IAM::Role",
    "AWS::IAM::InstanceProfile",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::CertificateManager::Certificate",
}


@pytest.fixture
def owner(make_user, team):
    return make_user("owner", team=team)


class Stack:
    """One design deployed to the sandbox, changed version by version."""

    def __init__(self, team, owner, moto_endpoint, spec: dict):
        self.team, self.owner, self.moto = team, owner, moto_endpoint
        self.spec = spec
        self.design = design_create(team=team, user=owner, spec_data=spec)
        self.target = services.target_sandbox_ensure(team=team)
        self.deployment = wait_for(
            services.deployment_start(design=self.design, target=self.target, user=owner), DONE
        )
        assert self.deployment.status == "succeeded", self.deployment.reason
        self.check_aws()

    def ids(self) -> dict[str, str]:
        return {
            r.logical_id: r.physical_id
            for r in self.deployment.resources.all()
            if r.is_live and r.physical_id
        }

    def review(self, **changes) -> dict[str, str]:
        """Save the next version and return the change set's action per logical id."""
        self.spec = {**self.spec, **changes}
        self.design = design_update(design=self.design, user=self.owner, spec_data=self.spec)
        live, change_set, _ = services.change_set_preview(design=self.design, target=self.target)
        assert live is not None and live.pk == self.deployment.pk
        assert not change_set.refused, change_set.refused
        return {c.logical_id: c.action for c in change_set.changes}

    def apply(self, **kwargs) -> Deployment:
        before = self.ids()
        started = services.deployment_apply(
            design=self.design,
            target=self.target,
            user=self.owner,
            allow_interruption=True,
            **kwargs,
        )
        assert started.deployment.pk == self.deployment.pk  # changed in place
        assert started.run is not None and started.run.operation == "update"
        self.deployment = wait_for(self.deployment, DONE)
        self.before = before
        return self.deployment

    def applied(self, actions: dict[str, str]) -> None:
        """After a successful update: the ids moved exactly as the change set said."""
        assert self.deployment.status == "succeeded", self.deployment.reason
        now = self.ids()
        for lid, old in self.before.items():
            action = actions.get(lid)
            if action is None or action == "modify":
                assert now.get(lid) == old, f"{lid} was not to be replaced"
            elif action == "replace":
                assert now.get(lid) and now[lid] != old, f"{lid} was to get a new resource"
            elif action == "remove":
                assert lid not in now
        for lid, action in actions.items():
            if action == "add":
                assert lid in now, f"{lid} was to be added"
        assert self.deployment.spec == validate_spec(self.spec).spec.to_json()
        assert self.deployment.design_version == self.design.version
        self.check_aws()

    def check_aws(self) -> None:
        """What AWS holds with this deployment's identity is exactly its live resources: no
        duplicate, nothing of an older shape; every subnet in its planned route table."""
        records = [r for r in self.deployment.resources.all() if r.is_live]
        expected = {r.physical_id for r in records if r.type in TAGGED}
        found = set(tagged(self.moto, self.deployment.identity)) - self._launched_by_the_group()
        assert found == expected, {"extra": found - expected, "missing": expected - found}
        assert all(n == 1 for n in ec2_logical_ids(self.moto, self.deployment.identity).values())
        ec2 = aws(self.moto, "ec2")
        by_id = {r.logical_id: r for r in records}
        for record in records:
            if record.type != "AWS::EC2::SubnetRouteTableAssociation":
                continue
            subnet = by_id[record.node["properties"]["SubnetId"]["Ref"]].physical_id
            table = by_id[record.node["properties"]["RouteTableId"]["Ref"]].physical_id
            tables = ec2.describe_route_tables(
                Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
            )["RouteTables"]
            assert [t["RouteTableId"] for t in tables] == [table], record.logical_id
        for record in records:
            if record.type != "AWS::EC2::RouteTable":
                continue
            routes = ec2.describe_route_tables(RouteTableIds=[record.physical_id])["RouteTables"][
                0
            ]["Routes"]
            planned = {
                r.node["properties"]["DestinationCidrBlock"]
                for r in records
                if r.type == "AWS::EC2::Route"
                and r.node["properties"]["RouteTableId"]["Ref"] == record.logical_id
            }
            outside = {r["DestinationCidrBlock"] for r in routes if r.get("GatewayId") != "local"}
            assert outside == planned, record.logical_id

    def _launched_by_the_group(self) -> set[str]:
        ec2 = aws(self.moto, "ec2")
        reservations = ec2.describe_instances(
            Filters=[
                {"Name": "tag:gantry:deployment", "Values": [self.deployment.identity]},
                {"Name": "tag:gantry:logical-id", "Values": ["ApiAutoScalingGroup"]},
            ]
        )["Reservations"]
        return {i["InstanceId"] for r in reservations for i in r["Instances"]}

    def destroy(self) -> None:
        services.deployment_destroy(deployment=self.deployment, user=self.owner)
        assert wait_for(self.deployment, ("destroyed", "destroy_failed")).status == "destroyed"
        assert tagged(self.moto, self.deployment.identity) == []


def step(stack: Stack, expect: dict[str, str], **changes) -> None:
    """One change: its change set says ``expect`` (a subset: these logical ids get these
    actions), then it is applied and read back."""
    actions = stack.review(**changes)
    for lid, action in expect.items():
        assert actions.get(lid) == action, (lid, actions)
    stack.apply()
    stack.applied(actions)


def test_port_nat_tags_and_azs_change_in_place(worker, team, owner, moto_endpoint):
    stack = Stack(team, owner, moto_endpoint, DEFAULT_SPEC)
    step(
        stack,
        {
            "ApiFromLambdaIngress": "replace",
            "LambdaToApiEgress": "replace",
            "ApiInstance": "replace",
            "LambdaFunction": "modify",
        },
        api_port=8443,
    )
    # NAT single -> none: the internet path goes, the endpoint becomes the Lambda's way out.
    step(
        stack,
        {
            "NatGateway1": "remove",
            "NatEip1": "remove",
            "InternetGateway": "remove",
            "PublicSubnet1": "remove",
            "LambdaDefaultRoute": "remove",
            "LambdaHttpsEgress": "remove",
            "LambdaToEndpointEgress": "add",
        },
        nat="none",
    )
    # none -> per_az (one AZ): a route table per Lambda AZ, each through its own NAT.
    step(
        stack,
        {
            "NatGateway1": "add",
            "LambdaRouteTable": "remove",
            "LambdaRouteTable1": "add",
            "LambdaDefaultRoute1": "add",
            "LambdaToEndpointEgress": "remove",
        },
        nat="per_az",
    )
    # per_az -> single.
    step(
        stack,
        {"LambdaRouteTable1": "remove", "LambdaRouteTable": "add", "LambdaDefaultRoute": "add"},
        nat="single",
    )
    # An AZ added to the Lambda, then removed again.
    step(
        stack,
        {
            "LambdaSubnet2": "add",
            "LambdaSubnet2RouteTableAssociation": "add",
            "LambdaFunction": "modify",
            "SecretsManagerEndpoint": "modify",
        },
        lambda_subnet_cidrs=["10.0.1.0/24", "10.0.11.0/24"],
    )
    step(
        stack,
        {"LambdaSubnet2": "remove", "LambdaFunction": "modify"},
        lambda_subnet_cidrs=["10.0.1.0/24"],
    )
    # Tags: every tagged resource modified in place, none replaced.
    actions = stack.review(tags={"team": "payments", "cost-centre": "42"})
    assert set(actions.values()) == {"modify"}
    stack.apply()
    stack.applied(actions)
    vpc = aws(moto_endpoint, "ec2").describe_vpcs(VpcIds=[stack.ids()["Vpc"]])["Vpcs"][0]
    assert {"Key": "cost-centre", "Value": "42"} in vpc["Tags"]
    stack.destroy()


def test_api_kind_ec2_to_alb_and_back(worker, team, owner, moto_endpoint):
    stack = Stack(team, owner, moto_endpoint, DEFAULT_SPEC)
    step(
        stack,
        {
            "ApiInstance": "remove",
            "ApiLoadBalancer": "add",
            "ApiAutoScalingGroup": "add",
            "ApiSubnet2": "add",
            "ApiSecurityGroup": "replace",
            "LambdaFunction": "modify",
        },
        api_kind="alb",
        api_subnet_cidrs=["10.0.2.0/24", "10.0.3.0/24"],
    )
    step(
        stack,
        {"ApiInstance": "add", "ApiLoadBalancer": "remove", "ApiAutoScalingGroup": "remove"},
        api_kind="ec2",
        api_subnet_cidrs=["10.0.2.0/24"],
    )
    stack.destroy()


def test_a_new_vpc_range_replaces_the_network_and_keeps_the_credential(
    worker, team, owner, moto_endpoint
):
    stack = Stack(team, owner, moto_endpoint, DEFAULT_SPEC)
    secret = stack.ids()["ApiSecret"]
    step(
        stack,
        {"Vpc": "replace", "LambdaSubnet1": "replace", "ApiInstance": "replace"},
        vpc_cidr="10.1.0.0/16",
        public_subnet_cidrs=["10.1.0.0/24"],
        lambda_subnet_cidrs=["10.1.1.0/24"],
        api_subnet_cidrs=["10.1.2.0/24"],
    )
    assert stack.ids()["ApiSecret"] == secret
    stack.destroy()


def test_an_update_under_faults_ends_as_planned(worker, team, owner, moto_endpoint, sandbox):
    stack = Stack(team, owner, moto_endpoint, DEFAULT_SPEC)
    sandbox.config(throttle_rate=0.15, error_rate=0.05, lose_response_rate=0.08, seed=7)
    actions = stack.review(api_port=8443, tags={"team": "payments"})
    stack.apply()
    sandbox.config(throttle_rate=0, error_rate=0, lose_response_rate=0)
    stack.applied(actions)
    assert sandbox.stats()["faults"], "no fault was injected"
    stack.destroy()


def test_a_worker_killed_mid_update_does_not_stop_or_duplicate(worker, team, owner, moto_endpoint):
    stack = Stack(team, owner, moto_endpoint, DEFAULT_SPEC)
    actions = stack.review(api_port=8443)
    before = stack.ids()
    services.deployment_apply(
        design=stack.design, target=stack.target, user=owner, allow_interruption=True
    )
    wait_for_event(stack.deployment, "updating in place")
    worker.kill()
    worker.start()
    stack.deployment = wait_for(stack.deployment, DONE)
    stack.before = before
    stack.applied(actions)
    stack.destroy()


def wait_for_event(deployment: Deployment, text: str, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if deployment.events.filter(message__contains=text).exists():
            return
        time.sleep(0.1)
    pytest.fail(f"no event saying {text!r}")


def test_a_failed_update_rolls_back_to_the_previous_version(
    worker, team, owner, moto_endpoint, sandbox
):
    stack = Stack(team, owner, moto_endpoint, DEFAULT_SPEC)
    before_ids, before_version = stack.ids(), stack.deployment.design_version
    # AWS refuses the new rules (as for a role without the permission): the update fails
    # after the instance has been replaced and must undo that.
    sandbox.config(
        refuse=[
            {
                "action": "ec2:AuthorizeSecurityGroupIngress",
                "code": "UnauthorizedOperation",
                "message": "You are not authorized to perform this operation.",
            }
        ]
    )
    stack.review(api_port=8443)
    stack.apply()
    assert stack.deployment.status == "update_rolled_back", stack.deployment.reason
    assert "ApiFromLambdaIngress" in stack.deployment.reason
    sandbox.config(refuse=[])
    assert stack.ids() == before_ids  # every original resource is back in place
    assert stack.deployment.design_version == before_version
    assert stack.deployment.spec["api_port"] == 443
    run = stack.deployment.current_run
    assert run.operation == "update" and run.status == "rolled_back"
    stack.check_aws()
    stack.destroy()


def test_cancel_mid_update_puts_the_previous_version_back(worker, team, owner, moto_endpoint):
    stack = Stack(team, owner, moto_endpoint, DEFAULT_SPEC)
    before_ids = stack.ids()
    stack.review(api_port=8443)
    services.deployment_apply(
        design=stack.design, target=stack.target, user=owner, allow_interruption=True
    )
    wait_for_event(stack.deployment, "updating in place")
    services.deployment_cancel(deployment=stack.deployment, user=owner)
    stack.deployment = wait_for(stack.deployment, DONE)
    assert stack.deployment.status == "update_rolled_back", stack.deployment.reason
    assert stack.deployment.current_run.status == "cancelled"
    assert stack.ids() == before_ids
    stack.check_aws()
    stack.destroy()


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_drift_is_found_and_repaired_through_the_cli(worker, worker_env, moto_endpoint, tmp_path):
    env = worker_env["env"]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**DEFAULT_SPEC, "name": "drifting"}))
    out = _manage(env, "deploy", str(spec), "--team", "ops", "--wait", "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    deployed = json.loads(out.stdout.strip().splitlines()[-1])
    ids = deployed["resources"]

    checked = _manage(env, "drift", str(deployed["id"]), "--json")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert json.loads(checked.stdout)["status"] == "in_sync"

    # Out of band: a world-open SSH rule on SG-API, the Lambda's route to NAT deleted, a
    # private subnet set to give out public addresses.
    ec2 = aws(moto_endpoint, "ec2")
    ec2.authorize_security_group_ingress(
        GroupId=ids["ApiSecurityGroup"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    table = ids["LambdaRouteTable"]
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    ec2.modify_subnet_attribute(SubnetId=ids["ApiSubnet1"], MapPublicIpOnLaunch={"Value": True})

    checked = _manage(env, "drift", str(deployed["id"]), "--json")
    assert checked.returncode == 1, checked.stderr + checked.stdout
    report = json.loads(checked.stdout)
    assert report["status"] == "drifted"
    drift = {r["logical_id"]: r for r in report["resources"] if r["drift"] != "in_sync"}
    assert drift["LambdaDefaultRoute"]["drift"] == "deleted"
    assert drift["ApiSubnet1"]["drift"] == "modified"
    assert [d["property"] for d in drift["ApiSubnet1"]["differences"]] == ["MapPublicIpOnLaunch"]
    sg = drift["ApiSecurityGroup"]
    assert sg["drift"] == "modified"
    assert any(
        "22" in str(d["actual"]) and "0.0.0.0/0" in str(d["actual"]) for d in sg["differences"]
    )

    # The unchanged design's change set puts it back; applying it repairs the drift.
    dry = _manage(env, "deploy", str(spec), "--team", "ops", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["deployment"] == deployed["id"]
    repairs = {c["logical_id"]: c["action"] for c in plan["changes"]}
    assert repairs["LambdaDefaultRoute"] == "add"
    assert repairs["ApiSubnet1"] == "modify"
    assert repairs["ApiSecurityGroup"] == "modify"

    out = _manage(env, "deploy", str(spec), "--team", "ops", "--wait", "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1])["id"] == deployed["id"]
    checked = _manage(env, "drift", str(deployed["id"]), "--json")
    assert checked.returncode == 0, checked.stdout
    rules = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [ids["ApiSecurityGroup"]]}]
    )["SecurityGroupRules"]
    assert not any(r.get("FromPort") == 22 for r in rules)
    destroyed = _manage(env, "destroy", str(deployed["id"]), "--wait", "--json")
    assert destroyed.returncode == 0, destroyed.stderr
