"""Small helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

from django.db import connection

from deployer import events
from deployer.models import Deployment


def subprocess_database_url() -> str:
    """A ``DATABASE_URL`` for subprocesses (workers, manage.py, uvicorn) that points at the
    test database this process is using."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def finish_as_worker(deployment: Deployment, status: str = "succeeded") -> Deployment:
    """What the worker records when a deployment ends (no worker runs in the calling test):
    the terminal status, and the status event that ends its stream."""
    deployment.status = status
    deployment.save(update_fields=["status"])
    events.append(deployment, kind="status", message=status, state=status)
    return deployment
