"""The CLI writes the same audit trail as the pages: real `manage.py deploy` and `destroy`
processes against the test database, each run one request id on the "cli" channel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from audit.models import AuditEntry
from deployer.models import Deployment
from designer.spec import DEFAULT_SPEC
from tests.support import subprocess_database_url

ROOT = Path(__file__).resolve().parent.parent
A = AuditEntry.Action


@pytest.fixture
def manage(transactional_db, redis_url):
    """Run manage.py against the test database. Deployments are queued on a broker queue of
    this test's own, which no worker reads and which is deleted afterwards."""
    database_url = subprocess_database_url()
    broker = redis_url.rsplit("/", 1)[0] + "/14"
    queue = f"gantry-test-audit-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker,
        "GANTRY_QUEUE": queue,
        "GANTRY_SANDBOX_ENDPOINT": "http://127.0.0.1:9",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc

    yield run
    client = redis.Redis.from_url(broker)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def entries(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


def test_cli_deploy_update_and_destroy_are_recorded_with_one_request_id_per_run(manage, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**DEFAULT_SPEC, "name": "cli-audit"}))
    out = json.loads(
        manage("deploy", str(spec), "--team", "automation", "--user", "ci-bot", "--json")
        .stdout.strip()
        .splitlines()[-1]
    )
    first = Deployment.objects.get(pk=out["id"])
    created, requested = entries()
    assert [created.action, requested.action] == [A.DESIGN_CREATED, A.DEPLOYMENT_REQUESTED]
    for entry in (created, requested):
        assert entry.actor.username == entry.actor_name == "ci-bot"
        assert entry.team.name == "automation"
        assert entry.channel == "cli"
        assert entry.ip is None
    assert created.request_id and created.request_id == requested.request_id
    assert requested.object_id == str(first.pk)
    assert requested.data["target"] == "sandbox" and requested.data["design_version"] == 1

    # The first deployment ended (kept, so its stack is live); deploying a changed spec edits the
    # design, then changes that deployment in place to v2 (removing NAT interrupts the Lambda's
    # internet access: it takes --allow-interruption).
    Deployment.objects.filter(pk=first.pk).update(status=Deployment.Status.FAILED)
    spec.write_text(
        json.dumps({**DEFAULT_SPEC, "name": "cli-audit", "nat": "none", "public_subnet_cidrs": []})
    )
    out = json.loads(
        manage(
            "deploy",
            str(spec),
            "--team",
            "automation",
            "--user",
            "ci-bot",
            "--allow-interruption",
            "--json",
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert out["id"] == first.pk and out["run"] == 2
    (updated,) = entries(action=A.DESIGN_UPDATED)
    (update_requested,) = entries(action=A.DEPLOYMENT_UPDATE_REQUESTED)
    assert updated.channel == update_requested.channel == "cli"
    assert updated.request_id == update_requested.request_id != created.request_id
    assert updated.data["before"]["nat"] == "single" and updated.data["after"]["nat"] == "none"
    assert updated.data["version"] == 2
    assert update_requested.data["version_before"] == 1
    assert update_requested.data["version_after"] == 2
    assert update_requested.data["allow_interruption"] is True

    Deployment.objects.filter(pk=out["id"]).update(status=Deployment.Status.SUCCEEDED)
    manage("destroy", str(out["id"]), "--user", "ci-bot", "--json")
    (destroyed,) = entries(action=A.DEPLOYMENT_DESTROYED)
    assert destroyed.object_id == str(out["id"])
    assert destroyed.actor.username == "ci-bot" and destroyed.team.name == "automation"
    assert destroyed.channel == "cli"
    assert destroyed.request_id not in (created.request_id, updated.request_id)
    assert destroyed.data["previous_status"] == "succeeded"
