"""Shared fixtures. Real services: the configured database, a real Redis (started here when the
configured one is not reachable), real processes for the CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

hypothesis_settings.register_profile(
    "gantry", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("gantry")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis the tests use: the configured one, or a private redis-server started here."""
    from django.conf import settings

    url = urlparse(settings.REDIS_URL)
    if _reachable(url.hostname or "127.0.0.1", url.port or 6379):
        yield settings.REDIS_URL
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail(
            "no Redis is reachable and redis-server is not installed (apt-get install redis-server)"
        )
    port = _free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if _reachable("127.0.0.1", port):
            break
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def _isolated_cache(redis_url: str, settings) -> Iterator[None]:
    """Each test gets its own cache namespace on the real Redis, so cached previews of one test
    cannot make another pass."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"gantry-test-{os.getpid()}-{time.monotonic_ns()}",
        }
    }
    yield


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *, team=None, staff: bool = False, role: str = "member"):
        from teams.services import membership_ensure

        user = django_user_model.objects.create_user(
            username=username, password="pw-" + username, is_staff=staff
        )
        if team is not None:
            membership_ensure(team=team, user=user, role=role)
        return user

    return make


@pytest.fixture
def team(db):
    from teams.services import team_ensure

    return team_ensure(name="payments")


@pytest.fixture
def other_team(db):
    from teams.services import team_ensure

    return team_ensure(name="search")


@pytest.fixture
def member(make_user, team):
    return make_user("alice", team=team)


@pytest.fixture
def outsider(make_user, other_team):
    return make_user("mallory", team=other_team)


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client
