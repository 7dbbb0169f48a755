"""Celery tasks: thin wrappers around the engine and the reaper. They take ids, never rows."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from typing import Any

import redis
from celery import Task, shared_task
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.conf import settings
from django.db import connection, transaction

from deployer import engine, services
from deployer.errors import backoff
from gantry.db import is_transient_db_error
from gantry.request_context import bind
from gantry.shared_redis import redis_client

logger = logging.getLogger(__name__)

#: A message redelivered more often than this (a pass that keeps killing its worker) is
#: dropped; the reaper re-kicks the deployment with a fresh token after a pause.
MAX_DELIVERIES = 5


@worker_process_init.connect
def _warm_up(**_: object) -> None:
    """Pay the one-off costs (handler imports, AWS service models) when a worker process
    starts, not inside the first deployment's first pass."""
    import importlib

    from deployer.aws import warm_up
    from deployer.resources import MODULES

    for module in set(MODULES.values()):
        importlib.import_module(f"deployer.resources.{module}")
    warm_up(
        region=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=services.sandbox_endpoint() or None,
    )


#: The log context each running task entered (task id -> its ``bind`` block), left when the
#: task ends.
_task_contexts: dict[str, contextlib.ExitStack] = {}


def _deployment_of(task: Task, args: Any, kwargs: Any) -> int | None:
    """The ``deployment_id`` argument of the task call, if the task takes one."""
    try:
        call = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return None
    value = call.arguments.get("deployment_id")
    return value if isinstance(value, int) else None


@task_prerun.connect
def _enter_task_context(
    task_id: str | None = None,
    task: Task | None = None,
    args: Any = None,
    kwargs: Any = None,
    **_: object,
) -> None:
    """Every line a task logs, Celery's own "Task ... succeeded/raised" included, names the
    task (its id as the request id), the "worker" channel and, for a task about one
    deployment, that deployment: one search finds a deployment's lines across all workers."""
    if task_id is None or task is None:
        return
    stack = contextlib.ExitStack()
    stack.enter_context(
        bind(request_id=task_id, deployment_id=_deployment_of(task, args, kwargs), channel="worker")
    )
    _task_contexts[task_id] = stack


@task_postrun.connect
def _leave_task_context(task_id: str | None = None, **_: object) -> None:
    stack = _task_contexts.pop(task_id or "", None)
    if stack is not None:
        stack.close()


#: The longest wait between two retries of a pass that keeps meeting a database error.
DB_RETRY_CAP = 30.0


def _deliveries(task_id: str) -> int:
    try:
        client = redis_client()
        key = f"gantry:deliveries:{task_id}"
        count = client.incr(key)
        client.expire(key, 3600)
        return int(count)
    except redis.RedisError:
        return 1


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=None
)
def advance(self, deployment_id: int, token: str) -> None:
    # Counted per delivery of this message, not per retry below (a retry keeps the task id).
    if _deliveries(f"{self.request.id}:{self.request.retries}") > MAX_DELIVERIES:
        logger.error(
            "deployment %s: message %s delivered too often; dropping it",
            deployment_id,
            self.request.id,
        )
        return
    try:
        engine.deployments_advance(deployment_id=deployment_id, token=token, schedule=_enqueue_next)
    except Exception as exc:
        if not is_transient_db_error(exc):
            raise
        # The connection may be broken (a restarted server): the retry opens a new one.
        connection.close()
        delay = backoff(self.request.retries + 1, cap=DB_RETRY_CAP)
        logger.warning(
            "deployment %s: the database failed the pass (%s); retrying in %.1f s",
            deployment_id,
            exc,
            delay,
        )
        raise self.retry(countdown=delay) from exc


def _enqueue_next(nxt: engine.Next) -> None:
    """The next pass of a deployment, enqueued as soon as its pass is recorded."""
    advance.apply_async((nxt.deployment_id, nxt.token), countdown=max(0.0, nxt.delay))


@shared_task(acks_late=True, ignore_result=True)
def reap() -> None:
    services.deployments_reap()


@shared_task(acks_late=True, ignore_result=True)
def check_drift(deployment_id: int) -> None:
    """One deployment's drift check (the page's and the API's "Check drift now", and beat's)."""
    from deployer.models import Deployment

    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None:
        return
    try:
        services.deployment_drift_check(deployment=deployment)
    except services.DeploymentBusy as exc:
        logger.info("deployment %s: drift not checked: %s", deployment_id, exc)


@shared_task(acks_late=True, ignore_result=True)
def check_drift_everywhere() -> None:
    """Beat: every live deployment whose last drift check is older than
    GANTRY_DRIFT_INTERVAL gets one (spread over the workers, one task each)."""
    interval = float(getattr(settings, "GANTRY_DRIFT_INTERVAL", 3600))
    if interval <= 0:
        return
    for deployment_id in services.deployments_drift_due(interval=interval):
        check_drift.delay(deployment_id)


def schedule(deployment_id: int, token: str, delay: float) -> None:
    """Enqueue the next pass once the current transaction commits."""
    transaction.on_commit(
        lambda: advance.apply_async((deployment_id, token), countdown=max(0.0, delay))
    )
