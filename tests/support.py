"""Small helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
from django.db import connection

from deployer import events
from deployer.models import Deployment
from deployer.resources import handler_for
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready
from deployer.walker import node_properties
from designer.graph import ResourceGraph, ResourceNode


def subprocess_database_url() -> str:
    """A ``DATABASE_URL`` for subprocesses (workers, manage.py, uvicorn) that points at the
    test database this process is using."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def finish_as_worker(deployment: Deployment, status: str = "succeeded") -> Deployment:
    """What the worker records when a deployment ends (no worker runs in the calling test):
    the terminal status, and the status event that ends its stream."""
    deployment.status = status
    deployment.save(update_fields=["status"])
    events.append(deployment, kind="status", message=status, state=status)
    return deployment


class HandlerDriver:
    """Drives a plan's nodes through the resource handlers one call at a time, as the engine
    would: Refs resolved by the engine's own ``resolve`` from the ids and Ready attributes
    recorded so far (``ids``, ``attributes``; tests may seed them)."""

    def __init__(self, ctx: AwsContext, graph: ResourceGraph):
        self.ctx = ctx
        self.graph = graph
        self.ids: dict[str, str] = {}
        self.attributes: dict[str, dict[str, Any]] = {}

    def node(self, logical_id: str) -> ResourceNode:
        return self.graph[logical_id]

    def handler(self, logical_id: str) -> Any:
        return handler_for(self.graph[logical_id].type)

    def props(self, logical_id: str) -> dict[str, Any]:
        records = {
            lid: SimpleNamespace(
                physical_id=self.ids.get(lid, ""), attributes=self.attributes.get(lid, {})
            )
            for lid in {*self.ids, *self.attributes}
        }
        return node_properties(self.graph[logical_id], records, self.ctx)

    def create(self, logical_id: str) -> str:
        self.ids[logical_id] = self.handler(logical_id).create(
            self.ctx, self.graph[logical_id], self.props(logical_id)
        )
        return self.ids[logical_id]

    def check(self, logical_id: str) -> Ready | Pending | Failed:
        return self.handler(logical_id).check_ready(
            self.ctx, self.graph[logical_id], self.ids[logical_id]
        )

    def settle(self, logical_id: str) -> tuple[Ready, list[str]]:
        """check_ready until it stops being Pending (moto settles at once; DNS and public-IP
        convergence take a few passes). Returns the Ready and the pending reasons."""
        reasons: list[str] = []
        for _ in range(6):
            result = self.check(logical_id)
            if not isinstance(result, Pending):
                break
            reasons.append(result.reason)
        assert isinstance(result, Ready), (result, reasons)
        self.attributes[logical_id] = result.attributes
        return result, reasons

    def up(self, *logical_ids: str) -> None:
        for logical_id in logical_ids:
            self.create(logical_id)
            self.settle(logical_id)

    def find(self, logical_id: str) -> list[str]:
        return self.handler(logical_id).find(
            self.ctx, self.graph[logical_id], self.props(logical_id)
        )

    def delete(self, logical_id: str) -> None:
        self.handler(logical_id).delete(self.ctx, self.graph[logical_id], self.ids[logical_id])

    def check_gone(self, logical_id: str) -> Gone | Pending:
        return self.handler(logical_id).check_gone(
            self.ctx, self.graph[logical_id], self.ids[logical_id]
        )

    def destroy(self, logical_id: str) -> None:
        """delete -> check_gone is Gone -> a second delete is harmless and still Gone."""
        self.delete(logical_id)
        assert isinstance(self.check_gone(logical_id), Gone)
        self.delete(logical_id)
        assert isinstance(self.check_gone(logical_id), Gone)


def aws(moto_endpoint: str, service: str, region: str = "us-east-1") -> Any:
    """A client straight to the emulator (not through the fault-injecting sandbox), to read
    back what a deployment really left."""
    return boto3.client(service, region_name=region, endpoint_url=moto_endpoint)


def _tags(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return tags
    return {t["Key"]: t["Value"] for t in tags or []}


def tagged(moto_endpoint: str, identity: str, region: str = "us-east-1") -> list[str]:
    """Every resource that still carries ``gantry:deployment=<identity>``, across every type a
    deployment creates, read independently of Gantry's own code (the test's oracle)."""

    def mine(tags: Any) -> bool:
        return _tags(tags).get("gantry:deployment") == identity

    ec2 = aws(moto_endpoint, "ec2", region)
    flt = [{"Name": "tag:gantry:deployment", "Values": [identity]}]
    found: list[str] = []
    for operation, key, id_key in (
        ("describe_vpcs", "Vpcs", "VpcId"),
        ("describe_subnets", "Subnets", "SubnetId"),
        ("describe_security_groups", "SecurityGroups", "GroupId"),
        ("describe_route_tables", "RouteTables", "RouteTableId"),
        ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
        ("describe_addresses", "Addresses", "AllocationId"),
        ("describe_launch_templates", "LaunchTemplates", "LaunchTemplateId"),
        ("describe_security_group_rules", "SecurityGroupRules", "SecurityGroupRuleId"),
    ):
        found += [i[id_key] for i in getattr(ec2, operation)(Filters=flt)[key] if mine(i["Tags"])]
    found += [
        n["NatGatewayId"]
        for n in ec2.describe_nat_gateways()["NatGateways"]
        if mine(n.get("Tags")) and n["State"] not in ("deleted", "deleting")
    ]
    found += [
        e["VpcEndpointId"]
        for e in ec2.describe_vpc_endpoints(Filters=flt)["VpcEndpoints"]
        if e["State"].lower() not in ("deleted", "deleting")
    ]
    for reservation in ec2.describe_instances(Filters=flt)["Reservations"]:
        found += [
            i["InstanceId"]
            for i in reservation["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")
        ]
    lam = aws(moto_endpoint, "lambda", region)
    found += [
        fn["FunctionName"]
        for fn in lam.list_functions()["Functions"]
        if mine(lam.list_tags(Resource=fn["FunctionArn"])["Tags"])
    ]
    sm = aws(moto_endpoint, "secretsmanager", region)
    found += [
        secret["ARN"]
        for secret in sm.list_secrets()["SecretList"]
        if mine(secret.get("Tags")) and not secret.get("DeletedDate")
    ]
    logs = aws(moto_endpoint, "logs", region)
    for group in logs.describe_log_groups()["logGroups"]:
        arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
        if mine(logs.list_tags_for_resource(resourceArn=arn).get("tags")):
            found.append(group["logGroupName"])
    iam = aws(moto_endpoint, "iam", region)
    found += [
        r["RoleName"]
        for r in iam.list_roles()["Roles"]
        if mine(iam.list_role_tags(RoleName=r["RoleName"])["Tags"])
    ]
    found += [
        p["InstanceProfileName"]
        for p in iam.list_instance_profiles()["InstanceProfiles"]
        if mine(
            iam.get_instance_profile(InstanceProfileName=p["InstanceProfileName"])[
                "InstanceProfile"
            ].get("Tags")
        )
    ]
    elbv2 = aws(moto_endpoint, "elbv2", region)
    arns = [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
    arns += [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    for start in range(0, len(arns), 20):
        described = elbv2.describe_tags(ResourceArns=arns[start : start + 20])["TagDescriptions"]
        found += [d["ResourceArn"] for d in described if mine(d.get("Tags"))]
    asg = aws(moto_endpoint, "autoscaling", region)
    found += [
        g["AutoScalingGroupName"]
        for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        if mine(g.get("Tags"))
    ]
    acm = aws(moto_endpoint, "acm", region)
    for cert in acm.list_certificates()["CertificateSummaryList"]:
        tags = acm.list_tags_for_certificate(CertificateArn=cert["CertificateArn"]).get("Tags")
        if mine(tags):
            found.append(cert["CertificateArn"])
    return found


def ec2_logical_ids(moto_endpoint: str, identity: str, region: str = "us-east-1") -> Counter:
    """How many live EC2 resources carry each ``gantry:logical-id`` of the deployment: a count
    above one is a duplicate."""
    ec2 = aws(moto_endpoint, "ec2", region)
    flt = [{"Name": "tag:gantry:deployment", "Values": [identity]}]
    items: list[dict] = []
    for operation, key in (
        ("describe_vpcs", "Vpcs"),
        ("describe_subnets", "Subnets"),
        ("describe_security_groups", "SecurityGroups"),
        ("describe_route_tables", "RouteTables"),
        ("describe_internet_gateways", "InternetGateways"),
        ("describe_addresses", "Addresses"),
    ):
        items += getattr(ec2, operation)(Filters=flt)[key]
    items += [
        n
        for n in ec2.describe_nat_gateways()["NatGateways"]
        if n["State"] not in ("deleted", "deleting")
        and _tags(n.get("Tags")).get("gantry:deployment") == identity
    ]
    for reservation in ec2.describe_instances(Filters=flt)["Reservations"]:
        items += [i for i in reservation["Instances"] if i["State"]["Name"] != "terminated"]
    # An Auto Scaling group launches several instances, all tagged as the group's.
    return Counter(
        lid
        for item in items
        if (lid := _tags(item.get("Tags")).get("gantry:logical-id")) != "ApiAutoScalingGroup"
    )


class ThrowawayPostgres:
    """A PostgreSQL cluster of the test's own, made with Debian's ``initdb`` and ``pg_ctl`` in
    a temporary folder on a free port, so a test may stop and restart it (never the machine's
    shared server). PostgreSQL refuses to run as root: as root it runs as ``postgres``."""

    def __init__(self, root: Path, port: int):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("Debian's PostgreSQL server binaries are not installed")
        self.bin = bins[-1].parent
        self.root, self.port = root, port
        self.data = root / "data"
        self.log = root / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, check=True
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> str:
        self._run(
            str(self.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            name,
        )
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        shutil.rmtree(self.root, ignore_errors=True)
