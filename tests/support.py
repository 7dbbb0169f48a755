"""Small helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.db import connection

from deployer import events
from deployer.engine import resolve
from deployer.models import Deployment
from deployer.resources import handler_for
from deployer.resources.base import AwsContext, Failed, Gone, Pending, Ready
from designer.graph import ResourceGraph, ResourceNode


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


class HandlerDriver:
    """Drives a plan's nodes through the resource handlers one call at a time, as the engine
    would: Refs resolved by the engine's own ``resolve`` from the ids and Ready attributes
    recorded so far (``ids``, ``attributes``; tests may seed them)."""

    def __init__(self, ctx: AwsContext, graph: ResourceGraph):
        self.ctx = ctx
        self.graph = graph
        self.ids: dict[str, str] = {}
        self.attributes: dict[str, dict[str, Any]] = {}

    def node(self, logical_id: str) -> ResourceNode:
        return self.graph[logical_id]

    def handler(self, logical_id: str) -> Any:
        return handler_for(self.graph[logical_id].type)

    def props(self, logical_id: str) -> dict[str, Any]:
        records = {
            lid: SimpleNamespace(
                physical_id=self.ids.get(lid, ""), attributes=self.attributes.get(lid, {})
            )
            for lid in {*self.ids, *self.attributes}
        }
        return resolve(self.graph[logical_id].properties, records)

    def create(self, logical_id: str) -> str:
        self.ids[logical_id] = self.handler(logical_id).create(
            self.ctx, self.graph[logical_id], self.props(logical_id)
        )
        return self.ids[logical_id]

    def check(self, logical_id: str) -> Ready | Pending | Failed:
        return self.handler(logical_id).check_ready(
            self.ctx, self.graph[logical_id], self.ids[logical_id]
        )

    def settle(self, logical_id: str) -> tuple[Ready, list[str]]:
        """check_ready until it stops being Pending (moto settles at once; DNS and public-IP
        convergence take a few passes). Returns the Ready and the pending reasons."""
        reasons: list[str] = []
        for _ in range(6):
            result = self.check(logical_id)
            if not isinstance(result, Pending):
                break
            reasons.append(result.reason)
        assert isinstance(result, Ready), (result, reasons)
        self.attributes[logical_id] = result.attributes
        return result, reasons

    def up(self, *logical_ids: str) -> None:
        for logical_id in logical_ids:
            self.create(logical_id)
            self.settle(logical_id)

    def find(self, logical_id: str) -> list[str]:
        return self.handler(logical_id).find(
            self.ctx, self.graph[logical_id], self.props(logical_id)
        )

    def delete(self, logical_id: str) -> None:
        self.handler(logical_id).delete(self.ctx, self.graph[logical_id], self.ids[logical_id])

    def check_gone(self, logical_id: str) -> Gone | Pending:
        return self.handler(logical_id).check_gone(
            self.ctx, self.graph[logical_id], self.ids[logical_id]
        )

    def destroy(self, logical_id: str) -> None:
        """delete -> check_gone is Gone -> a second delete is harmless and still Gone."""
        self.delete(logical_id)
        assert isinstance(self.check_gone(logical_id), Gone)
        self.delete(logical_id)
        assert isinstance(self.check_gone(logical_id), Gone)
