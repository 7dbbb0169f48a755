"""Many open live streams against a small PostgreSQL: 200 viewers of one deployment on a
cluster with max_connections=50.

Starts a throwaway PostgreSQL cluster (max_connections=50, bench/_pg.py) and uvicorn
(production settings, one process, connections closed after each request as compose runs
the web, from a pool of 20), opens 200 Server-Sent Events streams on one deployment as 20 users (10 each, the
default per-user cap), appends numbered events the way the reconciler does, the last one
terminal, and meanwhile keeps making ordinary API requests. Checks that every stream receives
every event once and in order and ends, and that no other request fails; prints the most
PostgreSQL connections in use at any time. Loopback only, bounded in time.

    .venv/bin/python bench/stream_load_bench.py [--streams 200] [--events 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from _pg import connections_in_use, create_database, throwaway_cluster
from _web import prepare, production_env, setup_queued_deployment, start_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
MAX_CONNECTIONS = 50
DEADLINE_SECONDS = 180


class Viewer(threading.Thread):
    def __init__(self, url: str, key: str):
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.status: int | None = None
        self.seqs: list[int] = []
        self.error = ""

    def run(self) -> None:
        try:
            with requests.get(
                self.url, headers={"Authorization": f"Token {self.key}"}, stream=True, timeout=120
            ) as response:
                self.status = response.status_code
                for line in response.iter_lines(decode_unicode=True):
                    if line and line.startswith("id: "):
                        self.seqs.append(int(line[4:]))
        except requests.RequestException as exc:
            self.error = type(exc).__name__


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=10)
    args = parser.parse_args()
    started = time.monotonic()
    with throwaway_cluster(max_connections=str(MAX_CONNECTIONS)) as cluster:
        database = create_database(cluster, "gantry_stream_bench")
        env = production_env(
            tempfile.mkdtemp(prefix="gantry-stream-bench-"),
            DATABASE_URL=database,
            DATABASE_CONN_MAX_AGE="0",
            GANTRY_QUEUE=f"stream-bench-{uuid.uuid4().hex[:8]}",  # nothing consumes it
            GANTRY_SANDBOX_ENDPOINT="http://127.0.0.1:9",
            GANTRY_API_RATE="1000000/min",
            # As compose runs the web: a bounded pool per process.
            GANTRY_DB_POOL_SIZE="20",
        )
        prepare(env)
        owner, team, deployment = setup_queued_deployment(env)
        from django.contrib.auth import get_user_model
        from django.db import transaction

        from api.services import token_create
        from deployer import events
        from deployer.models import Deployment
        from teams.services import membership_ensure

        first = deployment.last_event_seq
        users = -(-args.streams // args.per_user)

        keys = []
        for i in range(users):
            user = get_user_model().objects.create_user(f"viewer{i}", password="x-" * 8)
            membership_ensure(team=team, user=user)
            keys.append(token_create(user=user, name="bench")[1])
        other_key = token_create(user=owner, name="other requests")[1]

        server, base = start_server(env)
        try:
            url = f"{base}/api/deployments/{deployment.pk}/events/stream?after={first}"
            idle = connections_in_use(cluster)
            most, stop = [0], threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    most[0] = max(most[0], connections_in_use(cluster))
                    time.sleep(0.05)

            other: dict[str, int] = {}

            def others() -> None:
                session = requests.Session()
                session.headers["Authorization"] = f"Token {other_key}"
                paths = [f"/api/deployments/{deployment.pk}/", "/api/designs/", "/api/teams/"]
                n = 0
                while not stop.is_set():
                    try:
                        code = session.get(base + paths[n % 3], timeout=30).status_code
                        key = "ok" if code == 200 else str(code)
                    except requests.RequestException as exc:
                        key = type(exc).__name__
                    other[key] = other.get(key, 0) + 1
                    n += 1

            threads = [threading.Thread(target=watch), threading.Thread(target=others)]
            for thread in threads:
                thread.start()
            # All at once, while the other requests go on.
            viewers = [Viewer(url, keys[i // args.per_user]) for i in range(args.streams)]
            for viewer in viewers:
                viewer.start()
            deadline = time.monotonic() + 60
            while any(v.status is None and not v.error for v in viewers):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            opened = sum(v.status == 200 for v in viewers)
            for i in range(args.events):
                terminal = i == args.events - 1
                with transaction.atomic():
                    dep = Deployment.objects.select_for_update().get(pk=deployment.pk)
                    if terminal:
                        dep.status = Deployment.Status.SUCCEEDED
                    events.append(
                        dep,
                        kind="status" if terminal else "resource",
                        message=f"bench event {i}",
                        state="succeeded" if terminal else "creating",
                    )
                    dep.save(update_fields=["last_event_seq", "status"])
                time.sleep(0.25)
            last = first + args.events
            deadline = min(time.monotonic() + 60, started + DEADLINE_SECONDS)
            for viewer in viewers:
                viewer.join(timeout=max(0.1, deadline - time.monotonic()))
            stop.set()
            for thread in threads:
                thread.join(timeout=35)
        finally:
            server.terminate()
            server.wait(timeout=30)

    expected = list(range(first + 1, last + 1))
    complete = sum(v.seqs == expected for v in viewers)
    ended = sum(not v.is_alive() for v in viewers)
    failed_other = sum(n for k, n in other.items() if k != "ok")
    print(
        f"streams opened={opened}/{args.streams} ({users} users) received every event in "
        f"order={complete}/{args.streams} ended={ended}/{args.streams}"
    )
    print(f"other requests meanwhile: {sum(other.values())}, failed={failed_other} {other}")
    print(
        f"PostgreSQL connections: idle={idle} most in use={most[0]} of max_connections="
        f"{MAX_CONNECTIONS} (before: one per open stream, {args.streams} needed)"
    )
    print(f"run time {time.monotonic() - started:.1f} s")
    ok = opened == complete == ended == args.streams and failed_other == 0
    ok = ok and most[0] < MAX_CONNECTIONS
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
