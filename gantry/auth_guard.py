"""Failed authentication is throttled per client address, and a username is locked out after
repeated wrong passwords, before any credential is checked.

One rule for tokens and passwords alike, counted in Redis (so every web process agrees and
nothing is written to the database per attempt):

- **Per address.** ``GANTRY_AUTH_FAILURES_PER_ADDRESS`` failed authentications from one client
  address (IPv6: its /64, what one host is usually given) open a window of
  ``GANTRY_AUTH_FAILURE_WINDOW`` seconds; past the limit every further attempt from there is
  answered 429 with ``Retry-After`` before the token is looked up or the password hashed. A
  token that authenticated recently is still let through, so a pipeline that shares an
  address with a misconfigured one keeps working.
- **Per username.** ``GANTRY_LOGIN_FAILURES_PER_USERNAME`` wrong passwords for one username
  lock it for ``GANTRY_LOGIN_LOCKOUT_SECONDS`` (counted from its first failure), from every
  address: a guesser spread over many addresses is slowed too.

Why not django-axes: it guards Django's ``authenticate()`` (the login form, the admin) but not
DRF token authentication, keeps its own idea of the client address beside
``TRUSTED_PROXY_COUNT``, and by default writes a database row per failed attempt, which is
the flood this exists to stop. DRF's throttles run only in API views and count every request,
not failures. The address comes from ``gantry.request_context`` like the audit trail's.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from gantry.request_context import current_client_ip
from gantry.shared_redis import redis_client, redis_key

# KEYS[1] a failure counter. ARGV: window seconds. The window opens at the first failure.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
#: A token that authenticated is remembered this long (seconds) as one to let through.
GOOD_TOKEN_SECONDS = 300

log = logging.getLogger("gantry.auth_guard")
R = TypeVar("R")


def _without_redis(fallback: R) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Redis down is not every login refused, nor a 500: the guard is skipped (and says so
    in the log) until Redis is back."""

    def wrap(fn: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except redis.RedisError:
                log.warning("failed-authentication guard skipped: Redis unreachable", exc_info=True)
                return fallback

        return run

    return wrap


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is not even tried, and when to try again (seconds)."""

    message: str
    retry_after: int


def client_source(ip: str | None = None) -> str:
    """What failures are counted by: the client's address, or its /64 for IPv6."""
    ip = current_client_ip() if ip is None else ip
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _username_key(username: str) -> str:
    digest = hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:32]
    return redis_key("auth", "fail", "user", digest)


def _address_key(source: str) -> str:
    return redis_key("auth", "fail", "addr", source)


def _good_token_key(digest: str) -> str:
    return redis_key("auth", "good", digest)


def _over(key: str, limit: int) -> int | None:
    """Seconds left in the key's window when it holds ``limit`` failures or more."""
    client = redis_client()
    count, ttl = client.pipeline().get(key).ttl(key).execute()
    if count is not None and int(count) >= limit:
        return max(1, int(ttl))
    return None


@_without_redis(None)
def auth_refusal(*, username: str | None = None, token_digest: str | None = None) -> Refusal | None:
    """Before checking credentials: the :class:`Refusal` (a 429) when this attempt must not be
    tried, or None."""
    if username:
        wait = _over(_username_key(username), settings.GANTRY_LOGIN_FAILURES_PER_USERNAME)
        if wait:
            return Refusal(
                "Too many failed logins for this username; it is locked for "
                f"{_minutes(wait)}. Try again later or ask an admin to reset the password.",
                wait,
            )
    wait = _over(_address_key(client_source()), settings.GANTRY_AUTH_FAILURES_PER_ADDRESS)
    if wait:
        if token_digest and redis_client().exists(_good_token_key(token_digest)):
            return None
        return Refusal(
            f"Too many failed authentications from your address; try again in {_minutes(wait)}.",
            wait,
        )
    return None


@_without_redis(None)
def auth_failed(*, username: str | None = None) -> None:
    """Count one failed authentication from the client's address (and for ``username``)."""
    client = redis_client()
    client.eval(_COUNT, 1, _address_key(client_source()), settings.GANTRY_AUTH_FAILURE_WINDOW)
    if username:
        client.eval(_COUNT, 1, _username_key(username), settings.GANTRY_LOGIN_LOCKOUT_SECONDS)


@_without_redis(None)
def auth_token_good(*, token_digest: str) -> None:
    """Remember that this token authenticated, so its holder is not throttled for others'
    failures from the same address."""
    redis_client().set(_good_token_key(token_digest), 1, ex=GOOD_TOKEN_SECONDS)


@_without_redis(None)
def auth_token_forget(*, token_digest: str) -> None:
    """A revoked token is no longer one to let through."""
    redis_client().delete(_good_token_key(token_digest))


def _minutes(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


class GuardedModelBackend(ModelBackend):
    """Django's username-and-password backend behind :func:`auth_refusal`: a locked username
    or a throttled address is refused before the password is hashed (the login page, the
    admin's). The refusal is left on the request for the login page's 429."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        refusal = auth_refusal(username=username)
        if refusal is not None:
            if request is not None:
                request.auth_refusal = refusal
            raise PermissionDenied(refusal.message)  # authenticate() stops at once
        return super().authenticate(request, username=username, password=password, **kwargs)
