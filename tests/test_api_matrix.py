"""Team isolation, endpoint by endpoint: every API endpoint x (a member of the owning team, a
member of another team, anonymous, staff) answers the expected status. Another team's object
is a 404 exactly like a missing one, never a 403 that confirms it exists."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import pytest
from django.test import Client

from api.services import token_create
from deployer import services
from deployer.models import Deployment, Target
from designer.services import design_create
from designer.spec import DEFAULT_SPEC
from tests.support import finish_as_worker

pytestmark = pytest.mark.django_db

OWNER, OUTSIDER, ANONYMOUS, STAFF = "owner", "outsider", "anonymous", "staff"


def spec(name: str) -> dict:
    data = copy.deepcopy(DEFAULT_SPEC)
    data["name"] = name
    return data


@dataclass
class World:
    team: object
    design: object  # has a queued deployment
    spare_design: object  # no deployment: deletable, deployable
    queued: Deployment
    finished: Deployment
    target: Target
    owner_token_id: int
    keys: dict
    change_set: int  # of the finished deployment, not executed


@pytest.fixture
def world(make_user, team, other_team) -> World:
    owner = make_user("olivia", team=team, role="admin")
    outsider = make_user("oscar", team=other_team, role="admin")
    staff = make_user("stella", staff=True)
    design = design_create(team=team, user=owner, spec_data=spec("orders-api"))
    spare = design_create(team=team, user=owner, spec_data=spec("spare-api"))
    done_design = design_create(team=team, user=owner, spec_data=spec("done-api"))
    sandbox = services.target_sandbox_ensure(team=team)
    queued = services.deployment_start(design=design, target=sandbox, user=owner)
    finished = services.deployment_start(design=done_design, target=sandbox, user=owner)
    finish_as_worker(finished)
    target = services.target_create(
        team=team,
        user=owner,
        name="production",
        kind="aws",
        role_arn="arn:aws:iam::123456789012:role/gantry-deployer",
    )
    owner_token, owner_key = token_create(user=owner, name="ci")
    keys = {
        OWNER: owner_key,
        OUTSIDER: token_create(user=outsider, name="ci")[1],
        STAFF: token_create(user=staff, name="ci")[1],
        ANONYMOUS: None,
    }
    change_set = services.change_set_create(design=done_design, target=sandbox, user=owner)
    return World(team, design, spare, queued, finished, target, owner_token.pk, keys, change_set.pk)


def owned(ok: int, staff: int | None = None) -> dict[str, int]:
    return {OWNER: ok, OUTSIDER: 404, ANONYMOUS: 401, STAFF: ok if staff is None else staff}


def listing(ok: int = 200) -> dict[str, int]:
    return {OWNER: ok, OUTSIDER: ok, ANONYMOUS: 401, STAFF: ok}


# (method, path, body, {role: status}); {design} etc. are filled from the world. A body that
# names another team's object is a field error (400), the same as naming none.
CASES: list[tuple[str, str, dict | None, dict[str, int]]] = [
    ("get", "/api/teams/", None, listing()),
    ("get", "/api/teams/{team}/", None, owned(200)),
    ("get", "/api/designs/", None, listing()),
    (
        "post",
        "/api/designs/",
        {"team": "{team}", "spec": spec("brand-new")},
        {**listing(201), OUTSIDER: 400},
    ),
    ("post", "/api/designs/validate/", {"spec": spec("x-api")}, listing()),
    ("get", "/api/designs/{design}/", None, owned(200)),
    ("put", "/api/designs/{design}/", {"spec": spec("orders-api-2")}, owned(200)),
    ("patch", "/api/designs/{design}/", {"spec": spec("orders-api-3")}, owned(200)),
    ("delete", "/api/designs/{spare}/", None, owned(204)),
    ("delete", "/api/designs/{design}/", None, owned(409)),
    ("get", "/api/designs/{design}/plan/", None, owned(200)),
    ("get", "/api/designs/{design}/versions/", None, owned(200)),
    ("get", "/api/designs/{design}/diagram.svg", None, owned(200)),
    ("get", "/api/designs/{design}/diagram.png", None, owned(200)),
    ("get", "/api/deployments/", None, listing()),
    ("post", "/api/deployments/", {"design": "{spare}"}, {**listing(202), OUTSIDER: 400}),
    ("post", "/api/deployments/", {"design": "{design}"}, {**listing(409), OUTSIDER: 400}),
    ("get", "/api/deployments/{queued}/", None, owned(200)),
    ("get", "/api/deployments/{queued}/events/", None, owned(200)),
    ("get", "/api/deployments/{finished}/events/stream", None, owned(200)),
    ("post", "/api/deployments/{queued}/cancel/", None, owned(202)),
    ("post", "/api/deployments/{finished}/destroy/", None, owned(202)),
    ("post", "/api/deployments/{queued}/destroy/", None, owned(409)),
    ("get", "/api/deployments/{finished}/runs/", None, owned(200)),
    ("get", "/api/deployments/{finished}/drift/", None, owned(200)),
    ("post", "/api/deployments/{queued}/drift/", None, owned(409)),
    ("get", "/api/change-sets/", None, listing()),
    ("get", "/api/change-sets/{change_set}/", None, owned(200)),
    ("post", "/api/change-sets/", {"design": "{done}"}, {**listing(201), OUTSIDER: 400}),
    ("post", "/api/change-sets/", {"design": "{spare}"}, {**listing(409), OUTSIDER: 400}),
    # The version deployed already: nothing to change, so no run starts (200, not 202).
    ("post", "/api/change-sets/{change_set}/execute/", {}, owned(200)),
    ("get", "/api/designs/{done}/export/?format=cloudformation", None, owned(200)),
    ("get", "/api/targets/", None, listing()),
    (
        "post",
        "/api/targets/",
        {"team": "{team}", "name": "staging", "kind": "sandbox"},
        {**listing(201), OUTSIDER: 400},
    ),
    ("get", "/api/targets/{target}/", None, owned(200)),
    ("put", "/api/targets/{target}/", {"name": "prod", "region": "eu-west-1"}, owned(200)),
    ("patch", "/api/targets/{target}/", {"region": "eu-west-2"}, owned(200)),
    ("delete", "/api/targets/{target}/", None, owned(204)),
    ("get", "/api/tokens/", None, listing()),
    ("post", "/api/tokens/", {"name": "another"}, listing(201)),
    # Tokens are personal: even staff cannot see or revoke someone else's.
    ("get", "/api/tokens/{token}/", None, owned(200, staff=404)),
    ("delete", "/api/tokens/{token}/", None, owned(204, staff=404)),
    ("get", "/api/schema/", None, {OWNER: 200, OUTSIDER: 200, ANONYMOUS: 200, STAFF: 200}),
]


def _fill(value, ids: dict[str, int]):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _call(world: World, role: str, method: str, path: str, body) -> int:
    client = Client()
    headers = {}
    if world.keys[role]:
        headers["HTTP_AUTHORIZATION"] = f"Token {world.keys[role]}"
    kwargs = dict(headers)
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    response = getattr(client, method)(path, **kwargs)
    if response.streaming:
        response.close()
    elif response.status_code >= 400 and "json" in response.get("Content-Type", ""):
        assert response.json()["message"], response.content
    return response.status_code


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), CASES, ids=[f"{c[0].upper()} {c[1]}" for c in CASES]
)
@pytest.mark.parametrize("role", [OWNER, OUTSIDER, ANONYMOUS, STAFF])
def test_endpoint_answers_each_kind_of_caller(world, role, method, path, body, expected):
    ids = {
        "team": world.team.pk,
        "design": world.design.pk,
        "spare": world.spare_design.pk,
        "queued": world.queued.pk,
        "finished": world.finished.pk,
        "target": world.target.pk,
        "token": world.owner_token_id,
        "change_set": world.change_set,
        "done": world.finished.design_id,
    }
    status = _call(world, role, method, path.format(**ids), _fill(body, ids))
    assert status == expected[role], (method, path, role)
    if role == OUTSIDER and expected[role] in (400, 404):
        # Nothing of the first team's changed.
        assert Deployment.objects.filter(team=world.team).count() == 2
        world.design.refresh_from_db()
        assert world.design.version == 1 and world.design.deleted_at is None
