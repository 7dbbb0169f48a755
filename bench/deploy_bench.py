"""Deployment makespan against the critical path, and eight deployments at once.

Starts the AWS emulator (moto server), the sandbox proxy (AWS's real waits scaled by
--time-scale: NAT gateway 90 s, Lambda in a VPC 60 s, ALB 150 s, instance 20 s (also those of an
Auto Scaling group), IAM role usable by Lambda after 10 s) and one Celery worker with
concurrency 2, then:

  1. deploys one design and compares its makespan with the critical path of its graph, computed
     from the same latency profile (the longest chain of waits through depends_on);
  2. starts eight deployments at once on that one worker and compares the time until the last
     one finishes with the time of one.

Prints the figures and whether they meet the budgets (makespan <= 1.25 x critical path;
eight <= 1.5 x one). ``--database postgres`` (the default when PostgreSQL is reachable: a
database gantry_bench) or ``--database sqlite`` (the embedded default, a file of its own).

    .venv/bin/python bench/deploy_bench.py [--time-scale 0.1] [--api-kind ec2|alb]
        [--database postgres|sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Real AWS waits the sandbox simulates, per CloudFormation type (seconds, before scaling).
PROFILE = {
    "AWS::EC2::NatGateway": 90.0,
    "AWS::Lambda::Function": 60.0,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": 150.0,
    "AWS::EC2::Instance": 20.0,
    # The instances the group launches boot like any other.
    "AWS::AutoScaling::AutoScalingGroup": 20.0,
    "AWS::EC2::VPCEndpoint": 60.0,
}
IAM_PROPAGATION = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def critical_path(graph, scale: float) -> tuple[float, list[str]]:
    """Longest chain of simulated waits through the graph (instant resources weigh 0)."""
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for node in graph.topological_order():
        start, prev = 0.0, None
        for dep in node.depends_on:
            t = finish[dep]
            if graph[dep].type == "AWS::IAM::Role" and node.type == "AWS::Lambda::Function":
                t += IAM_PROPAGATION * scale  # the role is not usable by Lambda at once
            if t > start:
                start, prev = t, dep
        finish[node.logical_id] = start + PROFILE.get(node.type, 0.0) * scale
        via[node.logical_id] = prev
    end = max(finish, key=finish.get)
    path, cur = [], end
    while cur:
        path.append(cur)
        cur = via[cur]
    return finish[end], list(reversed(path))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--api-kind", choices=["ec2", "alb"], default="ec2")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default=None)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="gantry-deploy-bench-")
    procs: list[subprocess.Popen] = []
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
        "GANTRY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LOG_LEVEL": "WARNING",
    }
    pg = (
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-qc",
                "DROP DATABASE IF EXISTS gantry_bench",
            ],
            capture_output=True,
        )
        if shutil.which("psql") and args.database != "sqlite"
        else None
    )
    if args.database == "postgres" and (pg is None or pg.returncode != 0):
        print("PostgreSQL is not reachable for --database postgres", file=sys.stderr)
        return 2
    if pg is not None and pg.returncode == 0:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "CREATE DATABASE gantry_bench"],
            check=True,
        )
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/gantry_bench"
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    try:
        moto_port, proxy_port = free_port(), free_port()
        bin_dir = Path(sys.executable).parent
        procs.append(
            subprocess.Popen(
                [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                env={**env, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_port(moto_port)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "deployer.sandbox",
                    "--listen",
                    f"127.0.0.1:{proxy_port}",
                    "--upstream",
                    f"http://127.0.0.1:{moto_port}",
                    "--time-scale",
                    str(args.time_scale),
                    "--log-level",
                    "WARNING",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_port(proxy_port)
        env["GANTRY_SANDBOX_ENDPOINT"] = f"http://127.0.0.1:{proxy_port}"
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        procs.append(
            subprocess.Popen(
                [
                    str(bin_dir / "celery"),
                    "-A",
                    "celery_app",
                    "worker",
                    "-Q",
                    env["GANTRY_QUEUE"],
                    "-c",
                    "2",
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from deployer import services
        from deployer.models import Deployment
        from designer.plan import plan
        from designer.services import design_create
        from designer.spec import DEFAULT_SPEC, validate_spec
        from teams.services import membership_ensure, team_ensure

        user = get_user_model().objects.create_user("bench")
        team = team_ensure(name="bench")
        membership_ensure(team=team, user=user)
        target = services.target_sandbox_ensure(team=team)

        def spec(i: int) -> dict:
            s = {**DEFAULT_SPEC, "name": f"bench-{i}", "api_kind": args.api_kind}
            if args.api_kind == "alb":
                s["api_subnet_cidrs"] = ["10.0.2.0/24", "10.0.3.0/24"]
            return s

        def run(designs) -> tuple[float, list[Deployment]]:
            t0 = time.monotonic()
            deps = [services.deployment_start(design=d, target=target, user=user) for d in designs]
            while True:
                states = [Deployment.objects.get(pk=d.pk).status for d in deps]
                if all(s not in Deployment.ACTIVE for s in states):
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - t0
            for d in deps:
                d.refresh_from_db()
                if d.status != "succeeded":
                    raise RuntimeError(f"deployment {d.pk} {d.status}: {d.reason}")
            return elapsed, deps

        # Warm-up, not timed: the emulator builds each service's backend on its first call and
        # the worker's processes start; neither is Gantry's latency.
        run([design_create(team=team, user=user, spec_data=spec(100))])

        graph = plan(validate_spec(spec(0)).spec)
        cp, path = critical_path(graph, args.time_scale)
        one_design = design_create(team=team, user=user, spec_data=spec(0))
        one, (dep,) = run([one_design])
        engine_makespan = (dep.finished_at - dep.started_at).total_seconds()
        database = "sqlite" if env["DATABASE_URL"].startswith("sqlite") else "postgres"
        print(
            f"graph: {len(graph)} resources ({args.api_kind}, nat single), time scale "
            f"{args.time_scale}, database {database}"
        )
        print(f"critical path: {cp:.2f} s  ({' -> '.join(path)})")
        print(
            f"makespan: {engine_makespan:.2f} s started->finished, {one:.2f} s request->succeeded"
        )
        ratio = one / cp
        print(
            f"makespan / critical path: {ratio:.3f}  budget <= 1.25: {'meets' if ratio <= 1.25 else 'MISSES'}"
        )

        calls = requests.get(env["GANTRY_SANDBOX_ENDPOINT"] + "/_sandbox/stats", timeout=5).json()
        designs = [
            design_create(team=team, user=user, spec_data=spec(i))
            for i in range(1, args.parallel + 1)
        ]
        many, _ = run(designs)
        after = requests.get(env["GANTRY_SANDBOX_ENDPOINT"] + "/_sandbox/stats", timeout=5).json()
        seen = after.get("requests", 0) - calls.get("requests", 0)
        print(
            f"AWS calls for {args.parallel} deployments: {seen} ({seen / args.parallel:.0f} each)"
        )
        ratio8 = many / one
        print(
            f"{args.parallel} deployments at once on 1 worker (concurrency 2): {many:.2f} s; one: {one:.2f} s"
        )
        print(
            f"{args.parallel}-at-once / one: {ratio8:.3f}  budget <= 1.5: {'meets' if ratio8 <= 1.5 else 'MISSES'}"
        )
        return 0 if ratio <= 1.25 and ratio8 <= 1.5 else 1
    finally:
        for p in reversed(procs):
            stop(p)


def stop(proc: subprocess.Popen) -> None:
    """Stop a child; the worker runs in its own process group (its pool children too)."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


if __name__ == "__main__":
    sys.exit(main())
