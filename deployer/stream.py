"""The live event stream of a deployment as Server-Sent Events, for the page and the API.

Every event after the client's last one (``Last-Event-ID`` on a reconnect, or ``?after=N``) from
the database, then live ones from Redis pub/sub, each exactly once and in order; the stream ends
after the event that puts the deployment in a terminal state.

A stream is cheap to hold and cannot be used to starve the database:

- it waits on Redis, never on the database: each read (the backlog, a gap, the periodic
  re-check) opens a connection, runs, and closes it (:func:`gantry.db_connections.db_briefly`);
- a finished deployment with nothing after the client's event answers 204 at once (which
  also tells a browser's ``EventSource`` not to reconnect);
- each user holds at most ``GANTRY_STREAMS_PER_USER`` streams (429 beyond). The slots are a
  Redis sorted set of leases that each open stream renews; a server that dies without
  releasing its slots loses them when the leases run out, not forever;
- a stream lasts at most ``GANTRY_STREAM_MAX_SECONDS``, then the client reconnects from its
  last event;
- every ``GANTRY_STREAM_RECHECK_SECONDS`` the stream checks that its user is still active,
  still in the deployment's team, and that its token (or session) still stands; if not, it
  ends (the reconnect then gets the 401 or 404 anyone else would).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse

from deployer import events
from deployer.models import Deployment, DeploymentEvent
from deployer.selectors import deployment_list
from gantry.db_connections import db_briefly, db_release
from gantry.parsing import IntegerInvalid, parse_int
from gantry.shared_redis import redis_async_client, redis_client, redis_key

#: A quiet stream sends a comment this often, so proxies keep it open.
KEEPALIVE_SECONDS = 15

# Take a slot: drop expired leases, refuse when the user holds the cap, else add a lease.
# KEYS[1] the user's set; ARGV: now, lease expiry, cap, slot id, key ttl.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
# Renew a lease (only one still held: a slot whose lease ran out is not brought back).
_RENEW = """
local held = redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return held
"""


class StreamRefused(Exception):
    """The stream cannot be opened; ``status`` and ``str(exc)`` are the answer."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class StreamAccess:
    """Who opened the stream, and how to tell that what let them in (a token, a session)
    still stands: a function the stream calls in a worker thread, that may read the database."""

    user_id: int
    credential_stands: Callable[[], bool]


def session_stands(session_key: str) -> Callable[[], bool]:
    """For a stream opened with a session: it still exists (a logout ends the stream)."""

    def check() -> bool:
        engine = import_module(settings.SESSION_ENGINE)
        store = engine.SessionStore(session_key)
        return bool(store.load()) and store.session_key == session_key

    return check


def _recheck_seconds() -> float:
    return float(settings.GANTRY_STREAM_RECHECK_SECONDS)


def _lease_seconds() -> float:
    """How long a slot stays taken without renewal: a few re-checks, so a live stream always
    renews in time and a dead server's slots are free again soon."""
    return max(2.0, 3 * _recheck_seconds())


def _slots_key(user_id: int) -> str:
    return redis_key("streams", "user", user_id)


def last_event_id(request: HttpRequest) -> int:
    """Where a (re)connecting client left off: ``Last-Event-ID``, else ``?after=N``, else 0.
    Raises :class:`~gantry.parsing.IntegerInvalid` for anything but a number."""
    # ``after`` is checked even when the header wins: a bad parameter is a 400 either way.
    raw = request.GET.get("after")
    if raw == "":  # given but empty: not a number (left out, it is 0)
        raise IntegerInvalid("after", "give a whole number, or leave the parameter out")
    after = parse_int(raw, field="after", default=0)
    header = request.headers.get("Last-Event-ID")
    if header is not None:  # browsers send it only with a number; empty is not one
        return parse_int(header.strip(), field="Last-Event-ID")
    return after


def stream_slot_acquire(*, user_id: int) -> str:
    """A slot for one more stream of ``user_id``, or :class:`StreamRefused` (429)."""
    slot = uuid.uuid4().hex
    now = time.time()
    cap = settings.GANTRY_STREAMS_PER_USER
    taken = redis_client().eval(
        _ACQUIRE, 1, _slots_key(user_id), now, now + _lease_seconds(), cap, slot, 3600
    )
    if not taken:
        raise StreamRefused(
            429,
            f"You already have {cap} live event streams open; close one (or wait for one to "
            "end) and try again.",
            retry_after=max(1, round(_recheck_seconds())),
        )
    return slot


def stream_open(
    *, deployment: Deployment, after: int, access: StreamAccess
) -> StreamingHttpResponse:
    """The stream's response for a deployment the caller may see (its lookup and
    authentication are done), or :class:`StreamRefused`.

    Called in the request's thread, which then gives its database connection back: from here
    on the stream touches the database only briefly."""
    try:
        if deployment.status in Deployment.TERMINAL and after >= deployment.last_event_seq:
            raise StreamRefused(204, "The deployment has finished; nothing follows.")
        slot = stream_slot_acquire(user_id=access.user_id)
    finally:
        db_release()
    response = StreamingHttpResponse(
        _events(deployment.pk, after, access=access, slot=slot),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _sse(event: dict) -> bytes:
    return f"id: {event['seq']}\nevent: deployment\ndata: {json.dumps(event)}\n\n".encode()


def _ends(event: dict) -> bool:
    return event["kind"] == "status" and event["state"] in Deployment.TERMINAL


@db_briefly
def _backlog(deployment_id: int, after: int) -> list[dict]:
    return [
        event.to_json()
        for event in DeploymentEvent.objects.filter(
            deployment_id=deployment_id, seq__gt=after
        ).order_by("seq")[:1000]
    ]


@db_briefly
def _still_allowed(access: StreamAccess, deployment_id: int) -> bool:
    """Whether the stream's user may still watch: active, still in the deployment's team (or
    staff), and what let them in (a token, a session) not revoked or ended."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=access.user_id, is_active=True).first()
    if user is None:
        return False
    if not access.credential_stands():
        return False
    return deployment_list(user=user).filter(pk=deployment_id).exists()


async def _events(
    deployment_id: int, after: int, *, access: StreamAccess, slot: str
) -> AsyncIterator[bytes]:
    client = redis_async_client()
    pubsub = client.pubsub()
    slots = _slots_key(access.user_id)
    last = after
    try:
        # Subscribe before reading the backlog so nothing falls between the two.
        await pubsub.subscribe(events.channel(deployment_id))
        yield b"retry: 1000\n\n"
        finished = False
        for event in await sync_to_async(_backlog)(deployment_id, last):
            last = event["seq"]
            yield _sse(event)
            finished = finished or _ends(event)
        now = time.monotonic()
        next_check, next_keepalive = now + _recheck_seconds(), now + KEEPALIVE_SECONDS
        # A stream is not forever: past its lifetime it ends and the client reconnects from
        # its last event (EventSource does it by itself), which also spreads viewers over
        # web processes that started since.
        ends_at = now + float(settings.GANTRY_STREAM_MAX_SECONDS)
        while not finished and time.monotonic() < ends_at:
            wait = max(0.0, min(next_check, next_keepalive, ends_at) - time.monotonic())
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            data = json.loads(message["data"]) if message is not None else None
            if data is not None and data["seq"] > last:
                if data["seq"] > last + 1:  # a gap: fill it from the database, in order
                    for event in await sync_to_async(_backlog)(deployment_id, last):
                        if event["seq"] >= data["seq"]:
                            break
                        last = event["seq"]
                        yield _sse(event)
                last = data["seq"]
                yield _sse(data)
                finished = _ends(data)
            # Also while events flow: a busy deployment's stream is re-checked all the same.
            now = time.monotonic()
            if now >= next_check and not finished:
                if not await sync_to_async(_still_allowed)(access, deployment_id):
                    return
                if not await client.eval(
                    _RENEW, 1, slots, time.time() + _lease_seconds(), slot, 3600
                ):
                    return  # the lease ran out (this process stalled): reconnect for a new one
                # Anything whose publish was lost (Redis restarted, a worker's publish failed).
                for event in await sync_to_async(_backlog)(deployment_id, last):
                    last = event["seq"]
                    yield _sse(event)
                    finished = finished or _ends(event)
                next_check = now + _recheck_seconds()
            if now >= next_keepalive and not finished:
                yield b": keepalive\n\n"
                next_keepalive = now + KEEPALIVE_SECONDS
    finally:
        try:
            await client.zrem(slots, slot)
        finally:
            await pubsub.aclose()
            await client.aclose()
