"""The function's hold and the AWS calls a deployment makes, end to end: a real Celery worker,
the database, Redis, and moto behind the sandbox (AWS's waits at the tests' time scale).

The Lambda function no longer waits for the NAT gateway, the rules and the routes before it is
created (AWS does not need them, and it made AWS's two longest waits run one after the other).
Instead it is created with no concurrency reserved, so nothing can invoke it, and given its
planned reservation once everything its calls cross is ready: what the test reads from moto.
"""

from __future__ import annotations

import time

import pytest

from deployer import services
from deployer.models import Deployment
from designer.services import design_create
from designer.spec import DEFAULT_SPEC
from tests.support import aws

TIMEOUT = 180
#: The budget of the issue "Deployments at the speed AWS allows": a create and a confirmation,
#: and a little room for what AWS takes time over.
CALLS_PER_RESOURCE = 3


@pytest.fixture
def owner(make_user, team):
    return make_user("owner", team=team)


def start(team, owner, spec=None) -> Deployment:
    design = design_create(team=team, user=owner, spec_data=spec or DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    return services.deployment_start(design=design, target=target, user=owner)


def wait_until(what, check, timeout: float = TIMEOUT):
    """Poll the database (the worker writes it) until ``check()`` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def finished(deployment: Deployment) -> Deployment:
    def done():
        deployment.refresh_from_db()
        return deployment if deployment.status not in Deployment.ACTIVE else None

    return wait_until("the deployment to finish", done)


def held_function(deployment: Deployment):
    record = deployment.resources.get(logical_id="LambdaFunction")
    if record.state == "ready" and "_held" in (record.attributes or {}):
        return record
    return None


def reserved(moto_endpoint: str, name: str):
    # GetFunctionConcurrency: moto leaves a reservation of 0 out of GetFunction's answer.
    answer = aws(moto_endpoint, "lambda").get_function_concurrency(FunctionName=name)
    return answer.get("ReservedConcurrentExecutions")


@pytest.mark.parametrize("kind", ["ec2", "alb"])
def test_the_function_is_held_at_zero_until_its_traffic_path_is_ready(
    worker, team, owner, sandbox, moto_endpoint, kind
):
    # The routes cannot be made for now (AWS answering a transient error every time): the
    # function's path is not ready, so it must stay held however long that lasts.
    sandbox.config(
        refuse=[
            {
                "action": "CreateRoute",
                "code": "IncorrectState",
                "message": "sandbox: the route table is busy",
            }
        ]
    )
    spec = {**DEFAULT_SPEC, "api_kind": kind}
    if kind == "alb":
        spec["api_subnet_cidrs"] = ["10.0.2.0/24", "10.0.3.0/24"]
    deployment = start(team, owner, spec)
    record = wait_until("the function to be created and held", lambda: held_function(deployment))

    # It exists, Active, with no concurrency: nothing can invoke it.
    assert reserved(moto_endpoint, record.physical_id) == 0
    deployment.refresh_from_db()
    assert deployment.status == "deploying"
    routes = deployment.resources.filter(type="AWS::EC2::Route")
    assert routes and all(r.state != "ready" for r in routes)
    assert not record.settled

    sandbox.config(refuse=[])
    deployment = finished(deployment)
    assert deployment.status == "succeeded", deployment.reason
    record.refresh_from_db()
    assert record.state == "ready" and "_held" not in record.attributes
    # Released: the planned reservation, and what is recorded as applied is the plan's.
    assert reserved(moto_endpoint, record.physical_id) == 10
    assert record.applied["ReservedConcurrentExecutions"] == 10

    # The order, as the event log tells it: created early, held, released only after every
    # node of its hold's list was ready, and the deployment succeeded only after the release.
    events = list(deployment.events.order_by("seq"))
    node = record.node["meta"]["hold"]["until"]
    ready_at = {
        e.logical_id: e.seq
        for e in events
        if e.kind == "resource" and e.state == "ready" and e.logical_id in node
    }
    assert set(ready_at) == set(node)
    held = next(e.seq for e in events if e.logical_id == "LambdaFunction" and "held" in e.message)
    released = next(
        e.seq for e in events if e.logical_id == "LambdaFunction" and "released" in e.message
    )
    succeeded = next(e.seq for e in events if e.kind == "status" and e.state == "succeeded")
    assert held < max(ready_at.values()) < released < succeeded
    # Created before the NAT gateway was ready (it no longer waits for it).
    created = next(
        e.seq for e in events if e.logical_id == "LambdaFunction" and "creating" in e.message
    )
    nat_ready = next(e.seq for e in events if e.logical_id == "NatGateway1" and e.state == "ready")
    assert created < nat_ready
    # The Elastic IP is allocated without waiting for the internet gateway's attachment (AWS
    # needs none; only its release waits, on destroy), so the NAT gateway starts sooner.
    eip_created = next(
        e.seq for e in events if e.logical_id == "NatEip1" and "creating" in e.message
    )
    attached = next(
        e.seq for e in events if e.logical_id == "VpcGatewayAttachment" and e.state == "ready"
    )
    assert eip_created < attached


def test_a_deployment_makes_at_most_three_aws_calls_per_resource(
    worker, team, owner, sandbox, moto_endpoint
):
    before = sandbox.stats()["requests"]
    deployment = finished(start(team, owner))
    assert deployment.status == "succeeded", deployment.reason
    calls = sandbox.stats()["requests"] - before
    resources = deployment.resources.count()
    by_action = sandbox.stats()["by_action"]
    top = sorted(by_action.items(), key=lambda kv: -kv[1])
    assert calls <= CALLS_PER_RESOURCE * resources, f"{calls} calls for {resources}: {top}"
    assert (
        reserved(moto_endpoint, deployment.resources.get(logical_id="LambdaFunction").physical_id)
        == 10
    )
