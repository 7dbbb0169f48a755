"""The reconciler: one pass advances one deployment, then it schedules the next pass.

A pass runs under the deployment's row lock (``SELECT ... FOR UPDATE SKIP LOCKED``): a duplicate
delivery finds the row locked, or finds its run token stale, and does nothing. In a pass every
node whose dependencies are ready is started (found by its tags, or created), every node AWS is
still working on is checked once, and what was seen is written down. Nothing here sleeps: the
pass returns how long until something is worth looking at again, and the task re-enqueues
itself with that countdown, so a worker slot is never held while AWS works.

Destroy (and rollback) walks the same graph in reverse: a node is deleted once everything that
depends on it is gone, and ``DependencyViolation`` is waited out with backoff, saying why.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployer import events
from deployer.aws import client_factory, retries_seen
from deployer.errors import ALREADY_EXISTS, Fatal, Retry, backoff, classify, error_code
from deployer.models import Deployment, ResourceRecord
from deployer.resources import handler_for
from deployer.resources.base import AwsContext, Failed, Pending, Ready
from designer.graph import Ref, ResourceGraph, ResourceNode
from designer.plan import plan
from designer.spec import validate_spec

logger = logging.getLogger(__name__)

S = Deployment.Status
R = ResourceRecord.State


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def graph_for(deployment: Deployment) -> ResourceGraph:
    """The graph of the deployment's spec snapshot (plan is pure, so this is the same graph
    that was shown before Deploy was pressed)."""
    result = validate_spec(deployment.spec)
    if result.spec is None:  # the snapshot was valid when taken; rules may have tightened since
        raise ValueError("the deployment's spec no longer validates: " + str(result.to_json()))
    return plan(result.spec)


def context_for(deployment: Deployment) -> AwsContext:
    target = deployment.target
    return AwsContext(
        deployment_tag=deployment.tag,
        region=deployment.spec.get("region") or target.region,
        client=client_factory(
            region=deployment.spec.get("region") or target.region,
            endpoint_url=target.endpoint_url or None,
            role_arn=target.role_arn or None,
            external_id=target.external_id or None,
        ),
        spec_tags=dict(deployment.spec.get("tags") or {}),
    )


class Unresolvable(LookupError):
    """A Ref points at a node that has no physical id (it was never created)."""


def resolve(value: Any, records: dict[str, ResourceRecord]) -> Any:
    """Replace every Ref with the physical id or attribute it names."""
    if isinstance(value, Ref):
        record = records[value.logical_id]
        if value.attribute == "Id":
            if not record.physical_id:
                raise Unresolvable(value.logical_id)
            return record.physical_id
        if value.attribute not in record.attributes:
            raise Unresolvable(f"{value.logical_id}.{value.attribute}")
        return record.attributes[value.attribute]
    if isinstance(value, dict):
        return {k: resolve(v, records) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, records) for v in value]
    return value


def poll_delay(record: ResourceRecord, now: datetime) -> float:
    """How long until the next look at a resource AWS is still working on: a tenth of the time
    waited so far (GANTRY_POLL_FRACTION), between the configured bounds, so a wait is noticed
    within about 10 % of its length and neither AWS's API quota nor the worker is spent on
    looking."""
    since = record.delete_started_at or record.started_at or now
    waited = max(0.0, (now - since).total_seconds())
    low, high = _setting("GANTRY_POLL_MIN", 0.5), _setting("GANTRY_POLL_MAX", 10.0)
    return min(high, max(low, waited / _setting("GANTRY_POLL_FRACTION", 10)))


@dataclass
class Step:
    """What the AWS half of one node's step saw (see :meth:`Pass.aws_step`)."""

    physical_id: str
    phase: str
    started: str = ""  # "created" or "adopted" when this step started the node
    clean_create: bool = False  # created by a call botocore did not have to retry
    extras: list[str] = field(default_factory=list)  # twins found and deleted
    reasons: list[str] = field(default_factory=list)  # new pending reasons, in order
    result: Ready | Pending | Failed | None = None
    error: Exception | None = None


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    """Threads for the AWS calls of a wave, one pool per process (a pool made before a prefork
    worker forks has no threads in the child)."""
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = ThreadPoolExecutor(
            max_workers=int(_setting("GANTRY_AWS_THREADS", 8)), thread_name_prefix="gantry-aws"
        )
    return _pools[pid]


@dataclass
class Pass:
    deployment: Deployment
    records: dict[str, ResourceRecord]
    graph: ResourceGraph
    ctx: AwsContext
    now: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.monotonic)
    changed: set[str] = field(default_factory=set)
    progressed: bool = False

    # --- bookkeeping ---------------------------------------------------------------------------

    def event(
        self, kind: str, message: str, record: ResourceRecord | None = None, **data: Any
    ) -> None:
        events.append(
            self.deployment,
            kind=kind,
            message=message,
            logical_id=record.logical_id if record else "",
            state=record.state if record else self.deployment.status,
            data=data,
        )

    def set_state(self, record: ResourceRecord, state: str, message: str, **data: Any) -> None:
        record.state = state
        record.waiting_reason = ""
        self.changed.add(record.logical_id)
        self.progressed = True
        self.event("resource", message, record, physical_id=record.physical_id, **data)

    def over_budget(self) -> bool:
        return time.monotonic() - self.started > _setting("GANTRY_PASS_BUDGET", 1.0)

    def label(self, node: ResourceNode) -> str:
        return f"{node.meta.get('label') or node.logical_id} ({node.logical_id})"

    def handle_error(
        self, node: ResourceNode, record: ResourceRecord, exc: Exception, doing: str
    ) -> bool:
        """Record an error; True when the node has failed for good."""
        outcome = classify(exc)
        record.attempts += 1
        self.changed.add(record.logical_id)
        if isinstance(outcome, Retry):
            limit = _setting("GANTRY_MAX_RETRIES", 12)
            patience = _setting("GANTRY_DELETE_PATIENCE", 7200.0)
            since = record.delete_started_at or record.started_at or self.now
            waited = (self.now - since).total_seconds()
            if (not outcome.patient and record.attempts > limit) or waited > patience:
                outcome = Fatal(f"Gave up after {record.attempts} attempts: {outcome.reason}")
            else:
                delay = outcome.delay if outcome.delay is not None else backoff(record.attempts)
                record.next_check_at = self.now + timedelta(seconds=delay)
                if record.waiting_reason != outcome.reason:
                    record.waiting_reason = outcome.reason
                    self.event(
                        "waiting",
                        f"{self.label(node)}: {outcome.reason} (retry in {delay:.0f} s)",
                        record,
                    )
                return False
        logger.warning(
            "deployment %s: %s failed to %s: %s", self.deployment.tag, node.logical_id, doing, exc
        )
        record.last_error = outcome.text()
        self.set_state(record, R.FAILED, f"{self.label(node)} failed to {doing}: {outcome.text()}")
        return True

    # --- deploy --------------------------------------------------------------------------------

    def deploy(self) -> bool:
        """Start and check nodes in waves; True when a node failed for good.

        Each wave takes every node that can move now (pending with all dependencies ready, or
        creating and due for a look), does its AWS calls in parallel threads (no database work
        there), then records the outcomes in order. Nodes that became ready unlock the next
        wave within the same pass, until the pass's time budget is spent.
        """
        looked_at: set[str] = set()
        while not self.over_budget():
            wave = []
            for node in self.graph.topological_order():
                record = self.records[node.logical_id]
                due = record.next_check_at is None or record.next_check_at <= self.now
                if not due or node.logical_id in looked_at:
                    continue
                if record.state == R.CREATING or (
                    record.state == R.PENDING
                    and all(self.records[d].state == R.READY for d in node.depends_on)
                ):
                    wave.append(node)
            if not wave:
                return False
            jobs = []
            for node in wave:
                record = self.records[node.logical_id]
                if record.state == R.PENDING:
                    record.started_at = record.started_at or self.now
                try:
                    props = resolve(node.properties, self.records)
                except Unresolvable as exc:
                    props = exc
                jobs.append((node, record.state, record.physical_id, record.waiting_reason, props))
            failed = False
            for (node, *_), step in zip(jobs, _pool().map(self.aws_step, jobs), strict=True):
                looked_at.add(node.logical_id)
                # Every step of the wave is recorded, failed or not: the others may have
                # created resources that a rollback must know about.
                failed = self.apply(node, self.records[node.logical_id], step) or failed
            if failed:
                return True
        return False

    def aws_step(self, job: tuple) -> Step:
        """The AWS half of a step, run in a pool thread: find or create, then look. It touches
        no record and no database; :meth:`apply` does that in the pass's own thread."""
        node, state, physical_id, last_reason, props = job
        handler = handler_for(node.type)
        step = Step(
            physical_id=physical_id, phase="create" if state == R.PENDING else "become ready"
        )
        try:
            if isinstance(props, Exception):
                raise props
            if state == R.PENDING:
                found = handler.find(self.ctx, node, props)
                if found:
                    step.physical_id, step.started = found[0], "adopted"
                    step.extras += self.delete_twins(node, found[1:])
                else:
                    with retries_seen() as seen:
                        try:
                            step.physical_id = handler.create(self.ctx, node, props)
                        except ClientError as exc:
                            step.physical_id = self.adopt_after_conflict(node, props, exc)
                    step.started, step.clean_create = "created", not seen.any
                step.phase = "become ready"
            # A handler that made progress itself (its reason changed: a configuration step such
            # as revoking a default rule) is looked at again at once rather than after a poll.
            for _ in range(3):
                result = handler.check_ready(self.ctx, node, step.physical_id)
                if isinstance(result, Ready) and not step.clean_create:
                    # A create whose response was lost and retried can leave a twin. A create
                    # answered on its first try cannot, and the find before it ruled out others.
                    found = handler.find(self.ctx, node, props)
                    step.extras += self.delete_twins(
                        node, [f for f in found if f != step.physical_id]
                    )
                if not isinstance(result, Pending) or result.reason in (last_reason, *step.reasons):
                    break
                step.reasons.append(result.reason)
            step.result = result
        except Exception as exc:  # noqa: BLE001 - classified in apply(): retry or a sentence
            step.error = exc
        return step

    def adopt_after_conflict(self, node: ResourceNode, props: dict, exc: ClientError) -> str:
        """A create refused because the name is taken: when botocore retried a create whose
        first response was lost, the resource that holds the name is this node's own (it
        carries the node's tags, set in the create call), so it is adopted. Anyone else's
        resource is still refused."""
        if error_code(exc) not in ALREADY_EXISTS:
            raise exc
        found = handler_for(node.type).find(self.ctx, node, props)
        if not found:
            raise exc
        return found[0]

    def delete_twins(self, node: ResourceNode, extras: list[str]) -> list[str]:
        handler = handler_for(node.type)
        for extra in extras:
            handler.delete(self.ctx, node, extra)
        return list(extras)

    def apply(self, node: ResourceNode, record: ResourceRecord, step: Step) -> bool:
        """Record what a step saw; True when the node failed for good."""
        if step.started:
            record.physical_id = step.physical_id
            record.next_check_at = self.now
            verb = (
                f"already exists as {step.physical_id}; adopting it"
                if step.started == "adopted"
                else f"creating {step.physical_id}"
            )
            self.set_state(record, R.CREATING, f"{self.label(node)}: {verb}")
        for extra in step.extras:
            self.event(
                "duplicate",
                f"{self.label(node)}: found a second resource {extra} with the same tags "
                f"(a retried create whose first response was lost); keeping {record.physical_id} "
                f"and deleting {extra}",
                record,
                duplicate=extra,
            )
        if step.error is not None:
            return self.handle_error(node, record, step.error, step.phase)
        result = step.result
        if isinstance(result, Ready):
            record.attributes = {**record.attributes, **result.attributes}
            record.ready_at = timezone.now()
            elapsed = (record.ready_at - (record.started_at or self.now)).total_seconds()
            self.set_state(record, R.READY, f"{self.label(node)} is ready ({elapsed:.1f} s)")
            return False
        if isinstance(result, Failed):
            record.last_error = result.reason
            self.set_state(record, R.FAILED, f"{self.label(node)} failed: {result.reason}")
            return True
        assert isinstance(result, Pending)  # noqa: S101
        record.next_check_at = self.now + timedelta(seconds=poll_delay(record, self.now))
        for reason in step.reasons:
            self.event("waiting", f"{self.label(node)}: {reason}", record)
        if record.waiting_reason != result.reason:
            record.waiting_reason = result.reason
            self.changed.add(record.logical_id)
        return False

    # --- destroy -------------------------------------------------------------------------------

    def destroy(self) -> bool:
        """Delete nodes in reverse order; True when a node cannot be deleted."""
        dependents: dict[str, list[str]] = {n.logical_id: [] for n in self.graph}
        for node in self.graph:
            for dep in node.depends_on:
                dependents[dep].append(node.logical_id)
        for node in reversed(self.graph.topological_order()):
            record = self.records[node.logical_id]
            if record.state == R.DELETED:
                continue
            if any(self.records[d].state != R.DELETED for d in dependents[node.logical_id]):
                continue
            due = record.next_check_at is None or record.next_check_at <= self.now
            if not due:
                continue
            if record.state == R.DELETING:
                if self.check_gone(node, record):
                    return True
            elif not self.over_budget() and self.start_delete(node, record):
                return True
        return False

    def start_delete(self, node: ResourceNode, record: ResourceRecord) -> bool:
        handler = handler_for(node.type)
        record.delete_started_at = record.delete_started_at or self.now
        try:
            ids = [record.physical_id] if record.physical_id else []
            # A create may have taken effect without its answer being recorded (a worker killed
            # mid-pass, a lost response): look by tags for every node that could exist.
            try:
                props = resolve(node.properties, self.records)
            except Unresolvable:
                props = None  # a dependency never existed, so neither did this node
            if props is not None:
                ids += [i for i in handler.find(self.ctx, node, props) if i not in ids]
            if not ids:
                record.deleted_at = self.now
                self.set_state(
                    record, R.DELETED, f"{self.label(node)} was never created; nothing to delete"
                )
                return False
            for physical_id in ids:
                handler.delete(self.ctx, node, physical_id)
        except Exception as exc:  # noqa: BLE001
            return self.handle_error(node, record, exc, "delete")
        record.physical_id = ids[0]
        record.attributes = {**record.attributes, "_deleting": ids}
        record.next_check_at = self.now
        self.set_state(record, R.DELETING, f"Deleting {self.label(node)}: {', '.join(ids)}")
        return self.check_gone(node, record)

    def check_gone(self, node: ResourceNode, record: ResourceRecord) -> bool:
        handler = handler_for(node.type)
        pending: list[str] = []
        reason = ""
        try:
            for physical_id in record.attributes.get("_deleting") or [record.physical_id]:
                result = handler.check_gone(self.ctx, node, physical_id)
                if isinstance(result, Pending):
                    pending.append(physical_id)
                    reason = result.reason
        except Exception as exc:  # noqa: BLE001
            return self.handle_error(node, record, exc, "delete")
        if not pending:
            record.deleted_at = self.now
            record.attributes = {k: v for k, v in record.attributes.items() if k != "_deleting"}
            self.set_state(record, R.DELETED, f"{self.label(node)} is deleted")
            return False
        record.next_check_at = self.now + timedelta(seconds=poll_delay(record, self.now))
        if record.waiting_reason != reason:
            record.waiting_reason = reason
            self.changed.add(record.logical_id)
            self.event("waiting", f"{self.label(node)}: {reason}", record)
        return False

    # --- scheduling ----------------------------------------------------------------------------

    def next_delay(self, states: tuple[str, ...]) -> float:
        """Seconds until the earliest node in ``states`` is due (0 when work is waiting now)."""
        due = [
            r.next_check_at for r in self.records.values() if r.state in states and r.next_check_at
        ]
        if self.over_budget():
            return 0.0
        if not due:
            return 0.0
        return max(0.0, (min(due) - timezone.now()).total_seconds())


def _finish(dep: Deployment, status: str, reason: str, now: datetime) -> None:
    dep.status = status
    dep.reason = reason
    dep.finished_at = now
    events.append(dep, kind="status", message=reason, state=status)


def deployment_advance(*, deployment_id: int, token: str) -> float | None:
    """Run one reconciler pass. Returns the countdown for the next pass, or None when the
    deployment is finished, locked by another worker, or this message is stale."""
    with transaction.atomic():
        dep = (
            Deployment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("target")
            .filter(pk=deployment_id)
            .first()
        )
        if dep is None or dep.status not in Deployment.ACTIVE or dep.run_token != token:
            return None
        now = timezone.now()
        records = {r.logical_id: r for r in dep.resources.select_for_update()}
        p = Pass(dep, records, graph_for(dep), context_for(dep), now=now)

        if dep.status == S.QUEUED:
            dep.status = S.DEPLOYING
            dep.started_at = now
            events.append(dep, kind="status", message="Deployment started", state=S.DEPLOYING)
        if dep.status == S.DEPLOYING and dep.cancel_requested:
            dep.status = S.ROLLING_BACK
            dep.reason = "Cancelled on request; removing what was created."
            events.append(dep, kind="status", message=dep.reason, state=S.ROLLING_BACK)

        if dep.status == S.DEPLOYING:
            if p.deploy():
                failed = [r for r in records.values() if r.state == R.FAILED]
                what = "; ".join(f"{r.logical_id}: {r.last_error}" for r in failed)
                if dep.keep_on_failure:
                    _finish(
                        dep,
                        S.FAILED,
                        f"Deployment failed ({what}). Resources were kept for debugging as "
                        "requested; destroy the deployment to remove them.",
                        now,
                    )
                else:
                    dep.status = S.ROLLING_BACK
                    dep.reason = f"Deployment failed ({what}); rolling back what was created."
                    events.append(dep, kind="status", message=dep.reason, state=S.ROLLING_BACK)
            elif all(r.state == R.READY for r in records.values()):
                _finish(dep, S.SUCCEEDED, f"All {len(records)} resources are ready.", now)

        if dep.status in (S.ROLLING_BACK, S.DESTROYING):
            if p.destroy():
                # Only what failed to delete: a node that failed to create keeps its error
                # until the walk in reverse reaches it.
                stuck = [r for r in records.values() if r.state == R.FAILED and r.delete_started_at]
                what = "; ".join(f"{r.logical_id}: {r.last_error}" for r in stuck)
                _finish(dep, S.DESTROY_FAILED, f"Could not delete everything ({what}).", now)
            elif all(r.state == R.DELETED for r in records.values()):
                if dep.status == S.DESTROYING:
                    _finish(dep, S.DESTROYED, f"All {len(records)} resources are deleted.", now)
                elif dep.cancel_requested:
                    _finish(dep, S.CANCELLED, "Cancelled; everything created was deleted.", now)
                else:
                    _finish(
                        dep, S.ROLLED_BACK, dep.reason.replace("rolling back", "rolled back"), now
                    )

        for lid in p.changed:
            records[lid].save()
        if p.progressed:
            dep.last_progress_at = now
        delay: float | None = None
        if dep.status in Deployment.ACTIVE:
            states = (
                (R.PENDING, R.CREATING)
                if dep.status == S.DEPLOYING
                else (R.PENDING, R.CREATING, R.READY, R.FAILED, R.DELETING)
            )
            delay = p.next_delay(states)
            dep.run_token = uuid.uuid4().hex
            dep.next_run_at = now + timedelta(seconds=delay)
        dep.save()
        if delay is not None:
            from deployer.tasks import schedule

            schedule(dep.pk, dep.run_token, delay)
        return delay
