"""Hostile clients, as issue 11 probed Gantry: integers that are not ASCII digits, streams that
would never end or outlive their access, floods of failed authentication, cross-team ids in
request bodies, and requests the schema and the behaviour disagreed on. Through Django's test
clients on the real database and Redis; what needs a real uvicorn is in
test_hardening_server.py."""

from __future__ import annotations

import json
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.urls import reverse

from api.services import token_revoke
from audit.models import AuditEntry
from audit.services import audit_windows_close
from deployer import services
from deployer.models import Deployment, Target
from designer.services import design_create
from teams.models import Membership
from tests.support import finish_as_worker
from tests.test_api import Api, spec, token_for
from tests.test_deployment_pages import add_events

A = AuditEntry.Action


@pytest.fixture
def world(db, team, other_team, make_user, settings):
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"  # never contacted: no worker runs
    member = make_user("alice", team=team, role="admin")
    outsider = make_user("mallory", team=other_team, role="admin")
    design = design_create(team=team, user=member, spec_data=spec("orders-api"))
    theirs = design_create(team=other_team, user=outsider, spec_data=spec("search-api"))
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=member)
    return {
        "member": member,
        "outsider": outsider,
        "design": design,
        "theirs": theirs,
        "their_target": services.target_sandbox_ensure(team=other_team),
        "deployment": deployment,
    }


# --- 1. integers ------------------------------------------------------------------------------

SUPERSCRIPT_TWO, ARABIC_THREE, FULLWIDTH_ONE = "%C2%B2", "%D9%A3", "%EF%BC%91"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, url, data, headers, expected, field",
    [
        ("get", f"/api/deployments/?team={SUPERSCRIPT_TWO}", None, {}, 400, "team"),
        ("get", f"/api/deployments/?design={ARABIC_THREE}", None, {}, 400, "design"),
        ("get", f"/api/deployments/?design={SUPERSCRIPT_TWO}", None, {}, 400, "design"),
        ("get", f"/api/designs/?page={SUPERSCRIPT_TWO}", None, {}, 400, "page"),
        ("get", "/api/designs/?page_size=%201", None, {}, 400, "page_size"),
        ("get", "/api/designs/?page_size=1_0", None, {}, 400, "page_size"),
        ("get", f"/api/designs/{FULLWIDTH_ONE}/", None, {}, 404, None),
        ("get", "/api/deployments/{dep}/events/?after=%C2%B2", None, {}, 400, "after"),
        ("get", "/api/deployments/{dep}/events/stream?after=%C2%B2", None, {}, 400, "after"),
        ("get", "/api/deployments/{dep}/events/stream", None, {"Last-Event-ID": "²"}, 400, None),
        ("get", "/api/deployments/{dep}/events/stream", None, {"Last-Event-ID": "-1"}, 400, None),
        ("get", "/api/deployments/{dep}/events/stream", None, {"Last-Event-ID": ""}, 400, None),
        ("get", "/api/designs/?page=10000000000000000000", None, {}, 400, "page"),
    ],
)
def test_an_integer_is_ascii_digits_or_a_json_4xx_naming_the_field(
    world, method, url, data, headers, expected, field
):
    api = Api(token_for(world["member"]))
    url = url.format(dep=world["deployment"].pk)
    response = api.client.get(url, headers=headers, **api.headers)
    assert response.status_code == expected, response.content
    body = response.json()
    assert body["message"]
    if field:
        assert field in body["errors"], body
        assert "whole number" in " ".join(body["errors"][field]) or body["errors"][field]


@pytest.mark.django_db
def test_the_pages_read_integers_the_same_way(world, client):
    client.force_login(world["member"])
    design = world["design"]
    assert client.get(f"/designs/{design.pk}/?version={SUPERSCRIPT_TWO}").status_code == 404
    assert client.get(f"/designs/{design.pk}/?version=1").status_code == 200
    assert client.get(f"/designs/{FULLWIDTH_ONE}/").status_code == 404
    new = client.post("/designs/new/", {"team": "²", **{"name": "x"}})
    assert new.status_code == 400 and b"choose one of your teams" in new.content
    refused = client.post(f"/deployments/new/{design.pk}/", {"target": "²"}, follow=True)
    assert refused.status_code == 200
    assert b"not one of this design" in refused.content
    assert Deployment.objects.count() == 1
    team_page = client.get(f"/teams/{design.team.slug}/?page={SUPERSCRIPT_TWO}")
    assert team_page.status_code == 200  # the first page, as for any other non-number


# --- 2. streams -------------------------------------------------------------------------------


def _stream_status(url: str, *, key: str | None = None, user=None, headers=None) -> int:
    """The status of a stream request through the ASGI handler, without reading its body."""

    async def run() -> int:
        client = AsyncClient()
        if user is not None:
            await client.aforce_login(user)
        extra = dict(headers or {})
        if key:
            extra["Authorization"] = f"Token {key}"
        response = await client.get(url, headers=extra)
        return response.status_code

    return async_to_sync(run)()


class StreamReader(threading.Thread):
    """Reads a stream to its end in a thread of its own (as a browser would), recording the
    events' numbers; ``done`` is set when the server ended it."""

    def __init__(self, url: str, *, key: str | None = None, user=None):
        super().__init__(daemon=True)
        self.url, self.key, self.user = url, key, user
        self.status: int | None = None
        self.seqs: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        async def read() -> None:
            client = AsyncClient()
            if self.user is not None:
                await client.aforce_login(self.user)
            headers = {"Authorization": f"Token {self.key}"} if self.key else {}
            response = await client.get(self.url, headers=headers)
            self.status = response.status_code
            if self.status == 200:
                async for chunk in response.streaming_content:
                    for line in chunk.decode().splitlines():
                        if line.startswith("id: "):
                            self.seqs.append(int(line[4:]))

        try:
            async_to_sync(read)()
        finally:
            self.done.set()

    def wait_started(self, deadline: float = 10) -> None:
        end = time.monotonic() + deadline
        while self.status is None and not self.done.is_set():
            assert time.monotonic() < end, "the stream did not answer"
            time.sleep(0.02)


@pytest.fixture
def fast_recheck(settings):
    settings.GANTRY_STREAM_RECHECK_SECONDS = 0.3
    return settings


@pytest.mark.django_db(transaction=True)
def test_a_finished_deployments_stream_with_nothing_left_answers_204_at_once(world):
    deployment = world["deployment"]
    add_events(deployment, 2)
    finish_as_worker(Deployment.objects.get(pk=deployment.pk))
    deployment.refresh_from_db()
    last = deployment.last_event_seq
    key = token_for(world["member"])
    api_url = f"/api/deployments/{deployment.pk}/events/stream"
    page_url = reverse("deployer:deployment_stream", args=[deployment.pk])
    assert _stream_status(f"{api_url}?after={last}", key=key) == 204
    assert _stream_status(api_url, key=key, headers={"Last-Event-ID": str(last)}) == 204
    assert _stream_status(f"{page_url}?after={last}", user=world["member"]) == 204
    # Past the last event: nothing follows either.
    assert _stream_status(f"{api_url}?after={last + 5}", key=key) == 204
    # The whole stream, from the start, still ends after its terminal event.
    reader = StreamReader(f"{api_url}?after=0", key=key)
    reader.start()
    assert reader.done.wait(10)
    assert reader.seqs == list(range(1, last + 1))


@pytest.mark.django_db(transaction=True)
def test_open_streams_per_user_are_capped_and_a_dead_servers_slots_free_themselves(
    world, fast_recheck
):
    """The cap counts leases in Redis: streams whose server never released them (here: answers
    nobody reads, as a crashed process leaves them) stop counting once their leases run out."""
    fast_recheck.GANTRY_STREAMS_PER_USER = 2
    url = f"/api/deployments/{world['deployment'].pk}/events/stream"
    key = token_for(world["member"])
    assert [_stream_status(url, key=key) for _ in range(2)] == [200, 200]
    api = Api(key)
    refused = api.client.get(url, **api.headers)
    assert refused.status_code == 429
    assert "2 live event streams" in refused.json()["message"] and int(refused["Retry-After"]) > 0
    other = Api(token_for(world["outsider"]))  # another user has slots of their own...
    assert other.client.get(url, **other.headers).status_code == 404  # ...and no access
    deadline = time.monotonic() + 15
    while _stream_status(url, key=key) == 429:
        assert time.monotonic() < deadline, "the dead streams' slots were never freed"
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_a_stream_ends_within_seconds_when_its_token_is_revoked(world, fast_recheck):
    from api.models import ApiToken

    key = token_for(world["member"], name="ci")
    url = f"/api/deployments/{world['deployment'].pk}/events/stream"
    reader = StreamReader(url, key=key)
    reader.start()
    reader.wait_started()
    assert reader.status == 200
    assert not reader.done.wait(1)  # an active deployment's stream stays open...
    token_revoke(token=ApiToken.objects.get(name="ci"), user=world["member"])
    assert reader.done.wait(10), "the stream outlived its revoked token"
    assert _stream_status(url, key=key) == 401  # and the reconnect is refused


@pytest.mark.django_db(transaction=True)
def test_a_stream_ends_when_its_user_leaves_the_team_or_is_deactivated(world, fast_recheck):
    member = world["member"]
    url = reverse("deployer:deployment_stream", args=[world["deployment"].pk])
    reader = StreamReader(url, user=member)
    reader.start()
    reader.wait_started()
    assert reader.status == 200
    add_events(world["deployment"], 1)
    Membership.objects.filter(user=member).delete()
    assert reader.done.wait(10), "the stream outlived its user's membership"
    assert reader.seqs[-1] == 2
    assert _stream_status(url, user=member) == 404


# --- 3. failed authentication -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_flood_of_made_up_tokens_is_throttled_and_audited_once_per_window(world, settings):
    statuses = [Api(f"gty_made-up-{i:04d}").get("/api/designs/").status_code for i in range(200)]
    limit = settings.GANTRY_AUTH_FAILURES_PER_ADDRESS
    assert statuses == [401] * limit + [429] * (200 - limit)
    throttled = Api("gty_made-up-9999").get("/api/designs/")
    assert 0 < int(throttled["Retry-After"]) <= settings.GANTRY_AUTH_FAILURE_WINDOW
    assert "from your address" in throttled.json()["message"]
    failed = AuditEntry.objects.filter(action=A.AUTH_FAILED)
    assert failed.count() == 1  # the window's first failure; the rest are counted
    assert audit_windows_close(now=time.time() + settings.GANTRY_AUTH_FAILURE_WINDOW + 1) == 1
    assert failed.count() == 2
    summary = failed.filter(data__summary=True).get()
    assert summary.data["count"] == 201 and summary.data["throttled"] == 201 - limit
    assert summary.ip == "127.0.0.1" and summary.team is None
    assert audit_windows_close(now=time.time() + 10_000) == 0  # written once


@pytest.mark.django_db
def test_a_token_that_worked_still_works_from_a_throttled_address(world, settings):
    good = Api(token_for(world["member"]))
    assert good.get("/api/designs/").status_code == 200
    fresh = Api(token_for(world["outsider"]))  # valid, but never seen working from here
    for i in range(settings.GANTRY_AUTH_FAILURES_PER_ADDRESS):
        Api(f"gty_bad-{i}").get("/api/teams/")
    assert good.get("/api/designs/").status_code == 200
    assert fresh.get("/api/designs/").status_code == 429
    # Another address is not throttled for this one's failures.
    other = fresh.client.get("/api/designs/", REMOTE_ADDR="192.0.2.7", **fresh.headers)
    assert other.status_code == 200


@pytest.mark.django_db
def test_wrong_passwords_lock_the_username_and_are_audited_once_per_address(
    world, settings, client
):
    url = reverse("login")
    limit = settings.GANTRY_LOGIN_FAILURES_PER_USERNAME
    statuses = [
        client.post(url, {"username": "alice", "password": f"guess-{i}"}).status_code
        for i in range(30)
    ]
    assert statuses == [200] * limit + [429] * (30 - limit)
    # Locked from every address, the right password included.
    locked = Client().post(
        url, {"username": "alice", "password": "pw-alice"}, REMOTE_ADDR="198.51.100.9"
    )
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert b"Too many failed logins for this username" in locked.content
    assert "_auth_user_id" not in locked.wsgi_request.session
    # Another username still logs in.
    fine = Client().post(url, {"username": "mallory", "password": "pw-mallory"})
    assert fine.status_code == 302
    entries = AuditEntry.objects.filter(action=A.LOGIN_FAILED)
    assert entries.count() == 2  # one window per address, nothing per attempt
    audit_windows_close(now=time.time() + settings.GANTRY_AUTH_FAILURE_WINDOW + 1)
    summary = entries.get(data__summary=True)
    assert summary.data["count"] == 30 and summary.data["usernames"] == ["alice"]


# --- 4. cross-team ids in request bodies ---------------------------------------------------------


@pytest.mark.django_db
def test_another_teams_ids_in_a_body_are_refused_and_audited_on_its_page(world, other_team):
    member, theirs = world["member"], world["theirs"]
    api = Api(token_for(member))
    for path, body, field in [
        ("/api/deployments/", {"design": theirs.pk}, "design"),
        (
            "/api/deployments/",
            {"design": world["design"].pk, "target": world["their_target"].pk},
            "target",
        ),
        ("/api/designs/", {"team": other_team.pk, "spec": spec("sneaky")}, "team"),
        ("/api/targets/", {"team": other_team.pk, "name": "sneaky"}, "team"),
    ]:
        response = api.post(path, body)
        assert response.status_code == 400 and field in response.json()["errors"], path
        entry = AuditEntry.objects.filter(action=A.ACCESS_DENIED).first()
        assert entry.team == other_team and entry.actor == member
        assert entry.data == {"path": path, "field": field}
        assert entry.request_id == response["X-Request-ID"]
    # A missing id is no attempt on anyone: nothing recorded.
    before = AuditEntry.objects.count()
    assert api.post("/api/deployments/", {"design": theirs.pk + 1000}).status_code == 400
    assert AuditEntry.objects.count() == before
    assert not Target.objects.filter(name="sneaky").exists()


@pytest.mark.django_db
def test_token_probes_are_audited_on_the_owners_teams(world, team):
    from api.models import ApiToken

    member, outsider = world["member"], world["outsider"]
    key = token_for(member, name="pipeline")
    token = ApiToken.objects.get(name="pipeline")
    probe = Api(token_for(outsider)).get(f"/api/tokens/{token.pk}/")
    assert probe.status_code == 404
    denied = AuditEntry.objects.get(action=A.ACCESS_DENIED)
    assert denied.team == team and denied.actor == outsider and denied.object_id == str(token.pk)
    token_revoke(token=token, user=member)
    assert Api(key).get("/api/designs/").status_code == 401
    tried = AuditEntry.objects.get(action=A.AUTH_FAILED)
    assert tried.team == team and tried.object_id == str(token.pk)
    assert tried.data["reason"] == "revoked token" and tried.data["owner"] == "alice"
    page = Client()
    page.force_login(member)
    assert b"Authentication failed" in page.get(f"/teams/{team.slug}/").content


# --- 6. bodies over the limit (WSGI; the ASGI layer is in test_hardening_server) ---------------


@pytest.mark.django_db
def test_a_page_body_over_the_limit_is_a_413_page(world, client, settings):
    client.force_login(world["member"])
    big = {"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
    response = client.post("/designs/new/", big)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"Request too large" in response.content


# --- 8. the schema and the behaviour agree --------------------------------------------------------


@pytest.mark.django_db
def test_what_the_schema_allows_is_accepted_and_what_it_refuses_is_refused(world):
    api = Api(token_for(world["member"]))
    design = world["design"]
    schema = api.get("/api/schema/?format=json").json()
    # PATCH without spec: valid by the schema, and nothing changes.
    patched = api._send("patch", f"/api/designs/{design.pk}/", {})
    assert patched.status_code == 200 and patched.json()["version"] == 1
    # Not in the schema, and refused: a spec that is not an object, a token name that is not
    # a string, a boolean given as text, an id given as text.
    assert api.post("/api/designs/validate/", {"spec": None}).status_code == 400
    assert api.post("/api/tokens/", {"name": 0}).status_code == 400
    keep = api.post("/api/deployments/", {"design": design.pk, "keep_on_failure": "yes"})
    assert keep.status_code == 400 and "keep_on_failure" in keep.json()["errors"]
    as_text = api.post("/api/deployments/", {"design": str(design.pk)})
    assert as_text.status_code == 400 and "design" in as_text.json()["errors"]
    # Negative cost assumptions are refused, and the schema says so.
    plan = schema["paths"]["/api/designs/{id}/plan/"]["get"]["parameters"]
    assert {p["name"]: p["schema"].get("minimum") for p in plan if p["in"] == "query"}[
        "nat_gb_per_month"
    ] == 0
    assert api.get(f"/api/designs/{design.pk}/plan/?nat_gb_per_month=-1").status_code == 400
    # An empty ?team= breaks the schema's pattern, and is refused.
    team = {p["name"]: p for p in schema["paths"]["/api/deployments/"]["get"]["parameters"]}
    assert team["team"]["schema"]["pattern"] and team["team"]["schema"]["minLength"] == 1
    assert api.get("/api/deployments/?team=").status_code == 400
    # Every operation describes itself, never with an internal class's docstring.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            text = json.dumps(operation.get("description", "")) + operation.get("summary", "")
            assert "get_object" not in text and "Mixin" not in text, (method, path)
    # The token limit is a conflict with what exists (409), not malformed input.
    for i in range(19):
        token_for(world["member"], name=f"t{i}")
    full = api.post("/api/tokens/", {"name": "one too many"})
    assert full.status_code == 409 and "active tokens" in full.json()["message"]


@pytest.mark.django_db
def test_without_redis_failed_authentication_is_still_a_401_and_audited(world, settings):
    """The guard's counters live in Redis; with Redis unreachable the guard steps aside (it
    logs why) instead of turning every bad token into a 500, and each failure is an entry."""
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    statuses = [Api(f"gty_nothing-{i}").get("/api/designs/").status_code for i in range(3)]
    assert statuses == [401, 401, 401]
    assert AuditEntry.objects.filter(action=A.AUTH_FAILED).count() == 3
    assert Api(token_for(world["member"])).get("/api/designs/").status_code == 200
