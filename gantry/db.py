"""Database errors that pass, told apart from those that do not.

A locked SQLite file, a connection lost or refused (PostgreSQL restarting, a failover), a
serialization failure: the same work done again a moment later succeeds. The reconciler's task
retries a pass that meets one, with backoff, and a waiting CLI looks again; anything else is a
bug and is raised.
"""

from __future__ import annotations

from django.db import DatabaseError, InterfaceError, OperationalError

TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


def is_transient_db_error(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        return True
    # psycopg reports a server shut down mid-query as a plain DatabaseError in some paths.
    return isinstance(exc, DatabaseError) and "terminat" in str(exc).lower()
