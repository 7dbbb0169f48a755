"""Gantry's own Redis keys (stream slots, authentication-failure windows), beside Django's
cache and Celery's broker on the same server.

Keys are namespaced like the live-event channels (``deployer.events.channel``): by the
database name, so installations sharing one Redis never count each other's streams or
failures, and by ``CACHE_KEY_PREFIX``. Both are read at call time: the test runner renames
the database, and each test gets a cache prefix of its own.
"""

from __future__ import annotations

import functools

import redis
import redis.asyncio as aioredis
from django.conf import settings


def redis_key(*parts: object) -> str:
    database = settings.DATABASES["default"]["NAME"]
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return ":".join(["gantry", str(database), prefix, *(str(part) for part in parts)])


@functools.cache
def _client(url: str) -> redis.Redis:
    # One connection pool per process and URL: these calls sit on every request that
    # authenticates, so they must not pay for a connection each.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def redis_client() -> redis.Redis:
    """The process's client for ``REDIS_URL`` (thread-safe: redis-py pools connections)."""
    return _client(settings.REDIS_URL)


def redis_async_client() -> aioredis.Redis:
    """A new asyncio client, for one coroutine that closes it (an event loop's connections
    cannot be shared with another loop)."""
    return aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)
