"""The live event stream of a deployment as Server-Sent Events, for the page and the API.

Every event after the client's last one (``Last-Event-ID`` on a reconnect, or ``?after=N``) from
the database, then live ones from Redis pub/sub, each exactly once and in order; the stream ends
after the event that puts the deployment in a terminal state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse

from deployer import events
from deployer.models import Deployment

#: A quiet stream sends a comment this often (and re-reads the database for missed events).
KEEPALIVE_SECONDS = 15


def last_event_id(request: HttpRequest) -> int:
    """Where a (re)connecting client left off: ``Last-Event-ID``, else ``?after=N``, else 0."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    return int(raw) if raw.isdigit() and len(raw) < 12 else 0


def _sse(event: dict) -> bytes:
    return f"id: {event['seq']}\nevent: deployment\ndata: {json.dumps(event)}\n\n".encode()


async def _events(deployment: Deployment, after: int) -> AsyncIterator[bytes]:
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    last = after
    try:
        # Subscribe before reading the backlog so nothing falls between the two.
        await pubsub.subscribe(events.channel(deployment.pk))
        yield b"retry: 1000\n\n"
        backlog = await sync_to_async(events.events_after)(deployment, last)
        finished = False
        for event in backlog:
            last = event.seq
            yield _sse(event.to_json())
            finished = finished or (event.kind == "status" and event.state in Deployment.TERMINAL)
        while not finished:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=KEEPALIVE_SECONDS
            )
            if message is None:
                # Quiet: a comment keeps proxies from closing the stream, and a look at the
                # database catches anything whose publish was lost.
                yield b": keepalive\n\n"
                for event in await sync_to_async(events.events_after)(deployment, last):
                    last = event.seq
                    yield _sse(event.to_json())
                    finished = finished or (
                        event.kind == "status" and event.state in Deployment.TERMINAL
                    )
                continue
            data = json.loads(message["data"])
            if data["seq"] <= last:
                continue
            if data["seq"] > last + 1:  # a gap: fill it from the database, in order
                for event in await sync_to_async(events.events_after)(deployment, last):
                    if event.seq >= data["seq"]:
                        break
                    last = event.seq
                    yield _sse(event.to_json())
            last = data["seq"]
            yield _sse(data)
            finished = data["kind"] == "status" and data["state"] in Deployment.TERMINAL
    finally:
        await pubsub.aclose()
        await client.aclose()


def sse_response(deployment: Deployment, after: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_events(deployment, after), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
