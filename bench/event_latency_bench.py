"""Event-to-browser latency of the live deployment stream.

Starts the web server (uvicorn, production settings) against a scratch SQLite database and the
real Redis, opens the Server-Sent Events stream of a deployment as a logged-in team member, and
appends numbered events the way the reconciler does (a row under the deployment's lock, pushed
through Redis pub/sub after commit). Latency is from the commit to the event's arrival at the
client. Also checks that the client saw every event once, in order. Budget: p95 <= 250 ms.

    .venv/bin/python bench/event_latency_bench.py [--events 300] [--interval 0.02]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _web import login, prepare, production_env, setup_queued_deployment, start_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
BUDGET_MS = 250.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    env = production_env(
        tempfile.mkdtemp(prefix="gantry-event-bench-"),
        GANTRY_QUEUE=f"event-bench-{uuid.uuid4().hex[:8]}",  # nothing consumes it
        GANTRY_SANDBOX_ENDPOINT="http://127.0.0.1:9",
    )
    prepare(env)
    _, _, deployment = setup_queued_deployment(env)
    from django.db import transaction

    from deployer import events
    from deployer.models import Deployment

    first = deployment.last_event_seq

    server, base = start_server(env)
    received: dict[int, float] = {}
    order: list[int] = []
    try:
        s = login(base, "bench", "bench-pass-1")
        stream = s.get(
            f"{base}/deployments/{deployment.pk}/events/stream",
            headers={"Last-Event-ID": str(first)},
            stream=True,
            timeout=60,
        )
        stream.raise_for_status()
        last = first + args.events

        def reader():
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    seq = json.loads(line[6:])["seq"]
                    received[seq] = time.perf_counter()
                    order.append(seq)
                    if seq >= last:
                        return

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        time.sleep(0.5)  # the stream is subscribed
        sent: dict[int, float] = {}
        for i in range(args.events):
            terminal = i == args.events - 1
            with transaction.atomic():
                dep = Deployment.objects.select_for_update().get(pk=deployment.pk)
                event = events.append(
                    dep,
                    kind="status" if terminal else "resource",
                    message=f"bench event {i}",
                    state="succeeded" if terminal else "creating",
                )
                dep.save(update_fields=["last_event_seq"])
                sent[event.seq] = time.perf_counter()  # commit (and publish) follow at once
            time.sleep(args.interval)
        thread.join(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=10)

    latencies = [(received[seq] - sent[seq]) * 1000 for seq in sent if seq in received]
    missing = [seq for seq in sent if seq not in received]
    in_order = order == sorted(order) and len(order) == len(set(order))
    p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))] if latencies else float("inf")
    print(
        f"events sent={len(sent)} received={len(latencies)} missing={len(missing)} "
        f"in order without repeats={in_order}"
    )
    print(
        f"event-to-browser latency p50={statistics.median(latencies):.1f} ms p95={p95:.1f} ms "
        f"max={max(latencies):.1f} ms  budget p95<={BUDGET_MS:.0f} ms: "
        f"{'meets' if p95 <= BUDGET_MS else 'MISSES'}"
    )
    return 0 if p95 <= BUDGET_MS and not missing and in_order else 1


if __name__ == "__main__":
    sys.exit(main())
