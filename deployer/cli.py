"""What the deploy/destroy commands share: waiting for a deployment and its JSON summary."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.management.base import CommandError
from django.db import connection

from deployer import events
from deployer.models import Deployment
from gantry.db import is_transient_db_error


def summary(deployment: Deployment) -> dict[str, Any]:
    deployment.refresh_from_db()
    return {
        "id": deployment.pk,
        # The value of the gantry:deployment tag on every resource it made.
        "identity": deployment.identity,
        "status": deployment.status,
        "reason": deployment.reason,
        "started_at": deployment.started_at.isoformat() if deployment.started_at else None,
        "finished_at": deployment.finished_at.isoformat() if deployment.finished_at else None,
        "resources": {
            r.logical_id: r.physical_id
            for r in deployment.resources.order_by("position")
            if r.physical_id and r.state not in ("deleted",)
        },
    }


def wait(deployment: Deployment, *, timeout: float, on_event=None) -> Deployment:
    """Follow the deployment until it leaves the active statuses.

    The database is the truth and is read after every push on the deployment's event channel
    (or every second when nothing comes), so the command returns as soon as the last event is
    published. This runs in the CLI process, not in a worker: no worker slot waits here.
    """
    deadline = time.monotonic() + timeout
    seen = 0
    pubsub = events.subscribe(deployment.pk)
    try:
        while True:
            try:
                deployment.refresh_from_db()
                if on_event is not None:
                    for event in deployment.events.filter(seq__gt=seen).order_by("seq"):
                        seen = event.seq
                        on_event(event)
            except Exception as exc:
                # The database restarting or failing over under a waiting CLI is not the
                # deployment's end: look again on a fresh connection (the worker goes on).
                if not is_transient_db_error(exc) or time.monotonic() > deadline:
                    raise
                connection.close()
                pubsub.get_message(timeout=1.0)
                continue
            if deployment.status not in Deployment.ACTIVE:
                return deployment
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"deployment {deployment.pk} is still {deployment.status} after {timeout:.0f} s"
                )
            pubsub.get_message(timeout=1.0)
    finally:
        pubsub.close()


def report(
    command,
    deployment: Deployment,
    opts: dict[str, Any],
    *,
    success: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """The end of `deploy` and `destroy`: wait if asked (printing events unless --json), print
    the summary (the last line is the JSON object with --json), exit 1 unless ``success``."""
    if opts["wait"]:
        printer = (
            None if opts["json"] else (lambda e: command.stdout.write(f"  #{e.seq} {e.message}"))
        )
        try:
            wait(deployment, timeout=opts["timeout"], on_event=printer)
        except TimeoutError as exc:
            raise CommandError(str(exc), returncode=1) from None
    out = {**summary(deployment), **(extra or {})}
    command.stdout.write(
        json.dumps(out) if opts["json"] else f"status: {out['status']} {out['reason']}"
    )
    if opts["wait"] and out["status"] != success:
        sys.exit(1)
