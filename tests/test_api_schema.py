"""schemathesis 4 against the published schema, with its stateful phase and every check: the
CLI runs against Gantry served by uvicorn as in production (real ASGI, the body limit, the
streams), with a token of an admin of one team while another team's objects exist, at a fixed
seed (tests/schemathesis.toml). Nothing may answer 5xx and no check may fail: status codes,
content types, headers and bodies as documented, schema-valid requests accepted and
schema-violating ones refused, authentication not ignored, deleted objects gone, created ones
reachable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.services import token_create
from deployer import services
from designer.services import design_create
from tests.conftest import ROOT
from tests.support import finish_as_worker
from tests.test_api import spec

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def two_teams(make_user, team, other_team):
    """The caller's team with a design, a finished and a queued deployment; another team with
    its own, whose ids the fuzzer may stumble on (they must answer like missing ones)."""
    owner = make_user("fuzz", team=team, role="admin")
    rival = make_user("rival", team=other_team, role="admin")
    for who, where, name in ((owner, team, "orders-api"), (rival, other_team, "search-api")):
        design = design_create(team=where, user=who, spec_data=spec(name))
        target = services.target_sandbox_ensure(team=where)
        finish_as_worker(services.deployment_start(design=design, target=target, user=who))
        queued = design_create(team=where, user=who, spec_data=spec(f"{name}-2"))
        services.deployment_start(design=queued, target=target, user=who)
    return token_create(user=owner, name="fuzz")[1]


@pytest.fixture
def fuzz_server_env(worker_env):
    """The fuzzer's rate of requests is no one's: raise the per-user limits for its server."""
    worker_env["env"].update(
        GANTRY_API_RATE="1000000/min",
        GANTRY_API_DEPLOY_RATE="1000000/min",
        GANTRY_API_DESTROY_RATE="1000000/min",
        GANTRY_STREAM_RECHECK_SECONDS="1",
        # An active deployment's stream would wait for events as long as the client reads.
        GANTRY_STREAM_MAX_SECONDS="2",
    )
    return worker_env


def test_schemathesis_finds_no_5xx_and_no_failing_check(fuzz_server_env, web_server, two_teams):
    st = Path(sys.executable).with_name("st")
    done = subprocess.run(
        [
            str(st),
            "--config-file",
            str(CONFIG),
            "run",
            f"{web_server}/api/schema/?format=json",
            "--header",
            f"Authorization: Token {two_teams}",
            "--workers",
            "1",
            "--no-color",
        ],
        cwd=ROOT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    report = done.stdout[-20000:] + done.stderr[-4000:]
    assert done.returncode == 0, report
    print(done.stdout[done.stdout.rfind("SUMMARY") :])  # phases, cases, seed (pytest -s)
