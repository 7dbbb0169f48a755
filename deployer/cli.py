"""What the deploy/destroy commands share: waiting for a deployment and its JSON summary."""

from __future__ import annotations

import time
from typing import Any

from deployer.models import Deployment


def summary(deployment: Deployment) -> dict[str, Any]:
    deployment.refresh_from_db()
    return {
        "id": deployment.pk,
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
    """Poll the database (the truth) until the deployment leaves the active statuses.

    This runs in the CLI process, not in a worker, so waiting here holds no worker slot.
    """
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        deployment.refresh_from_db()
        if on_event is not None:
            for event in deployment.events.filter(seq__gt=seen).order_by("seq"):
                seen = event.seq
                on_event(event)
        if deployment.status not in Deployment.ACTIVE:
            return deployment
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"deployment {deployment.pk} is still {deployment.status} after {timeout:.0f} s"
            )
        time.sleep(0.5)
