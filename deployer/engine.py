"""The reconciler: one pass advances one deployment and says when the next is due.

A pass has three steps, and only the first and the last touch the database, each in a short
transaction:

1. **claim**: under the deployment's row lock, check the message's run token (a stale or
   duplicated message does nothing), take the deployment's *lease* and read its records;
2. **work**, outside any transaction: every node whose dependencies are ready is started (found
   by its tags, or created), every node AWS is still working on is looked at once, in waves of
   parallel AWS calls, until the pass's time budget is spent. The lease is extended while calls
   are in flight;
3. **record**: under the row lock again, write what was seen (records, numbered events,
   status), release the lease and return the next pass's countdown.

No transaction, and so no row lock (on SQLite: no database write lock), is held while AWS
answers: other deployments' passes, the pages and the API go on meanwhile. The lease keeps two
passes of one deployment from ever running at once; a pass killed with its worker stops
extending it and the next message takes over once it expires. Nothing here sleeps: the pass
returns how long until something is worth looking at again, and the task enqueues the next one.

Destroy (and rollback) walks the same graph in reverse: a node is deleted once everything that
depends on it is gone, and ``DependencyViolation`` is waited out with backoff, saying why.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
from deployer.graphs import deployment_graph
from deployer.models import Deployment, ResourceRecord
from deployer.resources import handler_for
from deployer.resources.base import AwsContext, Failed, Pending, Ready
from designer.graph import Ref, ResourceGraph, ResourceNode
from designer.names import UNIQUE_NAMES

logger = logging.getLogger(__name__)

S = Deployment.Status
R = ResourceRecord.State

#: The record fields a pass writes (and nothing else: a pass never overwrites other columns).
RECORD_FIELDS = [
    "state",
    "physical_id",
    "attributes",
    "attempts",
    "last_error",
    "waiting_reason",
    "next_check_at",
    "started_at",
    "ready_at",
    "delete_started_at",
    "deleted_at",
    "updated_at",
]


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def context_for(deployment: Deployment) -> AwsContext:
    target = deployment.target
    region = deployment.spec.get("region") or target.region
    return AwsContext(
        deployment_tag=deployment.identity,
        region=region,
        client=client_factory(
            region=region,
            endpoint_url=target.endpoint_url or None,
            role_arn=target.role_arn or None,
            external_id=target.external_id or None,
        ),
        spec_tags=dict(deployment.spec.get("tags") or {}),
        installation=deployment.installation,
        name_suffix=deployment.name_suffix,
        stack_name=deployment.spec.get("name", ""),
    )


class Unresolvable(LookupError):
    """A Ref points at a node that has no physical id (it was never created)."""


def resolve(value: Any, records: dict[str, Any]) -> Any:
    """Replace every Ref with the physical id or attribute it names."""
    if isinstance(value, Ref):
        record = records.get(value.logical_id)
        if record is None:
            raise Unresolvable(value.logical_id)
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


def node_properties(node: ResourceNode, records: dict[str, Any], ctx: AwsContext) -> dict:
    """The properties a handler is given: Refs resolved, and the names AWS makes unique per
    account made unique to this deployment (``designer/names.py``)."""
    props = resolve(node.properties, records)
    named = UNIQUE_NAMES.get(node.type)
    if named and isinstance(props.get(named[0]), str):
        props[named[0]] = ctx.unique_name(node, props[named[0]], named[1])
    return props


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
    """What the AWS half of one node's create-and-check step saw (see :meth:`Pass.aws_step`)."""

    physical_id: str
    phase: str
    started: str = ""  # "created" or "adopted" when this step started the node
    clean_create: bool = False  # created by a call botocore did not have to retry
    extras: list[str] = field(default_factory=list)  # twins found and deleted
    reasons: list[str] = field(default_factory=list)  # new pending reasons, in order
    result: Ready | Pending | Failed | None = None
    error: Exception | None = None


@dataclass
class DeleteStep:
    """What the AWS half of one node's delete-and-check step saw (see
    :meth:`Pass.delete_step`)."""

    ids: list[str] = field(default_factory=list)  # what is being deleted
    started: bool = False  # this step issued the deletes
    pending: str = ""  # why something is not gone yet ("" when everything is gone)
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
class Emitted:
    """An event the pass saw; numbered and saved when the pass records its outcome."""

    kind: str
    message: str
    logical_id: str
    state: str
    data: dict[str, Any]


@dataclass
class Pass:
    """The work of one pass, in memory: it reads and changes ``records`` and collects events,
    and touches no database (the engine writes both when the pass ends)."""

    #: None when the walk is not a deployment's (``manage.py orphans --delete``).
    deployment: Deployment | None
    records: dict[str, ResourceRecord]
    graph: ResourceGraph
    ctx: AwsContext
    now: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.monotonic)
    #: Called while AWS calls are in flight, so the pass keeps its lease.
    keepalive: Callable[[], None] = lambda: None
    changed: set[str] = field(default_factory=set)
    progressed: bool = False
    emitted: list[Emitted] = field(default_factory=list)

    # --- bookkeeping ---------------------------------------------------------------------------

    def event(
        self, kind: str, message: str, record: ResourceRecord | None = None, **data: Any
    ) -> None:
        self.emitted.append(
            Emitted(
                kind=kind,
                message=message,
                logical_id=record.logical_id if record else "",
                state=record.state if record else getattr(self.deployment, "status", ""),
                data=data,
            )
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

    def due(self, record: ResourceRecord) -> bool:
        return record.next_check_at is None or record.next_check_at <= self.now

    def run_in_threads(self, work: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        """``work`` over ``jobs`` in the AWS threads, results in order; the lease is kept
        while calls are in flight (a call may wait for AWS for many seconds)."""
        interval = max(0.5, _setting("GANTRY_PASS_LEASE", 10.0) / 4)
        futures: list[Future] = [_pool().submit(work, job) for job in jobs]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=interval, return_when=FIRST_COMPLETED)
            if pending:
                self.keepalive()
        return [f.result() for f in futures]

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
                        f"{self.label(node)}: {outcome.reason}",
                        record,
                        retry_at=record.next_check_at.isoformat(),
                    )
                return False
        logger.warning(
            "deployment %s: %s failed to %s: %s",
            self.ctx.deployment_tag,
            node.logical_id,
            doing,
            exc,
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
                if not self.due(record) or node.logical_id in looked_at:
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
                    props = node_properties(node, self.records, self.ctx)
                except Unresolvable as exc:
                    props = exc
                jobs.append((node, record.state, record.physical_id, record.waiting_reason, props))
            failed = False
            for (node, *_), step in zip(
                jobs, self.run_in_threads(self.aws_step, jobs), strict=True
            ):
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
            self.set_state(
                record,
                R.READY,
                f"{self.label(node)} is ready ({elapsed:.1f} s)",
                elapsed=round(elapsed, 1),
            )
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
        """Delete nodes in reverse order, in waves of parallel AWS calls like :meth:`deploy`; True
        when a node cannot be deleted.

        A node is deleted once every node that depends on it is gone; a node being deleted is
        looked at again when due. Nodes that are gone unlock the nodes they depended on within
        the same pass, until the time budget is spent.
        """
        dependents = self.graph.dependents()
        looked_at: set[str] = set()
        while not self.over_budget():
            jobs = []
            for node in self.graph.reversed():
                record = self.records[node.logical_id]
                if record.state == R.DELETED or node.logical_id in looked_at:
                    continue
                if not self.due(record):
                    continue
                if any(self.records[d].state != R.DELETED for d in dependents[node.logical_id]):
                    continue
                if record.state != R.DELETING:
                    record.delete_started_at = record.delete_started_at or self.now
                    try:
                        props = (
                            None
                            if node.meta.get("unplanned")
                            else node_properties(node, self.records, self.ctx)
                        )
                    except Unresolvable:
                        props = None  # a dependency never existed, so neither did this node
                else:
                    props = None
                ids = record.attributes.get("_deleting") or (
                    [record.physical_id] if record.physical_id else []
                )
                jobs.append((node, record.state, list(ids), props))
            if not jobs:
                return False
            failed = False
            for (node, *_), step in zip(
                jobs, self.run_in_threads(self.delete_step, jobs), strict=True
            ):
                looked_at.add(node.logical_id)
                failed = self.apply_delete(node, self.records[node.logical_id], step) or failed
            if failed:
                return True
        return False

    def delete_step(self, job: tuple) -> DeleteStep:
        """The AWS half of a delete, run in a pool thread: find what exists (a create may have
        taken effect without its answer being recorded: a worker killed mid-pass, a lost
        response), delete it, then look whether it is gone."""
        node, state, ids, props = job
        handler = handler_for(node.type)
        step = DeleteStep(ids=list(ids))
        try:
            if state != R.DELETING:
                if props is not None:
                    step.ids += [i for i in handler.find(self.ctx, node, props) if i not in ids]
                for physical_id in step.ids:
                    handler.delete(self.ctx, node, physical_id)
                step.started = True
            for physical_id in step.ids:
                result = handler.check_gone(self.ctx, node, physical_id)
                if isinstance(result, Pending):
                    step.pending = result.reason
        except Exception as exc:  # noqa: BLE001 - classified in apply_delete()
            step.error = exc
        return step

    def apply_delete(self, node: ResourceNode, record: ResourceRecord, step: DeleteStep) -> bool:
        """Record what a delete step saw; True when the node cannot be deleted."""
        if step.error is not None:
            return self.handle_error(node, record, step.error, "delete")
        if step.started and not step.ids:
            record.deleted_at = self.now
            self.set_state(
                record, R.DELETED, f"{self.label(node)} was never created; nothing to delete"
            )
            return False
        if step.started:
            record.physical_id = step.ids[0]
            record.attributes = {**record.attributes, "_deleting": step.ids}
            self.set_state(
                record, R.DELETING, f"Deleting {self.label(node)}: {', '.join(step.ids)}"
            )
        if not step.pending:
            record.deleted_at = self.now
            record.attributes = {k: v for k, v in record.attributes.items() if k != "_deleting"}
            self.set_state(record, R.DELETED, f"{self.label(node)} is deleted")
            return False
        record.next_check_at = self.now + timedelta(seconds=poll_delay(record, self.now))
        if record.waiting_reason != step.pending:
            record.waiting_reason = step.pending
            self.changed.add(record.logical_id)
            self.event("waiting", f"{self.label(node)}: {step.pending}", record)
        return False

    # --- scheduling ----------------------------------------------------------------------------

    def next_delay(self, states: tuple[str, ...]) -> float:
        """Seconds until the earliest node in ``states`` is due (0 when work is waiting now)."""
        due = [
            r.next_check_at for r in self.records.values() if r.state in states and r.next_check_at
        ]
        if self.over_budget() or not due:
            return 0.0
        return max(0.0, (min(due) - timezone.now()).total_seconds())


@dataclass(frozen=True)
class Next:
    """The next pass to enqueue: the task schedules it (the engine never enqueues)."""

    deployment_id: int
    token: str
    delay: float


def _lease_seconds() -> float:
    return _setting("GANTRY_PASS_LEASE", 10.0)


def _extend_lease(deployment_id: int, holder: str) -> None:
    """Keep the lease while the pass waits for AWS (a short write of its own)."""
    until = timezone.now() + timedelta(seconds=_lease_seconds())
    try:
        Deployment.objects.filter(pk=deployment_id, lease_holder=holder).update(
            lease_until=until, next_run_at=until
        )
    except Exception:  # noqa: BLE001 - a lease not extended only lets the next pass in sooner
        logger.warning("deployment %s: could not extend the pass lease", deployment_id)


def _finish(dep: Deployment, status: str, reason: str, now: datetime) -> None:
    dep.status = status
    dep.reason = reason
    dep.finished_at = now
    events.append(dep, kind="status", message=reason, state=status)


def _claim(
    deployment_id: int, token: str
) -> tuple[Deployment, dict[str, ResourceRecord], str] | Next | None:
    """Step 1 of a pass: take the lease. None for a stale message or a finished deployment;
    a :class:`Next` with a short countdown while another pass holds the lease."""
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
        if dep.lease_holder and dep.lease_until and dep.lease_until > now:
            # A pass started by an earlier message is still talking to AWS (a kick came in
            # meanwhile): look again shortly rather than run beside it.
            remaining = (dep.lease_until - now).total_seconds()
            return Next(dep.pk, token, min(0.5, remaining))
        if dep.status == S.QUEUED:
            dep.status = S.DEPLOYING
            dep.started_at = now
            events.append(dep, kind="status", message="Deployment started", state=S.DEPLOYING)
        if dep.status == S.DEPLOYING and dep.cancel_requested:
            dep.status = S.ROLLING_BACK
            dep.reason = "Cancelled on request; removing what was created."
            events.append(dep, kind="status", message=dep.reason, state=S.ROLLING_BACK)
        holder = uuid.uuid4().hex
        dep.lease_holder = holder
        dep.lease_until = dep.next_run_at = now + timedelta(seconds=_lease_seconds())
        dep.save(
            update_fields=[
                "status",
                "reason",
                "started_at",
                "lease_holder",
                "lease_until",
                "next_run_at",
                "last_event_seq",
            ]
        )
        records = {r.logical_id: r for r in dep.resources.all()}
    return dep, records, holder


def _record(dep_id: int, token: str, holder: str, p: Pass, failed: bool) -> Next | None:
    """Step 3 of a pass: write what it saw, decide the status, release the lease."""
    records = p.records
    with transaction.atomic():
        dep = Deployment.objects.select_for_update().get(pk=dep_id)
        if dep.lease_holder != holder:
            # The lease expired while this pass waited for AWS and another pass took over: its
            # view is newer. What this one created is found again by its tags.
            logger.warning("deployment %s: pass lost its lease; dropping its results", dep_id)
            return None
        now = timezone.now()
        for lid in p.changed:
            records[lid].save(update_fields=RECORD_FIELDS)
        for e in p.emitted:
            events.append(
                dep,
                kind=e.kind,
                message=e.message,
                logical_id=e.logical_id,
                state=e.state,
                data=e.data,
            )
        if dep.status == S.DEPLOYING:
            if failed:
                failures = [r for r in records.values() if r.state == R.FAILED]
                what = "; ".join(f"{r.logical_id}: {r.last_error}" for r in failures)
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
        elif dep.status in (S.ROLLING_BACK, S.DESTROYING):
            if failed:
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
        if p.progressed:
            dep.last_progress_at = now
        dep.lease_holder, dep.lease_until = "", None
        nxt: Next | None = None
        if dep.status in Deployment.ACTIVE:
            states = (
                (R.PENDING, R.CREATING)
                if dep.status == S.DEPLOYING
                else (R.PENDING, R.CREATING, R.READY, R.FAILED, R.DELETING)
            )
            delay = p.next_delay(states)
            dep.next_run_at = now + timedelta(seconds=delay)
            if dep.run_token == token:
                dep.run_token = uuid.uuid4().hex
                nxt = Next(dep.pk, dep.run_token, delay)
            # Otherwise a service kicked the deployment while this pass ran: the message it
            # enqueued is waiting for this lease to end and runs the next pass.
        dep.save(
            update_fields=[
                "status",
                "reason",
                "finished_at",
                "last_progress_at",
                "lease_holder",
                "lease_until",
                "next_run_at",
                "run_token",
                "last_event_seq",
            ]
        )
    return nxt


def deployment_advance(*, deployment_id: int, token: str) -> Next | None:
    """Run one reconciler pass. Returns the next pass to enqueue, or None when the deployment
    is finished, its row is locked by another worker's short step, or this message is stale."""
    claimed = _claim(deployment_id, token)
    if not isinstance(claimed, tuple):
        return claimed
    dep, records, holder = claimed
    p = Pass(
        dep,
        records,
        deployment_graph(dep),
        context_for(dep),
        keepalive=lambda: _extend_lease(dep.pk, holder),
    )
    failed = False
    if dep.status == S.DEPLOYING:
        failed = p.deploy()
    elif dep.status in (S.ROLLING_BACK, S.DESTROYING):
        failed = p.destroy()
    return _record(dep.pk, token, holder, p, failed)
