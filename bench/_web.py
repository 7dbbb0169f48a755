"""What the web benchmarks share: production settings on loopback, the server, a login."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def production_env(tmp: str, **extra: str) -> dict[str, str]:
    """Production settings (DEBUG off, persistent DB connections, manifest static files) with
    only what plain HTTP on loopback needs relaxed: no TLS redirect, cookies without Secure.
    A scratch SQLite database in ``tmp``."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
        "DEBUG": "0",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": f"{tmp}/static",
        "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
        "DATABASE_CONN_MAX_AGE": "60",
        "CACHE_KEY_PREFIX": f"bench-{uuid.uuid4().hex}",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def prepare(env: dict[str, str]) -> None:
    for args in (["collectstatic", "--noinput", "-v0"], ["migrate", "-v0"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """uvicorn serving Gantry's ASGI app, as in production; returns it once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gantry.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(base + "/login/", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    return server, base


def login(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(base + "/login/")
    session.post(
        base + "/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
    )
    return session


def setup_queued_deployment(env: dict[str, str], username: str = "bench"):
    """Django set up in this process against ``env`` (already prepared), the bench user (its
    password is ``bench-pass-1``), its team and a queued deployment of the article's design;
    nothing consumes the queue, so it stays queued while the benchmark adds its events."""
    os.environ.update(env)
    import django

    django.setup()
    from deployer import services
    from designer.services import design_create
    from designer.spec import DEFAULT_SPEC
    from teams.services import demo_setup

    user, team = demo_setup(username=username, password="bench-pass-1", team_name="bench")
    design = design_create(team=team, user=user, spec_data=DEFAULT_SPEC)
    deployment = services.deployment_start(
        design=design, target=services.target_sandbox_ensure(team=team), user=user
    )
    return user, team, deployment
