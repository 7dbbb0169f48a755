"""The REST API of live stacks: deploying changes a live deployment in place, change sets as
resources (made, shown, executed; 409 once the deployment has moved on), runs, drift.

No worker runs here (test_live_stacks.py runs updates against AWS end to end): a deployment is
made live by recording it as a worker would, and the runs these tests start stay queued.
"""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from deployer.models import ChangeSet, Deployment
from tests.test_api import Api, spec

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(member):
    from api.services import token_create

    _, key = token_create(user=member, name="ci")
    return Api(key)


@pytest.fixture
def outsider_api(outsider):
    from api.services import token_create

    _, key = token_create(user=outsider, name="theirs")
    return Api(key)


def live(api: Api, name: str = "orders-api") -> tuple[int, int]:
    """A design deployed and recorded live, as the worker leaves it: (design id, deployment id)."""
    design = api.post("/api/designs/", {"spec": spec(name)}).json()["id"]
    deployment = api.post("/api/deployments/", {"design": design}).json()["id"]
    dep = Deployment.objects.get(pk=deployment)
    for record in dep.resources.all():
        record.state, record.action, record.settled = "ready", "", True
        record.physical_id = f"id-{record.logical_id.lower()}"
        record.save()
    Deployment.objects.filter(pk=deployment).update(status="succeeded")
    return design, deployment


def test_deploying_a_changed_design_updates_its_live_deployment_in_place(api):
    design, deployment = live(api)
    api.put(f"/api/designs/{design}/", {"spec": spec(api_port=8443)})

    refused = api.post("/api/deployments/", {"design": design})
    assert refused.status_code == 400
    body = refused.json()
    assert "allow_interruption" in body["errors"]
    assert [i["logical_id"] for i in body["interruptions"]] == ["ApiInstance"]
    assert Deployment.objects.get(pk=deployment).status == "succeeded"  # nothing started

    answer = api.post("/api/deployments/", {"design": design, "allow_interruption": True})
    assert answer.status_code == 202
    body = answer.json()
    assert body["id"] == deployment and body["created"] is False and body["run"] == 2
    assert body["status"] == "updating"
    actions = {c["logical_id"]: c["action"] for c in body["changes"]}
    assert actions["ApiFromLambdaIngress"] == "replace"
    assert actions["LambdaFunction"] == "modify"
    ports = next(c for c in body["changes"] if c["logical_id"] == "ApiFromLambdaIngress")
    from_port = next(p for p in ports["properties"] if p["name"] == "FromPort")
    assert (from_port["before"], from_port["after"], from_port["replacement"]) == (443, 8443, True)

    runs = api.get(f"/api/deployments/{deployment}/runs/").json()["results"]
    assert [(r["number"], r["operation"]) for r in runs] == [(2, "update"), (1, "create")]
    assert runs[0]["version_before"] == 1 and runs[0]["version_after"] == 2
    assert runs[0]["change_set"]["changes"]
    busy = api.post("/api/deployments/", {"design": design, "allow_interruption": True})
    assert busy.status_code == 409  # a run is in progress


def test_nothing_to_change_is_a_200_with_no_run(api):
    design, deployment = live(api)
    answer = api.post("/api/deployments/", {"design": design})
    assert answer.status_code == 200
    assert answer.json()["run"] is None and answer.json()["changes"] == []
    assert Deployment.objects.get(pk=deployment).runs.count() == 1


def test_a_change_set_is_made_shown_executed_and_refused_once_stale(api):
    design, deployment = live(api)
    api.put(f"/api/designs/{design}/", {"spec": spec(tags={"team": "payments"})})
    made = api.post("/api/change-sets/", {"design": design})
    assert made.status_code == 201, made.json()
    cs = made.json()
    assert cs["deployment"] == deployment and cs["design_version"] == 2
    assert cs["status"] == "open"
    assert {c["action"] for c in cs["changes"]} == {"modify"}
    assert made["Location"] == f"/api/change-sets/{cs['id']}/"
    assert api.get(f"/api/change-sets/{cs['id']}/").json()["changes"] == cs["changes"]

    # A second one made now, then the deployment moves on (the first is executed).
    other = api.post("/api/change-sets/", {"design": design}).json()
    executed = api.post(f"/api/change-sets/{cs['id']}/execute/")
    assert executed.status_code == 202 and executed.json()["run"] == 2
    assert api.get(f"/api/change-sets/{cs['id']}/").json()["status"] == "executed"
    again = api.post(f"/api/change-sets/{cs['id']}/execute/")
    assert again.status_code == 409
    Deployment.objects.filter(pk=deployment).update(status="succeeded")
    stale = api.post(f"/api/change-sets/{other['id']}/execute/")
    assert stale.status_code == 409
    assert "changed since the change set was made" in stale.json()["message"]
    assert api.get(f"/api/change-sets/{other['id']}/").json()["status"] == "stale"


def test_a_change_set_that_would_lose_the_credential_is_refused(api):
    design, _ = live(api)
    api.put(f"/api/designs/{design}/", {"spec": spec(region="eu-west-1")})
    cs = api.post("/api/change-sets/", {"design": design}).json()
    assert cs["status"] == "refused" and cs["refused"]
    answer = api.post(f"/api/change-sets/{cs['id']}/execute/", {"allow_interruption": True})
    assert answer.status_code == 422
    assert answer.json()["refused"]


def test_a_design_with_no_live_deployment_gets_no_change_set(api):
    design = api.post("/api/designs/", {"spec": spec("never-deployed")}).json()["id"]
    answer = api.post("/api/change-sets/", {"design": design})
    assert answer.status_code == 409
    assert "no live deployment" in answer.json()["message"]


def test_another_teams_deployment_change_sets_and_drift_are_404(api, outsider_api):
    design, deployment = live(api)
    cs = api.post("/api/change-sets/", {"design": design}).json()
    before = AuditEntry.objects.filter(action="auth.denied").count()
    for method, path in [
        ("get", f"/api/change-sets/{cs['id']}/"),
        ("post", f"/api/change-sets/{cs['id']}/execute/"),
        ("get", f"/api/deployments/{deployment}/runs/"),
        ("get", f"/api/deployments/{deployment}/drift/"),
        ("post", f"/api/deployments/{deployment}/drift/"),
    ]:
        answer = getattr(outsider_api, method)(path)
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert outsider_api.get("/api/change-sets/").json()["results"] == []
    made = outsider_api.post("/api/change-sets/", {"design": design})
    assert made.status_code == 400 and "design" in made.json()["errors"]
    assert ChangeSet.objects.count() == 1
    assert AuditEntry.objects.filter(action="auth.denied").count() > before


def test_drift_is_read_from_the_last_check(api):
    _, deployment = live(api)
    dep = Deployment.objects.get(pk=deployment)
    subnet = dep.resources.get(logical_id="ApiSubnet1")
    subnet.drift = "modified"
    subnet.drift_differences = [
        {"property": "MapPublicIpOnLaunch", "expected": False, "actual": True}
    ]
    subnet.save()
    Deployment.objects.filter(pk=deployment).update(drift_status="drifted")
    body = api.get(f"/api/deployments/{deployment}/drift/").json()
    assert body["status"] == "drifted"
    drifted = [r for r in body["resources"] if r["drift"] == "modified"]
    assert [r["logical_id"] for r in drifted] == ["ApiSubnet1"]
    detail = api.get(f"/api/deployments/{deployment}/").json()
    assert detail["drift_status"] == "drifted"
    assert {o["name"] for o in detail["outputs"]} >= {"VpcId", "FunctionName", "SecretArn"}


def test_a_drift_check_that_cannot_read_aws_is_a_503_and_records_nothing(api, settings):
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"  # nothing listens there
    _, deployment = live(api)
    response = api.post(f"/api/deployments/{deployment}/drift/")
    assert response.status_code == 503
    assert "AWS could not be read" in response.json()["message"]
    assert response["Retry-After"] == "30"
    assert api.get(f"/api/deployments/{deployment}/drift/").json()["status"] == ""
