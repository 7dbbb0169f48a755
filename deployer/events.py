"""Deployment events: numbered rows first, then a push through Redis pub/sub after commit.

The number (``seq``) is taken under the deployment's row lock, so events of one deployment are
gap-free and ordered. A page that reconnects asks for everything after the last number it saw
(from the database), then follows the live channel, dropping anything it already has.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from deployer.models import Deployment, DeploymentEvent
from gantry.shared_redis import redis_client

logger = logging.getLogger(__name__)


def channel(deployment_id: int) -> str:
    """The deployment's pub/sub channel, namespaced by database.

    Deployment ids are unique only within one database, and Redis pub/sub ignores the database
    number in ``REDIS_URL``: two installations (or two test runs) sharing one Redis would
    otherwise see each other's deployment N. The web and the workers of one installation use
    the same database, so they agree on the name whatever else differs between them. Read at
    call time, because the test runner renames the database after settings load.
    """
    database = settings.DATABASES["default"]["NAME"]
    return f"gantry:{database}:deployment:{deployment_id}:events"


def _redis() -> redis.Redis:
    # The process's pooled client: a connection per event cost a pass more than its SQL.
    return redis_client()


@dataclass(frozen=True)
class NewEvent:
    """An event to save (the walker's ``Emitted`` has the same fields)."""

    kind: str
    message: str
    logical_id: str = ""
    state: str = ""
    data: dict[str, Any] | None = None


def append(
    deployment: Deployment,
    *,
    kind: str,
    message: str,
    logical_id: str = "",
    state: str = "",
    data: dict[str, Any] | None = None,
) -> DeploymentEvent:
    """Save the next numbered event; publish it once the transaction commits.

    The caller holds the deployment's row lock (or has just created the row), and saves the
    deployment afterwards so ``last_event_seq`` is kept.
    """
    (event,) = append_many(deployment, [NewEvent(kind, message, logical_id, state, data)])
    return event


def append_many(deployment: Deployment, emitted: Iterable[Any]) -> list[DeploymentEvent]:
    """Several events at once (what a pass saw), as :func:`append` saves one: numbered in
    order under the caller's row lock, saved in one insert and published in one pipeline
    after commit. Each of ``emitted`` has ``kind``, ``message``, ``logical_id``, ``state`` and
    ``data`` (a :class:`NewEvent`, or the walker's ``Emitted``)."""
    rows = []
    for e in emitted:
        deployment.last_event_seq += 1
        rows.append(
            DeploymentEvent(
                deployment=deployment,
                # Every event belongs to the run in progress (the create, an update, the
                # destroy).
                run_id=deployment.current_run_id,
                seq=deployment.last_event_seq,
                kind=e.kind,
                message=e.message,
                logical_id=e.logical_id,
                state=e.state,
                data=e.data or {},
            )
        )
    if not rows:
        return []
    Deployment.objects.filter(pk=deployment.pk).update(last_event_seq=deployment.last_event_seq)
    saved = DeploymentEvent.objects.bulk_create(rows)
    payloads = [json.dumps(event.to_json()) for event in saved]
    transaction.on_commit(lambda: publish(deployment.pk, payloads))
    return saved


def publish(deployment_id: int, payloads: list[str]) -> None:
    """Events in one round trip (a pipeline, not a transaction)."""
    try:
        pipe = _redis().pipeline(transaction=False)
        for payload in payloads:
            pipe.publish(channel(deployment_id), payload)
        pipe.execute()
    except redis.RedisError:
        # The rows are saved; a page that missed the push backfills them by number.
        logger.warning("could not publish deployment events", exc_info=True)


def subscribe(deployment_id: int) -> redis.client.PubSub:
    """A subscription to the deployment's live events (for a waiting CLI)."""
    pubsub = _redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel(deployment_id))
    return pubsub


def events_after(deployment: Deployment, after: int, limit: int = 1000) -> list[DeploymentEvent]:
    return list(deployment.events.filter(seq__gt=after).order_by("seq")[:limit])
