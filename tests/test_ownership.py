"""Ownership no other installation can claim: identities, the installation tag, names that
carry part of the identity, orphans, and deployments made by an older Gantry.

Real components: two installations are two databases with a worker each, against one moto
server behind the sandbox, exactly as two Gantry installations would share one AWS account.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from deployer import services
from deployer.graphs import legacy_graph_document
from deployer.models import Deployment, Installation, ResourceRecord
from deployer.resources.base import TAG_INSTALLATION, AwsContext
from designer.graph import ResourceGraph, ResourceNode
from designer.plan import plan
from designer.services import design_create
from designer.spec import DEFAULT_SPEC, validate_spec
from tests.conftest import WorkerProcess
from tests.support import aws, tagged
from tests.test_deployer_e2e import TIMEOUT, wait_for

ROOT = Path(__file__).resolve().parent.parent


def ctx(**kwargs) -> AwsContext:
    return AwsContext(region="us-east-1", client=lambda _: None, **kwargs)


# --- identity, tags and names (no AWS) -----------------------------------------------------


def test_every_deployment_has_a_random_identity_and_the_installation(db, team, member):
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    first = services.deployment_start(design=design, target=target, user=member)
    # Once the first is destroyed, the design's next deployment is a new one.
    Deployment.objects.filter(pk=first.pk).update(status="destroyed")
    second = services.deployment_start(design=design, target=target, user=member)
    assert first.identity != second.identity
    for deployment in (first, second):
        assert str(uuid.UUID(deployment.identity)) == deployment.identity
        assert deployment.tag == deployment.identity  # the gantry:deployment value
        assert deployment.installation == Installation.current().installation_id
        assert not deployment.legacy_identity
        assert len(deployment.name_suffix) == 8


def test_ownership_needs_the_exact_identity_and_installation():
    mine = ctx(deployment_tag="d-1", installation="inst-a", name_suffix="abcd1234")
    node = ResourceNode("Vpc", "AWS::EC2::VPC", meta={"name": "orders-vpc"})
    tags = mine.tag_dict(node)
    assert tags["gantry:deployment"] == "d-1"
    assert tags[TAG_INSTALLATION] == "inst-a"
    assert tags["gantry:logical-id"] == "Vpc"
    assert mine.owns(node, tags)
    # Another installation whose deployment drew the same identity, another deployment,
    # another node, or no installation tag at all: never ours.
    assert not mine.owns(node, {**tags, TAG_INSTALLATION: "inst-b"})
    assert not mine.owns(node, {**tags, "gantry:deployment": "d-2"})
    assert not mine.owns(node, {**tags, "gantry:logical-id": "Subnet"})
    assert not mine.owns(node, {k: v for k, v in tags.items() if k != TAG_INSTALLATION})
    assert {"Name": f"tag:{TAG_INSTALLATION}", "Values": ["inst-a"]} in mine.tag_filters(node)


def test_a_deployment_made_before_installations_were_tagged_keeps_its_ways():
    legacy = ctx(deployment_tag="gd-7", stack_name="orders")
    node = ResourceNode("LambdaRole", "AWS::IAM::Role", meta={"name": "orders-lambda-role"})
    assert TAG_INSTALLATION not in legacy.tag_dict(node)
    assert legacy.owns(node, {"gantry:deployment": "gd-7", "gantry:logical-id": "LambdaRole"})
    # A resource of a tagged installation is never taken for an old deployment's.
    assert not legacy.owns(
        node,
        {"gantry:deployment": "gd-7", "gantry:logical-id": "LambdaRole", TAG_INSTALLATION: "x"},
    )
    # The names it was created with.
    assert legacy.physical_name(node, 64) == "gd-7-lambda-role"
    function = ResourceNode("LambdaFunction", "AWS::Lambda::Function")
    assert legacy.unique_name(function, "orders-lambda-function", 64) == "orders-lambda-function"


def test_generated_names_are_readable_fit_aws_limits_and_keep_the_identity():
    long = "a" + "b" * 39  # the longest design name
    c = ctx(deployment_tag="d", installation="i", name_suffix="0123abcd", stack_name=long)
    balancer = ResourceNode("ApiLoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    name = c.physical_name(balancer, 32)
    assert len(name) <= 32 and name.startswith("abbb") and name.endswith("-0123abcd")
    role = c.physical_name(ResourceNode("LambdaRole", "AWS::IAM::Role"), 64)
    assert role == f"{long}-lambda-role-0123abcd"
    function = ResourceNode("LambdaFunction", "AWS::Lambda::Function")
    assert (
        c.unique_name(function, "orders-lambda-function", 64) == "orders-lambda-function-0123abcd"
    )
    # A replacement (a later generation of the node) gets a name of its own.
    replaced = ResourceNode("LambdaFunction", "AWS::Lambda::Function", meta={"generation": 1})
    again = c.unique_name(replaced, "orders-lambda-function", 64)
    assert (
        again.startswith("orders-lambda-function-") and again != "orders-lambda-function-0123abcd"
    )
    assert c.client_token(replaced) != c.client_token(function)


# --- the stored graph ----------------------------------------------------------------------


def test_the_graph_is_stored_with_the_deployment_and_read_back(db, team, member):
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=member)
    assert deployment.graph["format"] == 1
    stored = ResourceGraph.from_document(deployment.graph)
    planned = plan(validate_spec(DEFAULT_SPEC).spec)
    assert stored.to_json() == planned.to_json()
    assert {r.logical_id for r in deployment.resources.all()} == set(planned.nodes)


def test_a_graph_format_this_gantry_cannot_read_is_refused_plainly():
    from designer.graph import GraphError

    with pytest.raises(GraphError, match="format 99"):
        ResourceGraph.from_document({"format": 99, "nodes": []})


def test_an_old_deployment_gets_its_graph_even_if_its_spec_no_longer_validates():
    # Valid when it was deployed; today's rules refuse a loopback VPC.
    snapshot = {
        **DEFAULT_SPEC,
        "vpc_cidr": "127.0.0.0/16",
        "public_subnet_cidrs": ["127.0.0.0/24"],
        "lambda_subnet_cidrs": ["127.0.1.0/24"],
        "api_subnet_cidrs": ["127.0.2.0/24"],
    }
    assert not validate_spec(snapshot).valid
    records = {"Vpc": "AWS::EC2::VPC", "LambdaSubnet1": "AWS::EC2::Subnet"}
    records["RetiredThing"] = "AWS::EC2::SecurityGroup"  # a node this planner no longer has
    graph = ResourceGraph.from_document(legacy_graph_document(snapshot, records))
    assert set(graph.nodes) == set(records)
    assert graph["Vpc"].properties["CidrBlock"] == "127.0.0.0/16"
    assert graph["LambdaSubnet1"].depends_on == ["Vpc"]
    assert graph["RetiredThing"].meta["unplanned"] is True


# --- against AWS ---------------------------------------------------------------------------


@pytest.fixture
def owner(make_user, team):
    return make_user("owner", team=team)


def test_an_older_gantrys_deployment_with_a_different_graph_deploys_shows_and_destroys(
    worker_env, start_worker, team, owner, moto_endpoint, client
):
    """A deployment as an older Gantry left it: an identity ``gd-<id>``, no installation tag,
    and a stored graph that differs from what today's planner gives (a node it no longer
    plans, and without one it plans now). The engine works from the stored graph alone."""
    design = design_create(team=team, user=owner, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=owner)
    graph = ResourceGraph.from_document(deployment.graph)
    # Today's plan has LambdaHttpsEgress; the older one did not...
    del graph.nodes["LambdaHttpsEgress"]
    for node in graph:
        node.depends_on = [d for d in node.depends_on if d != "LambdaHttpsEgress"]
    # ... and it had a group today's does not.
    graph.add(
        ResourceNode(
            "AuditSecurityGroup",
            "AWS::EC2::SecurityGroup",
            properties={
                "GroupName": "lambda-private-api-audit-security-group",
                "GroupDescription": "an older Gantry's extra group",
                "VpcId": graph["ApiSecurityGroup"].properties["VpcId"],
            },
            depends_on=["Vpc"],
            meta={"label": "SG-Audit", "name": "lambda-private-api-audit-security-group"},
        )
    )
    # Its rows as the upgrade left them (migrations 0003 and 0005): each record knows its node.
    deployment.resources.filter(logical_id="LambdaHttpsEgress").delete()
    ResourceRecord.objects.create(
        deployment=deployment,
        logical_id="AuditSecurityGroup",
        type="AWS::EC2::SecurityGroup",
        position=99,
        action="create",
        settled=False,
    )
    for record in deployment.resources.all():
        record.node = graph[record.logical_id].to_json()
        record.save(update_fields=["node"])
    Deployment.objects.filter(pk=deployment.pk).update(
        graph=graph.to_document(), identity=f"gd-{deployment.pk}", installation=""
    )
    start_worker()
    deployment = wait_for(deployment, ("succeeded", "failed", "rolled_back"))
    assert deployment.status == "succeeded", deployment.reason
    records = {r.logical_id: r for r in deployment.resources.all()}
    assert "LambdaHttpsEgress" not in records
    assert records["AuditSecurityGroup"].state == "ready"
    # Tagged as such a deployment always was: gd-<id>, no installation tag; old names.
    ec2 = aws(moto_endpoint, "ec2")
    group = ec2.describe_security_groups(GroupIds=[records["AuditSecurityGroup"].physical_id])
    tags = {t["Key"]: t["Value"] for t in group["SecurityGroups"][0]["Tags"]}
    assert tags["gantry:deployment"] == f"gd-{deployment.pk}"
    assert TAG_INSTALLATION not in tags
    assert records["LambdaRole"].physical_id == f"gd-{deployment.pk}-lambda-role"
    assert records["LambdaFunction"].physical_id == "lambda-private-api-lambda-function"

    client.force_login(owner)
    page = client.get(f"/deployments/{deployment.pk}/")
    assert page.status_code == 200
    assert b"SG-Audit" in page.content

    services.deployment_destroy(deployment=deployment, user=owner)
    assert wait_for(deployment, ("destroyed", "destroy_failed")).status == "destroyed"
    assert tagged(moto_endpoint, deployment.identity) == []


class Installation2:
    """A second Gantry installation: its own database, its own worker, the same AWS account."""

    def __init__(self, env: dict[str, str], database_url: str, queue: str):
        self.env = {
            **env,
            "DATABASE_URL": database_url,
            "GANTRY_QUEUE": queue,
            "CACHE_KEY_PREFIX": f"gantry-b-{queue}",
        }
        self.worker = WorkerProcess(self.env, queue)

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=TIMEOUT,
        )

    def last_json(self, proc: subprocess.CompletedProcess) -> dict:
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def installation_b(worker_env, tmp_path):
    """Installation B's database is created here (PostgreSQL beside the test database, or a
    SQLite file) and migrated by its own ``manage.py migrate``; dropped at the end."""
    db = connection.settings_dict
    queue = f"gantry-test-b-{uuid.uuid4().hex[:8]}"
    if db["ENGINE"].endswith("sqlite3"):
        url, drop = f"sqlite:///{tmp_path / 'installation-b.sqlite3'}", None
    else:
        name = f"{db['NAME']}_b_{uuid.uuid4().hex[:6]}"
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"

        def drop() -> None:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    other = Installation2(worker_env["env"], url, queue)
    migrated = other.manage("migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    other.worker.start()
    yield other
    other.worker.stop()
    if drop is not None:
        drop()


def test_two_installations_share_an_account_without_touching_each_other(
    worker, installation_b, team, owner, moto_endpoint, tmp_path
):
    """Installation A (this test's database) and B (its own) deploy a design of the same name
    into one account: B neither adopts nor collides with A's resources, and destroying B's
    deployment leaves A's whole."""
    a = wait_for(
        services.deployment_start(
            design=design_create(team=team, user=owner, spec_data=DEFAULT_SPEC),
            target=services.target_sandbox_ensure(team=team),
            user=owner,
        ),
        ("succeeded", "failed", "rolled_back"),
    )
    assert a.status == "succeeded", a.reason
    a_resources = sorted(tagged(moto_endpoint, a.identity))
    assert len(a_resources) >= 20

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(DEFAULT_SPEC))  # the same design name, "lambda-private-api"
    b = installation_b.last_json(
        installation_b.manage("deploy", str(spec), "--team", "payments", "--wait", "--json")
    )
    assert b["status"] == "succeeded"
    assert b["identity"] != a.identity
    a_ids = {r.physical_id for r in a.resources.all()}
    assert not a_ids & set(b["resources"].values()), "B adopted A's resources"
    b_installation = (
        installation_b.manage(
            "shell",
            "-c",
            "from deployer.models import Installation; "
            "print(Installation.current().installation_id)",
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert b_installation and b_installation != a.installation
    vpc = aws(moto_endpoint, "ec2").describe_vpcs(VpcIds=[b["resources"]["Vpc"]])["Vpcs"][0]
    assert {"Key": TAG_INSTALLATION, "Value": b_installation} in vpc["Tags"]

    # Each installation's orphans are its own: neither lists the other's live deployment.
    orphans_b = installation_b.last_json(installation_b.manage("orphans", "--json"))
    assert orphans_b["installation"] == b_installation and orphans_b["orphans"] == []

    done = installation_b.last_json(
        installation_b.manage("destroy", str(b["id"]), "--wait", "--json")
    )
    assert done["status"] == "destroyed"
    assert tagged(moto_endpoint, b["identity"]) == []
    assert sorted(tagged(moto_endpoint, a.identity)) == a_resources  # A is whole

    services.deployment_destroy(deployment=a, user=owner)
    assert wait_for(a, ("destroyed", "destroy_failed")).status == "destroyed"


def test_an_orphan_left_by_a_deleted_row_is_listed_and_removed(
    worker, worker_env, team, owner, moto_endpoint, client, make_user
):
    deployment = wait_for(
        services.deployment_start(
            design=design_create(team=team, user=owner, spec_data=DEFAULT_SPEC),
            target=services.target_sandbox_ensure(team=team),
            user=owner,
        ),
        ("succeeded", "failed", "rolled_back"),
    )
    assert deployment.status == "succeeded", deployment.reason
    left = set(tagged(moto_endpoint, deployment.identity))

    def orphans(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "orphans", *args],
            capture_output=True,
            text=True,
            env=worker_env["env"],
            cwd=ROOT,
            timeout=TIMEOUT,
        )

    listed = json.loads(orphans("--json").stdout.strip().splitlines()[-1])
    assert listed["orphans"] == []  # a live deployment owns everything it made

    # The row is lost (a database restored from an older backup, a row deleted by hand).
    Deployment.objects.filter(pk=deployment.pk).delete()
    proc = orphans("--json", "--target", "sandbox")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout.strip().splitlines()[-1])
    ids = {o["id"] for o in listed["orphans"]}
    assert ids == left
    one = listed["orphans"][0]
    assert one["deployment"] == deployment.identity and one["logical_id"] and one["type"]
    assert "no deployment of this installation" in one["reason"]

    staff = make_user("staff-viewer", staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    page = client.get("/admin/deployer/installation/1/change/")
    assert page.status_code == 200
    assert listed["orphans"][0]["id"].encode() in page.content

    proc = orphans("--delete")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "deleted" in proc.stdout
    assert tagged(moto_endpoint, deployment.identity) == []
    listed = json.loads(orphans("--json").stdout.strip().splitlines()[-1])
    assert listed["orphans"] == []


def test_deletion_order_comes_from_the_plan_and_has_no_cycle():
    from deployer.orphans import deletion_order

    order = deletion_order()
    for type_name, outlive in order.items():
        assert type_name not in outlive
    assert "AWS::EC2::EIP" in order["AWS::EC2::NatGateway"]  # the address outlives its NAT
    assert "AWS::EC2::Subnet" in order["AWS::Lambda::Function"]
    assert "AWS::EC2::VPC" in order["AWS::EC2::Subnet"]
