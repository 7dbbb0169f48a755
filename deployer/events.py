"""Deployment events: numbered rows first, then a push through Redis pub/sub after commit.

The number (``seq``) is taken under the deployment's row lock, so events of one deployment are
gap-free and ordered. A page that reconnects asks for everything after the last number it saw
(from the database), then follows the live channel, dropping anything it already has.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
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
    deployment.last_event_seq += 1
    Deployment.objects.filter(pk=deployment.pk).update(last_event_seq=deployment.last_event_seq)
    event = DeploymentEvent.objects.create(
        deployment=deployment,
        # Every event belongs to the run in progress (the create, an update, the destroy).
        run_id=deployment.current_run_id,
        seq=deployment.last_event_seq,
        kind=kind,
        message=message,
        logical_id=logical_id,
        state=state,
        data=data or {},
    )
    payload = json.dumps(event.to_json())
    transaction.on_commit(lambda: publish(deployment.pk, payload))
    return event


def publish(deployment_id: int, payload: str) -> None:
    try:
        _redis().publish(channel(deployment_id), payload)
    except redis.RedisError:
        # The row is saved; a page that missed the push backfills it by number.
        logger.warning("could not publish deployment event", exc_info=True)


def publish_many(deployment_id: int, payloads: list[str]) -> None:
    """A pass's events in one round trip (a pipeline, not a transaction)."""
    try:
        pipe = _redis().pipeline(transaction=False)
        for payload in payloads:
            pipe.publish(channel(deployment_id), payload)
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not publish deployment events", exc_info=True)


def subscribe(deployment_id: int) -> redis.client.PubSub:
    """A subscription to the deployment's live events (for a waiting CLI)."""
    pubsub = _redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel(deployment_id))
    return pubsub


def events_after(deployment: Deployment, after: int, limit: int = 1000) -> list[DeploymentEvent]:
    return list(deployment.events.filter(seq__gt=after).order_by("seq")[:limit])


def append_many(deployment: Deployment, emitted: Iterable[Any]) -> list[DeploymentEvent]:
    """Several events at once (what a pass saw): numbered in order under the caller's row
    lock like :func:`append`, saved in one insert and published in one pipeline after
    commit. Each of ``emitted`` has ``kind``, ``message``, ``logical_id``, ``state`` and
    ``data``."""
    rows = []
    for e in emitted:
        deployment.last_event_seq += 1
        rows.append(
            DeploymentEvent(
                deployment=deployment,
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
    transaction.on_commit(lambda: publish_many(deployment.pk, payloads))
    return saved
