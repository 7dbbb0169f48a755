"""The embedded default (SQLite) under concurrent deployments, and a database that goes away
mid-deployment.

Everything runs as it does for a user: ``manage.py migrate`` and ``manage.py deploy --wait``
as processes, a real Celery worker of concurrency 2, moto behind the sandbox. No beat runs, so
no reaper rescues anything: a pass that meets a database error must be retried by its task.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from designer.spec import DEFAULT_SPEC
from tests.conftest import WorkerProcess, _free_port
from tests.support import ThrowawayPostgres, ec2_logical_ids, tagged

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300


def _installation_env(worker_env, database_url: str) -> dict[str, str]:
    queue = f"gantry-test-db-{uuid.uuid4().hex[:8]}"
    return {
        **worker_env["env"],
        "DATABASE_URL": database_url,
        "GANTRY_QUEUE": queue,
        "CACHE_KEY_PREFIX": f"gantry-{queue}",
    }


def _manage(env: dict[str, str], *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def _spec(tmp_path: Path, i: int) -> Path:
    path = tmp_path / f"spec-{i}.json"
    path.write_text(json.dumps({**DEFAULT_SPEC, "name": f"load-{i}"}))
    return path


def test_eight_deployments_at_once_on_sqlite_with_one_worker_and_no_beat(
    worker_env, tmp_path, moto_endpoint
):
    env = _installation_env(worker_env, f"sqlite:///{tmp_path / 'gantry.sqlite3'}")
    code, _, err = _finish(_manage(env, "migrate", "-v0"))
    assert code == 0, err
    worker = WorkerProcess(env, env["GANTRY_QUEUE"], concurrency=2, beat=False)
    worker.start()
    try:
        deploys = [
            _manage(env, "deploy", str(_spec(tmp_path, i)), "--team", "load", "--wait", "--json")
            for i in range(8)
        ]
        results = [_finish(proc) for proc in deploys]
    finally:
        worker.stop()
    for code, out, err in results:
        assert code == 0, err + out
        assert "database is locked" not in err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["status"] == "succeeded", summary["reason"]
        assert all(n == 1 for n in ec2_logical_ids(moto_endpoint, summary["identity"]).values())
    log = Path(f"/tmp/gantry-test-worker-{env['GANTRY_QUEUE']}.log").read_text()
    assert "database is locked" not in log


@pytest.fixture
def throwaway_postgres():
    # Not under pytest's own temporary folder: it is private to root, and the server runs as
    # the postgres user.
    try:
        cluster = ThrowawayPostgres(Path(tempfile.mkdtemp(prefix="gantry-pg-")), _free_port())
    except RuntimeError as exc:
        pytest.fail(str(exc))
    cluster.init()
    cluster.start()
    yield cluster
    cluster.destroy()


def test_a_postgresql_restarted_mid_deployment_still_succeeds_with_no_duplicate(
    worker_env, throwaway_postgres, tmp_path, moto_endpoint
):
    env = _installation_env(worker_env, throwaway_postgres.create_database("gantry"))
    code, _, err = _finish(_manage(env, "migrate", "-v0"))
    assert code == 0, err
    worker = WorkerProcess(env, env["GANTRY_QUEUE"], concurrency=2, beat=False)
    worker.start()
    try:
        deploy = _manage(env, "deploy", str(_spec(tmp_path, 0)), "--wait", "--json")
        # Wait until AWS has started building (a VPC carries a gantry tag), then take the
        # database away for a few seconds, as a restart or a failover does.
        deadline = time.monotonic() + TIMEOUT
        while not _any_tagged_vpc(moto_endpoint):
            assert deploy.poll() is None, deploy.communicate()
            assert time.monotonic() < deadline, "the deployment never started"
            time.sleep(0.2)
        throwaway_postgres.stop()
        time.sleep(3)
        throwaway_postgres.start()
        code, out, err = _finish(deploy)
    finally:
        worker.stop()
    assert code == 0, err + out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "succeeded", summary["reason"]
    counts = ec2_logical_ids(moto_endpoint, summary["identity"])
    assert counts and all(n == 1 for n in counts.values()), counts
    assert len(tagged(moto_endpoint, summary["identity"])) >= 20
    log = Path(f"/tmp/gantry-test-worker-{env['GANTRY_QUEUE']}.log").read_text()
    assert "the database failed the pass" in log  # the outage was met, and retried


def _any_tagged_vpc(moto_endpoint: str) -> bool:
    from tests.support import aws

    vpcs = aws(moto_endpoint, "ec2").describe_vpcs(
        Filters=[{"Name": "tag-key", "Values": ["gantry:deployment"]}]
    )["Vpcs"]
    return bool(vpcs)
