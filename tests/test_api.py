"""The REST API as automation uses it: tokens, designs, deployments, targets, errors.

No worker runs here: a deployment started through the API stays queued (its first task waits
in Redis), which is what these tests need. End-to-end deployments are in test_deployer_e2e.
"""

from __future__ import annotations

import copy
import json

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import Client, override_settings
from rest_framework.settings import api_settings

from api.models import ApiToken
from audit.models import AuditEntry
from deployer import events
from deployer.models import Deployment, Target
from designer.models import Design
from designer.spec import DEFAULT_SPEC
from tests.support import finish_as_worker

pytestmark = pytest.mark.django_db


def spec(name: str = "orders-api", **changes) -> dict:
    data = copy.deepcopy(DEFAULT_SPEC)
    data["name"] = name
    data.update(changes)
    return data


class Api:
    """A client speaking JSON with a token, as a pipeline would."""

    def __init__(self, key: str | None = None):
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}

    def _send(self, method: str, path: str, body=None, **headers):
        kwargs = {**self.headers, **headers}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method)(path, **kwargs)

    def get(self, path, **h):
        return self._send("get", path, **h)

    def post(self, path, body=None, **h):
        return self._send("post", path, body if body is not None else {}, **h)

    def put(self, path, body, **h):
        return self._send("put", path, body, **h)

    def delete(self, path, **h):
        return self._send("delete", path, **h)


def read_stream(response) -> str:
    """The whole body of a (finite) Server-Sent Events answer; its iterator is async."""

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)().decode()


def token_for(user, name: str = "ci") -> str:
    from api.services import token_create

    return token_create(user=user, name=name)[1]


@pytest.fixture
def api(member):
    return Api(token_for(member))


@pytest.fixture
def design(api, team) -> dict:
    response = api.post("/api/designs/", {"team": team.pk, "spec": spec()})
    assert response.status_code == 201, response.content
    return response.json()


# --- tokens ----------------------------------------------------------------------------------


def test_a_token_made_in_the_api_works_until_revoked_and_only_its_digest_is_stored(
    member_client, member
):
    response = member_client.post(
        "/api/tokens/", data={"name": "deploy pipeline"}, content_type="application/json"
    )
    assert response.status_code == 201
    key = response.json()["key"]
    assert key.startswith("gty_") and len(key) > 30
    stored = ApiToken.objects.get(user=member)
    assert key not in {stored.digest, stored.hint} and stored.hint == key[:8]
    # The key is never shown again.
    assert "key" not in member_client.get("/api/tokens/").json()["results"][0]

    api = Api(key)
    assert api.get("/api/designs/").status_code == 200
    assert api.delete(f"/api/tokens/{stored.pk}/").status_code == 204
    refused = api.get("/api/designs/")
    assert refused.status_code == 401
    assert refused.json() == {"message": "Invalid or revoked token."}
    assert refused["WWW-Authenticate"] == "Token"
    actions = list(AuditEntry.objects.filter(actor=member).values_list("action", flat=True))
    assert {"token.created", "token.revoked"} <= set(actions)


def test_drf_create_token_prints_a_working_token(member, capsys):
    call_command("drf_create_token", member.username)
    out = capsys.readouterr().out
    key = out.split()[2]
    assert out.startswith("Generated token ") and member.username in out
    assert Api(key).get("/api/teams/").status_code == 200


def test_drf_create_token_for_an_unknown_user_is_a_clear_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nobody does not exist"):
        call_command("drf_create_token", "nobody")


def test_the_tokens_page_makes_and_revokes_a_token(member_client, member):
    page = member_client.post("/account/tokens/", {"name": "laptop"}, follow=True)
    assert page.status_code == 200
    token = ApiToken.objects.get(user=member)
    shown = page.content.decode()
    assert "gty_" in shown and token.name in shown
    member_client.post(f"/account/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


# --- designs ---------------------------------------------------------------------------------


def test_designs_create_read_update_and_keep_versions(api, design, team):
    assert design["version"] == 1 and design["team"] == team.pk
    path = design["links"]["self"]
    changed = spec(api_port=8443)
    updated = api.put(path, {"spec": changed})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    versions = api.get(path + "versions/").json()["results"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["spec"]["api_port"] == 8443
    listed = api.get("/api/designs/").json()
    assert [d["name"] for d in listed["results"]] == ["orders-api"]


def test_an_invalid_spec_is_a_400_keyed_by_field_and_nothing_is_saved(api, team):
    bad = spec(lambda_subnet_cidrs=["10.0.2.0/24"], vpc_cidr="10.0.0.0/33")
    response = api.post("/api/designs/", {"team": team.pk, "spec": bad})
    assert response.status_code == 400
    body = response.json()
    assert set(body["errors"]) >= {"vpc_cidr"}
    assert all(isinstance(m, str) for msgs in body["errors"].values() for m in msgs)
    assert body["message"]
    assert not Design.objects.exists()


def test_validate_answers_errors_and_warnings_without_saving(api):
    response = api.post("/api/designs/validate/", {"spec": spec(nat="none")})
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True and body["errors"] == {}
    assert "nat" in body["warnings"]
    broken = api.post("/api/designs/validate/", {"spec": spec(api_port=70000)}).json()
    assert broken["valid"] is False and "api_port" in broken["errors"]
    # The schema says a spec is an object: anything else is a malformed request.
    not_json_object = api.post("/api/designs/validate/", {"spec": "nope"})
    assert not_json_object.status_code == 400
    assert "JSON object" in not_json_object.json()["errors"]["spec"][0]
    assert not Design.objects.exists()


def test_plan_and_diagrams(api, design):
    base = design["links"]["self"]
    plan = api.get(base + "plan/").json()
    types = {r["type"] for r in plan["resources"]}
    assert {"AWS::EC2::VPC", "AWS::EC2::NatGateway", "AWS::Lambda::Function"} <= types
    cheap = api.get(base + "plan/?nat_gb_per_month=0").json()["cost"]
    assert cheap["total_monthly_usd"] < plan["cost"]["total_monthly_usd"]
    bad = api.get(base + "plan/?nat_gb_per_month=lots")
    assert bad.status_code == 400 and "nat_gb_per_month" in bad.json()["errors"]
    svg = api.get(base + "diagram.svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    png = api.get(base + "diagram.png")
    assert png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_deleting_a_design_is_refused_while_a_deployment_holds_resources(api, design):
    path = design["links"]["self"]
    deployment = api.post("/api/deployments/", {"design": design["id"]}).json()
    refused = api.delete(path)
    assert refused.status_code == 409
    assert refused.json()["deployment"]["id"] == deployment["id"]
    Deployment.objects.filter(pk=deployment["id"]).update(status="destroyed")
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    # The name is free again and the history still names the design.
    assert api.post("/api/designs/", {"spec": spec()}).status_code == 201
    assert api.get(f"/api/deployments/{deployment['id']}/").json()["design_name"] == "orders-api"


# --- deployments -----------------------------------------------------------------------------


def test_deploy_is_202_with_location_and_idempotency_key_returns_the_same_deployment(api, design):
    first = api.post(
        "/api/deployments/", {"design": design["id"]}, HTTP_IDEMPOTENCY_KEY="release-42"
    )
    assert first.status_code == 202
    body = first.json()
    assert first["Location"] == f"/api/deployments/{body['id']}/"
    assert body["status"] == "queued" and body["target_name"] == "sandbox"
    assert body["progress"]["total"] == len(body["resources"]) > 30
    again = api.post(
        "/api/deployments/", {"design": design["id"]}, HTTP_IDEMPOTENCY_KEY="release-42"
    )
    assert again.status_code == 202 and again.json()["id"] == body["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Deployment.objects.count() == 1


def test_an_idempotency_key_reused_for_another_design_is_refused(api, design, team):
    other = api.post("/api/designs/", {"team": team.pk, "spec": spec("billing")}).json()
    api.post("/api/deployments/", {"design": design["id"]}, HTTP_IDEMPOTENCY_KEY="k-1")
    reused = api.post("/api/deployments/", {"design": other["id"]}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert reused.status_code == 422
    assert "different request" in reused.json()["message"]


def test_a_second_deploy_of_an_active_design_is_409_naming_it(api, design):
    first = api.post("/api/deployments/", {"design": design["id"]}).json()
    second = api.post("/api/deployments/", {"design": design["id"]})
    assert second.status_code == 409
    body = second.json()
    assert body["active_deployment"]["id"] == first["id"]
    assert f"#{first['id']}" in body["message"]


def test_deploying_another_teams_design_or_target_is_a_field_error(
    api, design, outsider, other_team
):
    theirs = Api(token_for(outsider)).post(
        "/api/designs/", {"team": other_team.pk, "spec": spec("search-api")}
    )
    their_target = (
        Target.objects.get(team=other_team)
        if Target.objects.filter(team=other_team).exists()
        else Target.objects.create(team=other_team, name="sandbox")
    )
    refused = api.post("/api/deployments/", {"design": theirs.json()["id"]})
    assert refused.status_code == 400 and "design" in refused.json()["errors"]
    refused = api.post("/api/deployments/", {"design": design["id"], "target": their_target.pk})
    assert refused.status_code == 400 and "target" in refused.json()["errors"]
    assert not Deployment.objects.exists()


def test_cancel_and_destroy_follow_the_deployment_rules(api, design):
    deployment = api.post("/api/deployments/", {"design": design["id"]}).json()
    path = deployment["links"]["self"]
    refused = api.post(path + "destroy/")
    assert refused.status_code == 409 and "cancel it first" in refused.json()["message"]
    cancelled = api.post(path + "cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["cancel_requested"] is True
    Deployment.objects.filter(pk=deployment["id"]).update(status="succeeded")
    destroying = api.post(path + "destroy/")
    assert destroying.status_code == 202 and destroying.json()["status"] == "destroying"


def test_events_page_by_number_and_the_stream_resumes_after_the_last_one(api, design):
    deployment = api.post("/api/deployments/", {"design": design["id"]}).json()
    row = Deployment.objects.get(pk=deployment["id"])
    for i in range(3):
        events.append(row, kind="progress", message=f"step {i}")
    finish_as_worker(row)
    path = deployment["links"]["events"]
    page = api.get(path + "?after=0&limit=2").json()
    assert [e["seq"] for e in page["events"]] == [1, 2] and page["more"] is True
    rest = api.get(path + f"?after={page['last_seq']}").json()
    assert [e["seq"] for e in rest["events"]] == [3, 4, 5] and rest["more"] is False
    assert rest["finished"] is True
    assert api.get(path + "?after=-1").status_code == 400

    stream = api.get(deployment["links"]["stream"], HTTP_LAST_EVENT_ID="3")
    assert stream["Content-Type"] == "text/event-stream"
    text = read_stream(stream)
    ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert ids == [4, 5]


def test_deployment_list_filters_and_paginates(api, design, member, team):
    other = api.post("/api/designs/", {"team": team.pk, "spec": spec("billing")}).json()
    first = api.post("/api/deployments/", {"design": design["id"]}).json()
    api.post("/api/deployments/", {"design": other["id"]})
    Deployment.objects.filter(pk=first["id"]).update(status="succeeded")
    everything = api.get("/api/deployments/").json()
    assert everything["count"] == 2
    assert [d["id"] for d in api.get("/api/deployments/?status=succeeded").json()["results"]] == [
        first["id"]
    ]
    assert api.get(f"/api/deployments/?design={other['id']}").json()["count"] == 1
    assert api.get(f"/api/deployments/?team={team.slug}").json()["count"] == 2
    assert api.get(f"/api/deployments/?requested_by={member.username}").json()["count"] == 2
    assert api.get("/api/deployments/?requested_by=someone-else").json()["count"] == 0
    assert api.get("/api/deployments/?created_after=2999-01-01T00:00:00Z").json()["count"] == 0
    assert api.get("/api/deployments/?page_size=1").json()["next"]
    bad = api.get("/api/deployments/?created_after=yesterday&status=sleeping")
    assert bad.status_code == 400
    assert {"created_after", "status"} <= set(bad.json()["errors"])


@override_settings(
    REST_FRAMEWORK={
        **api_settings.user_settings,
        "DEFAULT_THROTTLE_RATES": {"user": "1000/min", "deploy": "2/min", "destroy": "1/min"},
    }
)
def test_deploys_are_throttled_per_user(api, design, team):
    designs = [design["id"]] + [
        api.post("/api/designs/", {"team": team.pk, "spec": spec(f"billing-{i}")}).json()["id"]
        for i in range(2)
    ]
    statuses = [api.post("/api/deployments/", {"design": d}).status_code for d in designs]
    assert statuses == [202, 202, 429]
    last = api.post("/api/deployments/", {"design": designs[2]})
    assert last.status_code == 429 and int(last["Retry-After"]) > 0
    assert "throttled" in last.json()["message"].lower()


# --- targets and teams -------------------------------------------------------------------------


def test_team_admins_manage_targets_and_no_secret_is_ever_returned(make_user, team, member):
    admin = Api(token_for(make_user("ada", team=team, role="admin")))
    body = {
        "team": team.pk,
        "name": "production",
        "kind": "aws",
        "region": "eu-west-1",
        "role_arn": "arn:aws:iam::123456789012:role/gantry-deployer",
        "external_id": "s3cr3t-external-id",
    }
    refused = Api(token_for(member)).post("/api/targets/", body)
    assert refused.status_code == 403
    created = admin.post("/api/targets/", body)
    assert created.status_code == 201, created.content
    target = created.json()
    assert target["has_external_id"] is True and "external_id" not in target
    for response in (
        admin.get("/api/targets/"),
        admin.get(f"/api/targets/{target['id']}/"),
        admin._send("patch", f"/api/targets/{target['id']}/", {"region": "eu-central-1"}),
    ):
        assert response.status_code == 200
        assert b"s3cr3t-external-id" not in response.content
    assert Target.objects.get(pk=target["id"]).region == "eu-central-1"
    entries = AuditEntry.objects.filter(action__startswith="target.")
    assert b"s3cr3t" not in json.dumps(list(entries.values("data"))).encode()
    assert admin.delete(f"/api/targets/{target['id']}/").status_code == 204


def test_target_input_errors_are_field_level(make_user, team):
    admin = Api(token_for(make_user("ada", team=team, role="admin")))
    response = admin.post(
        "/api/targets/",
        {"team": team.pk, "name": "Bad Name", "kind": "aws", "region": "mars-1"},
    )
    assert response.status_code == 400
    assert {"name", "region", "role_arn"} <= set(response.json()["errors"])


def test_teams_lists_only_the_callers_teams_and_staff_see_all(api, team, other_team, make_user):
    assert [t["slug"] for t in api.get("/api/teams/").json()["results"]] == [team.slug]
    staff = Api(token_for(make_user("root", staff=True)))
    assert {t["slug"] for t in staff.get("/api/teams/").json()["results"]} == {
        team.slug,
        other_team.slug,
    }


# --- errors ----------------------------------------------------------------------------------


def test_every_error_is_json_with_a_message(api, member):
    anonymous = Api().get("/api/designs/")
    assert anonymous.status_code == 401 and anonymous.json()["message"]
    missing = api.get("/api/nothing-here/")
    assert missing.status_code == 404 and missing.json() == {"message": "Not found."}
    malformed = api.client.post(
        "/api/designs/validate/",
        data="{not json",
        content_type="application/json",
        **api.headers,
    )
    assert malformed.status_code == 400 and "JSON" in malformed.json()["message"]
    assert api.get("/api/designs/99999999999999999999/").status_code == 404


@pytest.mark.parametrize(
    "body, fragment",
    [
        # DRF's own parser answered this (60 KB, under the body limit) with a 500.
        pytest.param("[" * 30_000 + "]" * 30_000, "nested too deeply", id="deep"),
        # ... and silently kept the last "nat", validating a spec the caller did not send.
        pytest.param(
            '{"spec": {"nat": "none", "nat": "per_az"}}', "has the key 'nat' twice", id="dup"
        ),
        pytest.param('{"spec": {"api_port": NaN}}', "NaN is not a JSON value", id="nan"),
        pytest.param(b'{"spec": "\xff"}', "not UTF-8", id="bytes"),
    ],
)
def test_a_body_that_is_not_one_unambiguous_json_document_is_a_400(api, body, fragment):
    response = api.client.post(
        "/api/designs/validate/", data=body, content_type="application/json", **api.headers
    )
    assert response.status_code == 400
    assert fragment in response.json()["message"]


@override_settings(GANTRY_API_MAX_BODY=1024)
def test_request_bodies_are_limited(api):
    big = spec(tags={f"k{i}": "v" * 50 for i in range(40)})
    response = api.post("/api/designs/validate/", {"spec": big})
    assert response.status_code == 413
    assert "larger than 1024 bytes" in response.json()["message"]


def test_session_writes_need_the_csrf_token(member):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member)
    response = browser.post(
        "/api/designs/validate/", data={"spec": {}}, content_type="application/json"
    )
    assert response.status_code == 403 and "CSRF" in response.json()["message"]


def test_another_teams_object_is_404_and_the_attempt_is_audited(api, design, outsider):
    response = Api(token_for(outsider)).get(design["links"]["self"])
    assert response.status_code == 404
    assert response.json() == {"message": "Not found."}
    entry = AuditEntry.objects.get(action="auth.denied")
    assert entry.actor == outsider and entry.object_id == str(design["id"])
    assert entry.channel == "api"


def test_the_schema_and_docs_are_served(api):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/designs/",
        "/api/designs/validate/",
        "/api/designs/{id}/plan/",
        "/api/designs/{id}/diagram.svg",
        "/api/deployments/{id}/events/stream",
        "/api/deployments/{id}/destroy/",
        "/api/targets/",
        "/api/teams/",
    ):
        assert path in paths
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
