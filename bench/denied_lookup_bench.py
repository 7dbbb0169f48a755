"""Whether a refused lookup can be told from a missing id by its timing.

Another team's design answers 404 exactly like a design that does not exist, but the refusal
is audited (a query and an append-only row). If the audit happened before the answer, the
404 for an existing id would be measurably slower: an oracle for which ids exist. Gantry
writes that entry after the response is sent (``gantry.request_context.after_response``).

Starts a throwaway PostgreSQL cluster (bench/_pg.py: the audit trigger is PostgreSQL's) and
uvicorn with production settings, then asks, in a shuffled order, for another team's design
and for a missing id, one request at a time over a kept-alive connection, and prints both
latency distributions and their difference, and how many denials were audited.

    .venv/bin/python bench/denied_lookup_bench.py [--requests 400]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from _pg import create_database, throwaway_cluster
from _web import pct, prepare, production_env, start_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with throwaway_cluster() as cluster:
        env = production_env(
            tempfile.mkdtemp(prefix="gantry-denied-bench-"),
            DATABASE_URL=create_database(cluster, "gantry_denied_bench"),
            DATABASE_CONN_MAX_AGE="0",
            GANTRY_QUEUE=f"denied-bench-{uuid.uuid4().hex[:8]}",
            GANTRY_API_RATE="1000000/min",
        )
        os.environ.update(env)
        prepare(env)

        import django

        django.setup()
        from api.services import token_create
        from audit.models import AuditEntry
        from designer.services import design_create
        from designer.spec import DEFAULT_SPEC
        from teams.services import demo_setup

        caller, _ = demo_setup(username="prober", password="bench-pass-1", team_name="probers")
        owner, theirs = demo_setup(username="owner", password="bench-pass-2", team_name="owners")
        design = design_create(team=theirs, user=owner, spec_data=DEFAULT_SPEC)
        key = token_create(user=caller, name="bench")[1]
        server, base = start_server(env)
        try:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {key}"
            urls = {
                "denied": f"{base}/api/designs/{design.pk}/",
                "missing": f"{base}/api/designs/{design.pk + 100_000}/",
            }
            warmup = 20
            for url in urls.values():  # warm up both paths
                for _ in range(warmup):
                    session.get(url, timeout=10)
            denied = AuditEntry.objects.filter(action="auth.denied")
            deadline = time.monotonic() + 10
            while denied.count() < warmup and time.monotonic() < deadline:
                time.sleep(0.05)  # the warm-up's entries land after their answers
            before = denied.count()
            times: dict[str, list[float]] = {name: [] for name in urls}
            # Shuffled (fixed seed): whatever one request leaves behind (its entry is written
            # after its answer) falls on denied and missing followers alike.
            order = ["denied", "missing"] * args.requests
            random.Random(11).shuffle(order)
            for name in order:
                start = time.perf_counter()
                response = session.get(urls[name], timeout=10)
                times[name].append((time.perf_counter() - start) * 1000)
                assert response.status_code == 404, response.status_code
            deadline = time.monotonic() + 10
            while denied.count() - before < args.requests and time.monotonic() < deadline:
                time.sleep(0.05)  # the last entries are written after their answers
            audited = denied.count() - before
        finally:
            server.terminate()
            server.wait(timeout=30)

    for name, values in times.items():
        print(
            f"{name:8s} 404: n={len(values)} p50={statistics.median(values):.2f} ms "
            f"p95={pct(values, 95):.2f} ms mean={statistics.fmean(values):.2f} ms"
        )
    diff50 = statistics.median(times["denied"]) - statistics.median(times["missing"])
    diff_mean = statistics.fmean(times["denied"]) - statistics.fmean(times["missing"])
    print(f"denied - missing: p50 {diff50:+.2f} ms, mean {diff_mean:+.2f} ms")
    print(f"denials audited: {audited} of {args.requests} (written after each answer)")
    return 0 if audited == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
