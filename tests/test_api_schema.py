"""An API fuzzer against the published schema: schemathesis generates requests for every
operation from ``/api/schema/`` (valid and invalid data), sends them through the WSGI app with a
real token, and checks that nothing answers 5xx and every answer matches the schema (status
code documented, content type, body shape)."""

from __future__ import annotations

import copy

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.settings import api_settings
from schemathesis import checks

from api.services import token_create
from deployer import services
from designer.services import design_create
from designer.spec import DEFAULT_SPEC
from tests.support import finish_as_worker

pytestmark = pytest.mark.django_db

CHECKS = (
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
)
# The live stream of an active deployment never ends by design (it waits for events); a
# generated request could hold the test forever. Its behaviour is tested in test_api.py.
SKIP = {("GET", "/api/deployments/{id}/events/stream")}


@pytest.fixture
def schema(client):
    """The published schema, bound to the WSGI app. As Django's test client does, the request
    signals must not close the test's database connection (it holds the test transaction)."""
    raw = client.get("/api/schema/?format=json").json()
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.from_dict(raw, app=get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(make_user, team):
    """Objects for the fuzzer to find: ids 1..n exist in the caller's team, others do not."""
    owner = make_user("fuzz", team=team, role="admin")
    spec = copy.deepcopy(DEFAULT_SPEC)
    design = design_create(team=team, user=owner, spec_data=spec)
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=owner)
    finish_as_worker(deployment)
    return token_create(user=owner, name="fuzz")[1]


@override_settings(
    REST_FRAMEWORK={
        **api_settings.user_settings,
        "DEFAULT_THROTTLE_RATES": {
            "user": "100000/min",
            "deploy": "100000/min",
            "destroy": "100000/min",
        },
    }
)
def test_no_operation_answers_5xx_or_breaks_its_schema(schema, seeded):
    headers = {"Authorization": f"Token {seeded}"}
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if (result.ok().method.upper(), result.ok().path) not in SKIP
    ]
    assert len(operations) >= 25
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call_wsgi(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            # A failure that depends on state an earlier example changed is reported by
            # hypothesis as "flaky": show the failure itself.
            inner = getattr(exc, "exceptions", None) or [exc]
            failures.append(f"{operation.method.upper()} {operation.path}: {inner[0]}")
    assert not failures, "\n\n".join(failures)
