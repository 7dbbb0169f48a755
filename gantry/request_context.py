"""Who is asking, and under which request id: the context that logs and audit entries carry.

``RequestContextMiddleware`` gives every request an id (the caller's ``X-Request-ID`` when it is
a sane token, so a proxy's id follows the request through; a fresh one otherwise), puts it on
``request.request_id`` and in a context variable, and echoes it in the response's
``X-Request-ID`` header. Celery tasks and management commands set the same variables
(``bind``), so a log line or an audit entry written anywhere names the request or task it came
from and, where there is one, the deployment.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest

from gantry.db_connections import db_release
from gantry.middleware import SyncAndAsyncMiddleware

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
deployment_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "deployment_id", default=None
)
#: The caller's address for the request being served ("" outside a request).
client_ip_var: contextvars.ContextVar[str] = contextvars.ContextVar("client_ip", default="")
#: How the action arrived: "web" (pages), "api" (/api/), "cli" (management commands, the
#: default outside a request) or "worker" (Celery tasks).
channel_var: contextvars.ContextVar[str] = contextvars.ContextVar("channel", default="cli")

#: Work to do once the response has been sent (None outside a request: do it at once).
after_response_var: contextvars.ContextVar[list[Callable[[], None]] | None] = (
    contextvars.ContextVar("after_response", default=None)
)

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
log = logging.getLogger("gantry.request")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return request_id_var.get()


def current_deployment_id() -> int | None:
    return deployment_id_var.get()


def current_client_ip() -> str:
    return client_ip_var.get()


def current_channel() -> str:
    return channel_var.get()


@contextlib.contextmanager
def bind(
    *,
    request_id: str | None = None,
    deployment_id: int | None = None,
    channel: str | None = None,
    client_ip: str | None = None,
) -> Iterator[None]:
    """Set the request id, deployment id, channel and/or client address inside the block."""
    tokens = []
    for var, value in (
        (request_id_var, request_id),
        (deployment_id_var, deployment_id),
        (channel_var, channel),
        (client_ip_var, client_ip),
    ):
        if value is not None:
            tokens.append((var, var.set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def after_response(fn: Callable[[], None]) -> None:
    """Run ``fn`` after the client has its whole answer (when the response is closed; under
    ASGI in a worker thread, so the connection's next request is not held up either), with
    the request's context (id, address, channel) as it is now; outside a request, at once.

    For work whose cost must not show in the answer's timing: the audit entry of a refused
    lookup would otherwise make another team's id answer its 404 measurably later than an
    id that does not exist."""
    pending = after_response_var.get()
    if pending is None:
        fn()
        return
    context = contextvars.copy_context()
    pending.append(lambda: context.run(fn))


def _run_after_response(pending: list[Callable[[], None]]) -> None:
    for fn in pending:
        try:
            fn()
        except Exception:  # one failure must not skip the rest (Django drops closer errors)
            log.exception("work after the response failed")
    pending.clear()


#: Under ASGI the work runs here, off the request: uvicorn serves the next request on a
#: kept-alive connection only once this one's handler has returned, so work done inline at
#: close would delay that next answer instead (the timing would move, not go away).
_AFTER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gantry-after-response")
#: More than this waiting, and a request does its own work at close (back-pressure).
_AFTER_BACKLOG = threading.BoundedSemaphore(500)


def _submit_after_response(pending: list[Callable[[], None]]) -> None:
    if not _AFTER_BACKLOG.acquire(blocking=False):
        _run_after_response(pending)
        return

    def job() -> None:
        try:
            _run_after_response(pending)
        finally:
            db_release()
            _AFTER_BACKLOG.release()

    _AFTER.submit(job)


def _schedule_after_response(request, response, pending: list[Callable[[], None]]) -> None:
    if not pending:
        return
    # Django closes the response once its last byte is sent (ASGI), or the WSGI server (and
    # the test client) does: its closers run then, before request_finished closes the
    # database connection.
    if isinstance(request, ASGIRequest):
        response._resource_closers.append(lambda: _submit_after_response(pending))
    else:
        response._resource_closers.append(lambda: _run_after_response(pending))


def client_ip(request) -> str:
    """The caller's address: ``REMOTE_ADDR``, or behind ``TRUSTED_PROXY_COUNT`` proxies the
    address the outermost trusted proxy saw (the n-th entry from the right of
    ``X-Forwarded-For``; entries further left are the client's to forge)."""
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops][:45]
    return (request.META.get("REMOTE_ADDR") or "")[:45]


def _request_id_for(request) -> str:
    offered = request.headers.get("X-Request-ID", "")
    return offered if _SANE_ID.match(offered) else new_request_id()


def _enter(request) -> list:
    request.request_id = _request_id_for(request)
    channel = "api" if request.path.startswith("/api/") else "web"
    return [
        (request_id_var, request_id_var.set(request.request_id)),
        (client_ip_var, client_ip_var.set(client_ip(request))),
        (channel_var, channel_var.set(channel)),
        (after_response_var, after_response_var.set([])),
    ]


def _leave(tokens: list) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


class RequestContextMiddleware(SyncAndAsyncMiddleware):
    def sync_call(self, request):
        tokens = _enter(request)
        pending = after_response_var.get()
        try:
            response = self.get_response(request)
        finally:
            _leave(tokens)
        response["X-Request-ID"] = request.request_id
        _schedule_after_response(request, response, pending)
        return response

    async def async_call(self, request):
        tokens = _enter(request)
        pending = after_response_var.get()
        try:
            response = await self.get_response(request)
        finally:
            _leave(tokens)
        response["X-Request-ID"] = request.request_id
        _schedule_after_response(request, response, pending)
        return response
