"""Database connections for code that waits: hold one only while a query runs.

Under ASGI a request's ``sync_to_async`` calls run in a thread of the request's own, and
Django keeps that thread's connection open until the response is closed. For an ordinary
request that is milliseconds; for a live event stream it is as long as someone watches, so
fifty viewers held fifty PostgreSQL connections doing nothing. :func:`db_briefly` runs one
piece of database work and closes the connection at once, in the thread that opened it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def db_release() -> None:
    """Close this thread's database connections, except one inside a transaction (that one
    belongs to the caller's ``atomic`` block, e.g. a test's, and must stay)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def db_briefly(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` that releases its connection when it returns (see :func:`db_release`)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            db_release()

    return run
