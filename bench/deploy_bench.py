"""Deployments at the speed AWS allows: makespans against the critical paths, AWS calls per
resource, time to the first create, and many deployments at once.

Starts the AWS emulator (moto server), the sandbox proxy in front of it (AWS's real waits scaled
by --time-scale: NAT gateway 90 s, Lambda in a VPC 60 s, ALB 150 s, instance 20 s (also those of
an Auto Scaling group), interface endpoint 60 s, IAM role usable by Lambda and instance profile
usable by EC2 after 10 s; --latency-ms added to every AWS call, a region's round trip) and one
Celery worker of concurrency 2, then for each API kind and database asked for:

  1. one deployment: its makespan against the graph's own critical path (the longest chain of
     waits through every ``depends_on``) and against the *physical* critical path (the longest
     chain of waits AWS itself requires: a subnet needs its VPC, a NAT gateway its subnet and
     address and the internet gateway attached, a function its role usable and its subnets and
     group, an instance its profile usable...), the AWS calls per resource, and the time from
     the request to the first create call;
  2. an update that touches one rule (a rule deleted by hand, put back by deploying the
     unchanged design), and its AWS calls;
  3. the destroy, against its physical critical path (NAT gateways deleting before their
     addresses, a deleted function's network interfaces holding its subnets and group);
  4. 8 and 32 deployments at once on that one worker, against one.

Prints the figures and whether they meet the budgets (makespan <= 1.25 x the physical critical
path; <= 3 AWS calls per resource; first create <= 0.5 s; 8 at once <= 1.3 x one; 32 at once
<= 2 x one).

    .venv/bin/python bench/deploy_bench.py [--time-scale 0.0667] [--latency-ms 50]
        [--api-kind ec2|alb|both] [--database postgres|sqlite|both] [--parallel 8,32]
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

import boto3
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
#: The waits of deletions the sandbox simulates (seconds, before scaling).
DELETE_PROFILE = {
    "AWS::EC2::NatGateway": 60.0,
    "AWS::EC2::Instance": 30.0,
    "AWS::AutoScaling::AutoScalingGroup": 30.0,
    "AWS::EC2::VPCEndpoint": 30.0,
}
#: (dependent type, dependency type) -> seconds before the dependency is usable by it.
PROPAGATION = {
    ("AWS::Lambda::Function", "AWS::IAM::Role"): 10.0,
    ("AWS::EC2::Instance", "AWS::IAM::InstanceProfile"): 10.0,
}
#: Attributes AWS answers when a resource is created, long before it is ready: a dependent that
#: only needs them waits for its creation, not its readiness.
EARLY_ATTRIBUTES = {
    "AWS::EC2::Instance": {"PrivateDnsName", "PrivateIp"},
    "AWS::ElasticLoadBalancingV2::LoadBalancer": {"DNSName"},
}
#: Orderings no reference shows that AWS itself enforces, as (dependent type, dependency type):
#: a route to an internet gateway and a public NAT gateway need the gateway attached.
REQUIRED_ORDER = {
    ("AWS::EC2::Route", "AWS::EC2::VPCGatewayAttachment"),
    ("AWS::EC2::NatGateway", "AWS::EC2::VPCGatewayAttachment"),
}
#: ... and on delete: the gateway detaches only once the VPC's public addresses are released.
REQUIRED_DELETE_ORDER = REQUIRED_ORDER | {("AWS::EC2::EIP", "AWS::EC2::VPCGatewayAttachment")}
#: Types whose deletion a deleted function's network interfaces hold.
ENI_HELD = {"AWS::EC2::Subnet", "AWS::EC2::SecurityGroup"}


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


def processes() -> dict[int, tuple[int, str, float]]:
    """Every process, read once from /proc: pid -> (parent pid, name, CPU seconds used)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, fields = (entry / "stat").read_text().split(" (", 1)[1].rsplit(") ", 1)
        except (OSError, ValueError):
            continue
        fields = fields.split()
        table[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / ticks)
    return table


def cpu_seconds(root: int, table: dict[int, tuple[int, str, float]]) -> float:
    """CPU seconds (user + system) a process and its descendants have used: where the
    machine's two cores went while many deployments ran."""
    tree = {root}
    for pid in sorted(table):
        p = pid
        while p in table and p not in tree and p > 1:
            p = table[p][0]
        if p in tree:
            tree.add(pid)
    return sum(table[pid][2] for pid in tree if pid in table)


def _longest(order, starts, weight) -> tuple[float, list[str]]:
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for node in order:
        start, prev = 0.0, None
        for dep, at in starts(node, finish):
            if at > start:
                start, prev = at, dep
        finish[node.logical_id] = start + weight(node)
        via[node.logical_id] = prev
    end = max(finish, key=finish.get)
    path, cur = [], end
    while cur:
        path.append(cur)
        cur = via[cur]
    return finish[end], list(reversed(path))


def graph_critical_path(graph, scale: float) -> tuple[float, list[str]]:
    """The longest chain of simulated waits through every ``depends_on`` of the graph."""

    def starts(node, finish):
        for dep in node.depends_on:
            extra = PROPAGATION.get((node.type, graph[dep].type), 0.0) * scale
            yield dep, finish[dep] + extra

    return _longest(graph.topological_order(), starts, lambda n: PROFILE.get(n.type, 0.0) * scale)


def physical_critical_path(graph, scale: float) -> tuple[float, list[str]]:
    """The longest chain of waits AWS itself requires: what a resource refers to must exist
    (and be ready, unless the reference is to an attribute AWS answers at creation), the
    orderings AWS enforces, and IAM's propagation; nothing else."""
    from designer.plan import refs_in

    created: dict[str, float] = {}

    def starts(node, finish):
        refs: dict[str, set[str]] = {}
        for ref in refs_in(node.properties):
            refs.setdefault(ref.logical_id, set()).add(ref.attribute)
        for dep, attributes in refs.items():
            kind = graph[dep].type
            if attributes <= EARLY_ATTRIBUTES.get(kind, set()):
                yield dep, created[dep]
            else:
                yield dep, finish[dep] + PROPAGATION.get((node.type, kind), 0.0) * scale
        for dep in node.depends_on:
            if (node.type, graph[dep].type) in REQUIRED_ORDER:
                yield dep, finish[dep]

    def weight(node):
        return PROFILE.get(node.type, 0.0) * scale

    order = graph.topological_order()

    def starts_recording(node, finish):
        found = list(starts(node, finish))
        created[node.logical_id] = max([at for _, at in found], default=0.0)
        yield from found

    return _longest(order, starts_recording, weight)


def destroy_critical_path(graph, scale: float, eni_hold: float) -> tuple[float, list[str]]:
    """The longest chain of waits AWS requires to delete everything: a resource goes once what
    refers to it is gone, a NAT gateway takes its time, and a deleted function's network
    interfaces hold its subnets and groups for ``eni_hold`` seconds (before scaling)."""
    from designer.graph import ResourceGraph, ResourceNode
    from designer.plan import refs_in

    # The deletion order is the creation order reversed: build the reversed graph.
    users: dict[str, list[str]] = {n.logical_id: [] for n in graph}
    for node in graph:
        for dep in {r.logical_id for r in refs_in(node.properties)}:
            users[dep].append(node.logical_id)
        for dep in node.depends_on:
            if (node.type, graph[dep].type) in REQUIRED_DELETE_ORDER:
                users[dep].append(node.logical_id)
    reverse = ResourceGraph()
    for node in graph.reversed():
        reverse.add(
            ResourceNode(node.logical_id, node.type, depends_on=sorted(set(users[node.logical_id])))
        )

    def starts(node, finish):
        for user in node.depends_on:
            held = (
                eni_hold * scale
                if graph[user].type == "AWS::Lambda::Function" and node.type in ENI_HELD
                else 0.0
            )
            yield user, finish[user] + held

    return _longest(
        reverse.topological_order(), starts, lambda n: DELETE_PROFILE.get(n.type, 0.0) * scale
    )


class Bench:
    """One database: the emulator, the sandbox, a worker, and the runs measured on them."""

    def __init__(self, args, database: str, tmp: str):
        self.args, self.database = args, database
        self.procs: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "gantry.settings",
            "GANTRY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "LOG_LEVEL": "WARNING",
            "GANTRY_DRIFT_INTERVAL": "0",
        }
        if database == "postgres":
            name = f"gantry_bench_{uuid.uuid4().hex[:6]}"
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
                check=True,
            )
            self.dropdb = name
            self.env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
        else:
            self.dropdb = None
            self.env["DATABASE_URL"] = f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:6]}.sqlite3"

    def start(self) -> None:
        moto_port, proxy_port = free_port(), free_port()
        bin_dir = Path(sys.executable).parent
        self.procs.append(
            subprocess.Popen(
                [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                env={**self.env, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_port(moto_port)
        self.moto = f"http://127.0.0.1:{moto_port}"
        self.procs.append(
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
                    str(self.args.time_scale),
                    "--latency-ms",
                    str(self.args.latency_ms),
                    "--log-level",
                    "WARNING",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_port(proxy_port)
        self.sandbox = f"http://127.0.0.1:{proxy_port}"
        self.env["GANTRY_SANDBOX_ENDPOINT"] = self.sandbox
        os.environ.update(self.env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True
        )
        self.procs.append(
            subprocess.Popen(
                [
                    str(bin_dir / "celery"),
                    "-A",
                    "celery_app",
                    "worker",
                    "-Q",
                    self.env["GANTRY_QUEUE"],
                    "-c",
                    "2",
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from deployer import services
        from teams.services import membership_ensure, team_ensure

        self.user = get_user_model().objects.create_user(f"bench-{uuid.uuid4().hex[:6]}")
        self.team = team_ensure(name=f"bench-{self.database}")
        membership_ensure(team=self.team, user=self.user)
        self.target = services.target_sandbox_ensure(team=self.team)

    def stop(self) -> None:
        for p in reversed(self.procs):
            stop(p)
        from django.db import connections

        connections.close_all()
        if self.dropdb:
            subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-qc",
                    f"DROP DATABASE IF EXISTS {self.dropdb} WITH (FORCE)",
                ],
                capture_output=True,
            )

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each process the bench started, and by the bench itself
        (its Django requests and its polls)."""
        table = processes()
        names = ["emulator", "sandbox", "worker"]
        used = {n: cpu_seconds(p.pid, table) for n, p in zip(names, self.procs, strict=False)}
        used["bench"] = cpu_seconds(os.getpid(), table) - sum(used.values())
        if self.database == "postgres":
            # The server's processes, all of them: the bench's database is the only busy one.
            used["postgres"] = sum(
                cpu_seconds(pid, table)
                for pid, (parent, name, _) in table.items()
                if name == "postgres" and parent == 1
            )
        return used

    def stats(self) -> dict:
        """The sandbox's counters: ``requests``, ``by_action``, ``upstream_seconds``..."""
        return requests.get(self.sandbox + "/_sandbox/stats", timeout=5).json()

    def calls(self) -> int:
        return self.stats().get("requests", 0)

    def spec(self, kind: str, i: int) -> dict:
        from designer.spec import DEFAULT_SPEC

        spec = {**DEFAULT_SPEC, "name": f"bench-{kind}-{i}", "api_kind": kind}
        if kind == "alb":
            spec["api_subnet_cidrs"] = ["10.0.2.0/24", "10.0.3.0/24"]
        return spec

    def wait(self, deployments, statuses=("succeeded",)) -> None:
        from deployer.models import Deployment

        # One query a poll for all of them: the bench shares the worker's two cores, and a
        # query per deployment every 50 ms took a third of a core at 32 at once.
        ids = [d.pk for d in deployments]
        while Deployment.objects.filter(pk__in=ids, status__in=Deployment.ACTIVE).exists():
            time.sleep(0.05)
        for d in deployments:
            d.refresh_from_db()
            if d.status not in statuses:
                raise RuntimeError(f"deployment {d.pk} {d.status}: {d.reason}")

    def deploy(self, designs) -> tuple[float, list]:
        from deployer import services

        t0 = time.monotonic()
        deps = [
            services.deployment_start(design=d, target=self.target, user=self.user) for d in designs
        ]
        self.wait(deps)
        return time.monotonic() - t0, deps


def first_create_delay(deployment) -> float:
    """Seconds from the request to the first create starting: the earliest ``started_at`` of
    its resources (set when the pass starts their creation). Not the first "creating" event's
    time: events are saved when their pass ends, up to a pass budget later."""
    from django.db.models import Min

    first = deployment.resources.aggregate(first=Min("started_at"))["first"]
    return (first - deployment.created_at).total_seconds() if first else float("nan")


def since(before: dict, after: dict, counter: str) -> dict:
    """What one of the sandbox's per-action counters gained between two snapshots."""
    earlier = before.get(counter, {})
    return {k: v - earlier.get(k, 0) for k, v in after.get(counter, {}).items()}


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def run_kind(bench: Bench, kind: str, args) -> bool:
    from designer.plan import plan
    from designer.services import design_create
    from designer.spec import validate_spec

    scale = args.time_scale
    # Warm-up, not timed: the emulator builds each service's backend on its first call and the
    # worker's processes start; neither is Gantry's latency.
    bench.deploy([design_create(team=bench.team, user=bench.user, spec_data=bench.spec(kind, 900))])

    graph = plan(validate_spec(bench.spec(kind, 0)).spec)
    graph_cp, graph_path = graph_critical_path(graph, scale)
    phys_cp, phys_path = physical_critical_path(graph, scale)
    print(
        f"\n== {kind} on {bench.database}: {len(graph)} resources, time scale {scale:g}, "
        f"{args.latency_ms:g} ms per AWS call"
    )
    print(f"graph critical path:    {graph_cp:6.2f} s  ({' -> '.join(graph_path)})")
    print(f"physical critical path: {phys_cp:6.2f} s  ({' -> '.join(phys_path)})")
    ok = True

    stats0 = bench.stats()
    one, (dep,) = bench.deploy(
        [design_create(team=bench.team, user=bench.user, spec_data=bench.spec(kind, 0))]
    )
    stats = bench.stats()
    calls = stats["requests"] - stats0["requests"]
    actions = since(stats0, stats, "by_action")
    top = sorted(((v, k) for k, v in actions.items() if v), reverse=True)[:6]
    makespan = (dep.finished_at - dep.started_at).total_seconds()
    first = first_create_delay(dep)
    ratio = one / phys_cp
    per = calls / len(graph)
    print(f"makespan: {makespan:.2f} s started->finished, {one:.2f} s request->succeeded")
    print(f"makespan / graph critical path: {one / graph_cp:.3f}")
    print(
        f"makespan / physical critical path: {ratio:.3f}  budget <= 1.25: {verdict(ratio <= 1.25)}"
    )
    print(
        f"AWS calls: {calls} for {len(graph)} resources, {per:.2f} per resource  budget <= 3: {verdict(per <= 3)}"
    )
    if args.timeline:
        for r in dep.resources.order_by("ready_at"):
            start = (r.started_at - dep.created_at).total_seconds() if r.started_at else -1
            ready = (r.ready_at - dep.created_at).total_seconds() if r.ready_at else -1
            print(f"  {r.logical_id:34} started {start:6.2f}  ready {ready:6.2f}")
        for e in dep.events.filter(logical_id="NatGateway1").order_by("seq"):
            print(f"  {(e.at - dep.created_at).total_seconds():6.2f} {e.message[:90]}")
    print("most called: " + ", ".join(f"{k.split(':')[-1]} {v}" for v, k in top))
    print(f"first create {first:.2f} s after the request  budget <= 0.5 s: {verdict(first <= 0.5)}")
    ok &= ratio <= 1.25 and per <= 3 and first <= 0.5

    if not args.quick:
        ok &= update_and_destroy(bench, dep, graph, one, scale)
    return ok & run_parallel(bench, kind, args, one)


def update_and_destroy(bench: Bench, dep, graph, one: float, scale: float) -> bool:
    from deployer import services
    from deployer.models import Deployment

    # An update that touches one rule: deleted by hand, found by a drift check, put back.
    records = {r.logical_id: r for r in dep.resources.all()}
    rule = records["LambdaToApiEgress"].physical_id
    group = records["LambdaSecurityGroup"].physical_id
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=bench.moto)
    ec2.revoke_security_group_egress(GroupId=group, SecurityGroupRuleIds=[rule])
    services.deployment_drift_check(deployment=dep)
    calls0 = bench.calls()
    t0 = time.monotonic()
    started = services.deployment_apply(design=dep.design, target=bench.target, user=bench.user)
    bench.wait([started.deployment])
    repaired = time.monotonic() - t0
    calls = bench.calls() - calls0
    changes = [c.logical_id for c in started.change_set.changes]
    print(
        f"update touching one rule ({', '.join(changes)}): {repaired:.2f} s, {calls} AWS calls"
        f" (one deployment: {one:.2f} s)"
    )

    dep = Deployment.objects.get(pk=dep.pk)
    d_cp, d_path = destroy_critical_path(graph, scale, 1200.0)
    calls0 = bench.calls()
    t0 = time.monotonic()
    services.deployment_destroy(deployment=dep, user=bench.user)
    bench.wait([dep], statuses=("destroyed",))
    destroyed = time.monotonic() - t0
    calls = bench.calls() - calls0
    print(f"destroy physical critical path: {d_cp:6.2f} s  ({' -> '.join(d_path)})")
    print(
        f"destroy: {destroyed:.2f} s, / physical critical path {destroyed / d_cp:.3f}, "
        f"{calls} AWS calls ({calls / len(graph):.2f} per resource)"
    )

    return True


def run_parallel(bench: Bench, kind: str, args, one: float) -> bool:
    from designer.services import design_create

    ok = True
    for n in args.parallel:
        designs = [
            design_create(
                team=bench.team, user=bench.user, spec_data=bench.spec(kind, 1000 + n * 100 + i)
            )
            for i in range(n)
        ]
        stats0, cpu0 = bench.stats(), bench.cpu()
        many, _ = bench.deploy(designs)
        stats, cpu = bench.stats(), bench.cpu()
        calls = stats["requests"] - stats0["requests"]
        cpu = {k: v - cpu0[k] for k, v in cpu.items()}
        moto = since(stats0, stats, "upstream_seconds")
        actions = since(stats0, stats, "by_action")
        budget = 1.3 if n <= 8 else 2.0
        r = many / one
        print(
            f"{n} deployments at once on 1 worker (concurrency 2): {many:.2f} s; one: {one:.2f} s; "
            f"{calls / n:.0f} AWS calls each"
        )
        print(f"{n}-at-once / one: {r:.3f}  budget <= {budget:g}: {verdict(r <= budget)}")
        print(
            f"  CPU seconds in those {many:.1f} s (2 cores): "
            + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        )
        slowest = sorted(((v, k) for k, v in moto.items() if v > 0), reverse=True)[:6]
        print(
            f"  moto's own time answering: {sum(moto.values()):.1f} s; most: "
            + ", ".join(f"{k.split(':')[-1]} {v:.1f} s/{actions.get(k, 0)}" for v, k in slowest)
        )
        ok &= r <= budget
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-scale", type=float, default=1 / 15)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--api-kind", choices=["ec2", "alb", "both"], default="both")
    parser.add_argument("--database", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument(
        "--parallel",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[8, 32],
        help="how many at once, comma-separated (default 8,32)",
    )
    parser.add_argument("--timeline", action="store_true", help="print its resources' times")
    parser.add_argument(
        "--quick", action="store_true", help="skip the update and the destroy (for profiling)"
    )
    args = parser.parse_args()
    databases = ["postgres", "sqlite"] if args.database == "both" else [args.database]
    if "postgres" in databases and not (
        shutil.which("psql")
        and subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "SELECT 1"], capture_output=True
        ).returncode
        == 0
    ):
        print("PostgreSQL is not reachable for --database postgres", file=sys.stderr)
        return 2
    kinds = ["ec2", "alb"] if args.api_kind == "both" else [args.api_kind]
    ok = True
    tmp = tempfile.mkdtemp(prefix="gantry-deploy-bench-")
    for database in databases:
        # Each database in a process of its own: Django's settings are read once.
        if len(databases) > 1:
            cmd = [sys.executable, __file__, "--database", database, "--api-kind", args.api_kind]
            cmd += ["--time-scale", str(args.time_scale), "--latency-ms", str(args.latency_ms)]
            cmd += ["--parallel", ",".join(map(str, args.parallel))]
            cmd += ["--quick"] if args.quick else []
            ok &= subprocess.run(cmd, check=False).returncode == 0
            continue
        bench = Bench(args, database, tmp)
        try:
            bench.start()
            for kind in kinds:
                ok &= run_kind(bench, kind, args)
        finally:
            bench.stop()
    return 0 if ok else 1


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
