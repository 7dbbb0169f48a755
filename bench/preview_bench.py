"""Preview latency through the web endpoint, as the design page sees it.

Starts the real web server (uvicorn, ASGI) against a scratch SQLite database and the real Redis,
logs in, and posts the design form to /designs/preview/:
  * unseen: every request is a spec the server has not seen (cache miss: validate, plan, tables,
    cost, diagram via Graphviz, template);
  * seen:   the same specs again (cache hit keyed by the spec's hash).
Prints p50/p95/max for both and whether they meet the budgets (150 ms and 20 ms at p95).

    .venv/bin/python bench/preview_bench.py [--specs 120]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from _web import ROOT, login, pct, prepare, production_env, start_server

BUDGET_UNSEEN_MS = 150.0
BUDGET_SEEN_MS = 20.0


def specs(n: int) -> list[dict]:
    """n distinct valid specs across NAT choices, API kinds and 1 to 3 AZs."""
    out = []
    nats = ["single", "none", "per_az"]
    kinds = ["ec2", "alb"]
    for i in range(n):
        azs = 1 + i % 3
        kind = kinds[(i // 3) % 2]
        api_azs = max(azs, 2) if kind == "alb" else azs
        nat = nats[(i // 6) % 3]
        second = 10 + i % 200
        base = f"10.{second}"
        out.append(
            {
                "name": f"bench-{i}",
                "region": "us-east-1",
                "vpc_cidr": f"{base}.0.0/16",
                "public_subnet_cidrs": [f"{base}.{k}.0/24" for k in range(azs)]
                if nat != "none"
                else [],
                "lambda_subnet_cidrs": [f"{base}.{10 + k}.0/24" for k in range(azs)],
                "api_subnet_cidrs": [f"{base}.{20 + k}.0/24" for k in range(api_azs)],
                "api_port": 1024 + i,
                "nat": nat,
                "api_kind": kind,
                "tags": {"bench": str(i)},
            }
        )
    return out


def form(spec: dict) -> dict:
    return {
        "name": spec["name"],
        "region": spec["region"],
        "vpc_cidr": spec["vpc_cidr"],
        "public_subnet_cidrs": spec["public_subnet_cidrs"],
        "lambda_subnet_cidrs": spec["lambda_subnet_cidrs"],
        "api_subnet_cidrs": spec["api_subnet_cidrs"],
        "api_port": str(spec["api_port"]),
        "nat": spec["nat"],
        "api_kind": spec["api_kind"],
        "tag_key": list(spec["tags"]),
        "tag_value": list(spec["tags"].values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=int, default=120)
    args = parser.parse_args()
    env = production_env(tempfile.mkdtemp(prefix="gantry-bench-"))
    prepare(env)
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "gantry_demo",
            "--username",
            "bench",
            "--password",
            "bench-pass-1",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server, base = start_server(env)
    try:
        s = login(base, "bench", "bench-pass-1")
        headers = {"X-CSRFToken": s.cookies["csrftoken"], "Referer": base + "/designs/new/"}
        url = base + "/designs/preview/"

        def post(spec: dict) -> float:
            t0 = time.perf_counter()
            r = s.post(url, data=form(spec), headers=headers)
            elapsed = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            body = r.json()
            assert body["valid"] and body["html"], body["errors"]
            return elapsed

        for spec in specs(5):  # warm-up: imports, template compilation, connections
            post({**spec, "name": spec["name"] + "-warm", "api_port": 80})
        workload = specs(args.specs)
        unseen = [post(spec) for spec in workload]
        seen = [post(spec) for spec in workload]
    finally:
        server.terminate()
        server.wait(timeout=10)

    ok = True
    for label, values, budget in (
        ("unseen", unseen, BUDGET_UNSEEN_MS),
        ("seen", seen, BUDGET_SEEN_MS),
    ):
        p95 = pct(values, 95)
        verdict = "meets" if p95 <= budget else "MISSES"
        ok &= p95 <= budget
        print(
            f"preview {label:6s} n={len(values)}  p50={statistics.median(values):6.1f} ms  "
            f"p95={p95:6.1f} ms  max={max(values):6.1f} ms  budget p95<={budget:.0f} ms: {verdict}"
        )
    print(f"seen/unseen p95 ratio: {pct(seen, 95) / pct(unseen, 95):.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
