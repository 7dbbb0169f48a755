"""Health probes for load balancers and orchestrators.

- ``GET /healthz``: the process is up and serving (200 ``{"status": "ok"}``). It touches
  nothing else, so a database outage does not make every web process look dead and get
  restarted.
- ``GET /readyz``: this instance can do its job: the database answers, Redis (cache, events,
  broker) answers, and at least one Celery worker consuming Gantry's queue replies within a
  second. 200 with each check's result, or 503 naming what failed. A check reports only the
  kind of error (``OperationalError``, ...); the details, which can name hosts and users, go
  to the log.

``HealthProbeMiddleware`` answers both before the session, authentication and Django's host
check: a load balancer probes a container by its IP address over plain HTTP, without a cookie,
and neither Host header nor login applies to a probe. It sits after ``SecurityMiddleware``,
whose ``SECURE_REDIRECT_EXEMPT`` keeps the probes from being redirected to HTTPS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse

from gantry.middleware import SyncAndAsyncMiddleware

logger = logging.getLogger(__name__)

#: Seconds a worker has to answer, and the budget of the whole readiness check.
WORKER_REPLY_TIMEOUT = 1.0
READY_DEADLINE = 3.0


class NotReady(Exception):
    """A check ran and found its dependency unusable (the message is safe to show)."""


def check_database() -> dict[str, object]:
    """``SELECT 1``, and this installation's id (the ``gantry:installation`` tag value on every
    resource it creates), so an operator sees which installation answers."""
    from deployer.models import Installation

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        installation = Installation.objects.values_list("installation_id", flat=True).first()
        return {"installation": installation} if installation else {}
    finally:
        # The check runs in a thread of its own: leave no connection behind in it.
        connection.close()


def check_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def check_worker() -> None:
    """A worker consuming the queue deployments are sent to answers within a second.

    ``active_queues`` rather than ``ping``: beat answers ``ping`` too, and a worker on another
    queue would not run a deployment.
    """
    from celery_app import app

    queue = app.conf.task_default_queue
    # A connection of its own, from the current broker URL, tried once: a broker that is down
    # fails the check now instead of being retried for minutes.
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
        replies = (
            app.control.inspect(timeout=WORKER_REPLY_TIMEOUT, connection=conn).active_queues() or {}
        )
    if not any(q.get("name") == queue for queues in replies.values() for q in queues or ()):
        raise NotReady(
            f"no worker consuming queue {queue!r} answered within {WORKER_REPLY_TIMEOUT:g} s"
        )


CHECKS: dict[str, Callable[[], dict[str, object] | None]] = {
    "database": check_database,
    "redis": check_redis,
    "worker": check_worker,
}


def readiness() -> dict[str, dict[str, object]]:
    """Run every check at once (the slowest, not the sum, sets the latency) within
    ``READY_DEADLINE``; a check still running then counts as failed."""
    executor = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz")
    futures = {name: executor.submit(check) for name, check in CHECKS.items()}
    try:
        wait(futures.values(), timeout=READY_DEADLINE)
    finally:
        # A check stuck on a black-holed host is left to its own socket timeout.
        executor.shutdown(wait=False, cancel_futures=True)
    results: dict[str, dict[str, object]] = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = {"ok": False, "error": f"no answer within {READY_DEADLINE:g} s"}
            logger.warning("readiness: %s did not answer within %s s", name, READY_DEADLINE)
            continue
        exc = future.exception()
        if exc is None:
            results[name] = {"ok": True, **(future.result() or {})}
        elif isinstance(exc, NotReady):
            results[name] = {"ok": False, "error": str(exc)}
            logger.warning("readiness: %s: %s", name, exc)
        else:
            results[name] = {"ok": False, "error": f"unreachable ({type(exc).__name__})"}
            logger.warning("readiness: %s failed", name, exc_info=exc)
    return results


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    checks = readiness()
    failed = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}
    return JsonResponse(body, status=503 if failed else 200)


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
}


class HealthProbeMiddleware(SyncAndAsyncMiddleware):
    """Answers ``/healthz`` and ``/readyz`` itself (see the module docstring for why here).
    Works in both the sync and the async stack; the readiness checks, which block, run in a
    thread of their own under ASGI."""

    def sync_call(self, request: HttpRequest):
        probe = PROBES.get(request.path)
        if probe is None:
            return self.get_response(request)
        return _answer(probe, request)

    async def async_call(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path)
        if probe is None:
            return await self.get_response(request)
        return await sync_to_async(_answer, thread_sensitive=False)(probe, request)


def _answer(probe: Callable[[HttpRequest], HttpResponse], request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    response = probe(request)
    response["Cache-Control"] = "no-store"
    return response
