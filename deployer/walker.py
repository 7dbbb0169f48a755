"""The walker: one pass of work over a deployment's records, in memory, with AWS.

Every run is the same walk over the records: a *forward* phase creates and updates (a record
acts once every record it depends on, by logical id, is done for this run), then a *cleanup*
phase deletes in reverse (a record goes once every record being deleted that depends on it is
gone). What a run does to each record (create, update, delete, nothing) is set when the run
starts (``deployer.runs``):

- create: every record created;
- update: added and replacement records created, modified ones updated in place, the
  replaced and the removed deleted once everything new works (CloudFormation's cleanup);
- destroy, and the rollback of a create: every record deleted;
- the rollback of an update: what was created deleted, what was updated updated back.

A record starts as soon as what it needs of its dependencies is known (:meth:`Walk.ready_for`):
each one ready, or, when it refers only to attributes AWS answers at creation (an instance's
``PrivateDnsName``, a load balancer's ``DNSName``: ``EARLY_ATTRIBUTES``), created. A *held*
node (``meta["hold"]``, the Lambda function) is created with its hold's properties (no
reserved concurrency: nothing can invoke it) and released, given its planned properties, once
everything in the hold's ``until`` is ready; until then it is not settled, so the run is not
done. Only a create holds: an update of a function that already serves traffic waits for the
``until`` list instead, as it waited for its orderings before.

The walk does its AWS calls in parallel threads, in waves, until its time budget is spent;
it touches no database (the engine records what it saw) and never sleeps.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.utils import timezone

from deployer.aws import retries_seen
from deployer.constants import ResourceAction, ResourceState
from deployer.errors import ALREADY_EXISTS, Fatal, Retry, backoff, classify, error_code
from deployer.resources import handler_for
from deployer.resources.base import (
    EARLY_ATTRIBUTES,
    AwsContext,
    Created,
    Failed,
    Pending,
    Ready,
)
from designer.graph import Ref, ResourceNode, refs_in
from designer.names import UNIQUE_NAMES

logger = logging.getLogger(__name__)

R = ResourceState
ACT = ResourceAction
#: Types compared whole (``deployer.drift``): the pseudo-property listing what is on them.
CONTAINERS = {"AWS::EC2::SecurityGroup": "Rules", "AWS::EC2::RouteTable": "Routes"}
#: ``record.attributes`` key of a held resource: the properties it was created with instead of
#: the planned ones, until it is released.
HELD = "_held"


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


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
    """The properties a handler is given, and what is recorded as applied: Refs resolved, the
    names AWS makes unique per account made unique to this deployment (``designer/names.py``),
    and ``Tags`` with the gantry tags the resource carries (so an update never removes them and
    a drift check sees one taken off by hand)."""
    props = resolve(node.properties, records)
    named = UNIQUE_NAMES.get(node.type)
    if named and isinstance(props.get(named[0]), str):
        props[named[0]] = ctx.unique_name(node, props[named[0]], named[1])
    if isinstance(props.get("Tags"), list):
        planned = {t["Key"]: t for t in props["Tags"] if isinstance(t, dict) and "Key" in t}
        for key, value in ctx.tag_dict(node).items():
            planned[key] = {**planned.get(key, {}), "Key": key, "Value": value}
        props["Tags"] = list(planned.values())
    return props


def live_by_lid(records: Iterable[Any]) -> dict[str, Any]:
    """The node's resource now, per logical id: what Refs resolve to (a replacement once it
    exists, never the predecessor it replaces)."""
    return {r.logical_id: r for r in records if r.is_live}


def poll_delay(record: Any, now: datetime, expected: float | None = None) -> float:
    """How long until the next look at a resource AWS is still working on: a tenth of the time
    waited so far (GANTRY_POLL_FRACTION), between the configured bounds, so a wait is noticed
    within about 10 % of its length and neither AWS's API quota nor the worker is spent on
    looking.

    ``expected``: the shortest time AWS recently took to make a resource of this type ready
    for this target (learned by the engine from earlier creates). A create is not looked at
    before then: AWS has not been that fast lately, so a look would only cost a call."""
    created = _created_at(record)
    since = record.delete_started_at or created or record.started_at or now
    waited = max(0.0, (now - since).total_seconds())
    if expected and not record.delete_started_at and created and waited < expected:
        return expected - waited
    low, high = _setting("GANTRY_POLL_MIN", 0.5), _setting("GANTRY_POLL_MAX", 10.0)
    return min(high, max(low, waited / _setting("GANTRY_POLL_FRACTION", 10)))


#: ``record.attributes`` key: when the create call of the resource answered (ISO 8601), what
#: its wait to be ready is measured from.
CREATED = "_created"


def _created_at(record: Any) -> datetime | None:
    value = (record.attributes or {}).get(CREATED)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Step:
    """What the AWS half of one record's create-or-update step saw."""

    physical_id: str
    phase: str
    props: dict[str, Any] = field(default_factory=dict)
    started: str = ""  # "created", "adopted", "updating" or "released" when this step started it
    clean_create: bool = False  # created by a call botocore did not have to retry
    extras: list[str] = field(default_factory=list)  # twins found and deleted
    reasons: list[str] = field(default_factory=list)  # new pending reasons, in order
    result: Ready | Pending | Failed | None = None
    error: Exception | None = None


@dataclass
class DeleteStep:
    """What the AWS half of one record's delete-and-check step saw."""

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
    """An event the walk saw; numbered and saved when the pass records its outcome."""

    kind: str
    message: str
    logical_id: str
    state: str
    data: dict[str, Any]


@dataclass
class Walk:
    """The work of one pass, in memory: it reads and changes ``records`` and collects events,
    and touches no database (the engine writes both when the pass ends)."""

    #: None when the walk is not a deployment's (``manage.py orphans --delete``).
    deployment: Any
    records: list[Any]
    ctx: AwsContext
    now: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.monotonic)
    #: Called while AWS calls are in flight, so the pass keeps its lease.
    keepalive: Callable[[], None] = lambda: None
    #: Called with the records about to be created for the first time, before the calls: it
    #: must durably record that a create was attempted (True when it did). A record whose
    #: create was never attempted has nothing to find by its tags, so its create goes first;
    #: one whose attempt may have taken effect unseen (a worker killed, a lost answer) is
    #: looked up first. Without it (None) every create is looked up first. False: this pass
    #: lost its lease, so those creates are left to the pass that holds it.
    intend: Callable[[list[Any]], bool | None] = lambda records: None
    #: Records changed, by ``id()``: the engine saves them.
    changed: dict[int, Any] = field(default_factory=dict)
    progressed: bool = False
    emitted: list[Emitted] = field(default_factory=list)
    #: Per type, the shortest recent wait from create to ready (see :func:`poll_delay`).
    expected: dict[str, float] = field(default_factory=dict)
    #: Waits from create to ready seen by this pass, as (type, seconds): the engine learns them.
    learned: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._nodes: dict[int, ResourceNode] = {}
        self._wanted: dict[int, dict[str, set[str]]] = {}
        self.live = live_by_lid(self.records)

    # --- bookkeeping ---------------------------------------------------------------------------

    def node(self, record: Any) -> ResourceNode:
        key = id(record)
        if key not in self._nodes:
            self._nodes[key] = ResourceNode.from_json(record.node)
        return self._nodes[key]

    def touch(self, record: Any) -> None:
        self.changed[id(record)] = record

    def event(self, kind: str, message: str, record: Any = None, **data: Any) -> None:
        self.emitted.append(
            Emitted(
                kind=kind,
                message=message,
                logical_id=record.logical_id if record is not None else "",
                state=record.state
                if record is not None
                else getattr(self.deployment, "status", ""),
                data=data,
            )
        )

    def set_state(self, record: Any, state: str, message: str, **data: Any) -> None:
        record.state = state
        record.waiting_reason = ""
        self.touch(record)
        self.progressed = True
        self.event("resource", message, record, physical_id=record.physical_id, **data)

    def over_budget(self) -> bool:
        return time.monotonic() - self.started > _setting("GANTRY_PASS_BUDGET", 1.0)

    def label(self, record: Any) -> str:
        node = self.node(record)
        return f"{node.meta.get('label') or node.logical_id} ({node.logical_id})"

    def due(self, record: Any) -> bool:
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

    def handle_error(self, record: Any, exc: Exception, doing: str) -> bool:
        """Record an error; True when the record has failed for good."""
        outcome = classify(exc)
        record.attempts += 1
        self.touch(record)
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
                        f"{self.label(record)}: {outcome.reason}",
                        record,
                        retry_at=record.next_check_at.isoformat(),
                    )
                return False
        logger.warning(
            "deployment %s: %s failed to %s: %s",
            self.ctx.deployment_tag,
            record.logical_id,
            doing,
            exc,
        )
        record.last_error = outcome.text()
        self.set_state(
            record, R.FAILED, f"{self.label(record)} failed to {doing}: {outcome.text()}"
        )
        return True

    # --- which records move --------------------------------------------------------------------

    def forward_records(self) -> list[Any]:
        """Live records this run creates or updates, in creation order."""
        return [r for r in self.records if r.is_live and r.action in (ACT.CREATE, ACT.UPDATE)]

    def forward_done(self) -> bool:
        return all(r.settled for r in self.forward_records())

    def cleanup_records(self) -> list[Any]:
        return [r for r in self.records if r.action == ACT.DELETE]

    def done(self) -> bool:
        return self.forward_done() and all(r.state == R.DELETED for r in self.cleanup_records())

    def settled(self, logical_id: str) -> bool:
        """Whether the resource named ``logical_id`` is done for this run (a forward record
        waits for every dependency to be)."""
        record = self.live.get(logical_id)
        return record is not None and record.state == R.READY and record.settled

    def ready_for(self, record: Any, logical_id: str) -> bool:
        """Whether ``record`` has what it needs of its dependency ``logical_id``: the
        dependency done for this run, or, for a create that refers only to attributes AWS
        answered at the dependency's creation (``EARLY_ATTRIBUTES``), those attributes known.
        An ordering that is not a reference always waits for readiness."""
        if self.settled(logical_id):
            return True
        if record.state != R.PENDING:
            return False
        dep = self.live.get(logical_id)
        if dep is None or not dep.physical_id or dep.state in (R.PENDING, R.FAILED):
            return False
        wanted = self.attributes_wanted(record).get(logical_id)
        early = EARLY_ATTRIBUTES.get(dep.type, frozenset())
        return bool(wanted) and wanted <= early and all(a in dep.attributes for a in wanted)

    def attributes_wanted(self, record: Any) -> dict[str, set[str]]:
        """Per dependency, the attributes the record's properties refer to (``Id`` included)."""
        key = id(record)
        if key not in self._wanted:
            wanted: dict[str, set[str]] = {}
            node = self.node(record)
            for ref in refs_in(node.properties):
                wanted.setdefault(ref.logical_id, set()).add(ref.attribute)
            # An ordering no property shows has to wait for readiness.
            for dep in node.order_after():
                wanted.setdefault(dep, set()).add("")
            self._wanted[key] = wanted
        return self._wanted[key]

    def hold_until(self, record: Any) -> list[str]:
        """What a held node waits for before it is released (the nodes of this run's graph)."""
        known = {r.logical_id for r in self.records}
        return [lid for lid in self.node(record).hold_until() if lid in known]

    def held(self, record: Any) -> bool:
        return HELD in (record.attributes or {})

    def can_move(self, record: Any) -> bool:
        """Whether a forward record can take its next step now (its due time aside)."""
        node = self.node(record)
        if record.state == R.PENDING:
            return all(self.ready_for(record, d) for d in node.create_after())
        if record.state == R.READY:
            if self.held(record) and record.action == ACT.CREATE:
                # Created held: released once its path is ready.
                return all(self.settled(d) for d in self.hold_until(record))
            # An update: after what it depends on, and a held type after its hold's list.
            deps = [*node.depends_on, *self.hold_until(record)]
            return all(self.settled(d) for d in deps)
        return True

    # --- forward: create and update ------------------------------------------------------------

    def run(self) -> bool:
        """The pass's work: forward, then (once the forward phase is done) cleanup. True when a
        record failed for good."""
        if self.forward():
            return True
        if self.forward_done():
            return self.cleanup()
        return False

    def forward(self) -> bool:
        """Create and update in waves; True when a record failed for good.

        Each wave takes every record that can move now (its dependencies all done for this
        run, and due for a look), does its AWS calls in parallel threads (no database work
        there), then records the outcomes in order. Records that are done unlock the next wave
        within the same pass, until the pass's time budget is spent.
        """
        looked_at: set[int] = set()
        while not self.over_budget():
            wave = []
            for record in self.forward_records():
                if record.settled or id(record) in looked_at or not self.due(record):
                    continue
                if record.state == R.FAILED:
                    continue
                if not self.can_move(record):
                    continue
                wave.append(record)
            if not wave:
                return False
            jobs = []
            fresh = [r for r in wave if r.state == R.PENDING and r.started_at is None]
            # No create is made whose intent is not recorded first: a later pass skips the
            # lookup by tags only for a record that was never attempted, so a create made
            # while the database failed to say so would be made again (a duplicate, or a
            # subnet's range "conflicts"). The database failing here fails the pass before
            # any AWS call; the task retries it.
            first: set[int] = set()
            recorded = self.intend(fresh) if fresh else None
            if recorded is False:
                # The lease is gone (another pass holds the deployment): leave the creates to
                # it, attempted and recorded there.
                skipped = {id(r) for r in fresh}
                wave = [r for r in wave if id(r) not in skipped]
                if not wave:
                    return False
            elif recorded:
                first = {id(r) for r in fresh}
            for record in wave:
                node = self.node(record)
                if record.state in (R.PENDING, R.READY):
                    record.started_at = (
                        self.now if record.state == R.READY else (record.started_at or self.now)
                    )
                try:
                    props = node_properties(node, self.live, self.ctx)
                except Unresolvable as exc:
                    props = exc
                hold = node.hold()
                release = (
                    record.state == R.READY and record.action == ACT.CREATE and self.held(record)
                )
                if (
                    hold
                    and record.action == ACT.CREATE
                    and record.state != R.READY
                    and isinstance(props, dict)
                ):
                    # Created (or still becoming ready) held: nothing can invoke it yet.
                    props = {**props, **(hold.get("properties") or {})}
                before = drifted_before(record, record.applied or record.prior_applied or {})
                if (
                    record.action == ACT.UPDATE
                    and record.type in CONTAINERS
                    and isinstance(props, dict)
                ):
                    before, props = self.container_change(record, before, props)
                jobs.append(
                    (
                        node,
                        record.action,
                        record.state,
                        record.physical_id,
                        record.waiting_reason,
                        props,
                        before,
                        release,
                        id(record) in first,
                    )
                )
            failed = False
            for record, step in zip(wave, self.run_in_threads(self.aws_step, jobs), strict=True):
                looked_at.add(id(record))
                # Every step of the wave is recorded, failed or not: the others may have
                # created resources that a rollback must know about.
                failed = self.apply(record, step) or failed
            if failed:
                return True
        return False

    def container_change(
        self, record: Any, before: dict[str, Any], after: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A security group or route table is changed whole: what may stay on it (the planned
        rules or routes, ``after``), and what the last drift check found on it (``before``),
        so an update removes what was added by hand."""
        from deployer.drift import expected_properties

        key = CONTAINERS[record.type]
        expected = expected_properties(self.records, self.ctx).get(id(record), {})
        # What the last drift check found on it is in ``before`` (drifted_before).
        return {key: [], **before}, {**after, key: expected.get(key, [])}

    def aws_step(self, job: tuple) -> Step:
        """The AWS half of a step, run in a pool thread: find or create (or update), then look.
        It touches no record and no database; :meth:`apply` does that in the pass's thread."""
        node, action, state, physical_id, last_reason, props, before, release, first = job
        handler = handler_for(node.type)
        phase = (
            "create"
            if state == R.PENDING
            else ("update" if state == R.READY and action == ACT.UPDATE else "become ready")
        )
        if release:
            phase = "release"
        step = Step(physical_id=physical_id, phase=phase)
        try:
            if isinstance(props, Exception):
                raise props
            step.props = props
            if release:
                step.started = "released"
                releasing = getattr(handler, "release", None)
                if releasing is not None:
                    # The handler knows its release takes effect when AWS answers it.
                    step.result = releasing(self.ctx, node, physical_id, before, props)
                    return step
                step.physical_id = (
                    _update(handler, self.ctx, node, physical_id, before, props) or physical_id
                )
                step.clean_create = True
                step.phase = "become ready"
            elif state == R.PENDING:
                # A first attempt (recorded as such before it started) has nothing to find.
                found = [] if first else handler.find(self.ctx, node, props)
                if found:
                    step.physical_id, step.started = found[0], "adopted"
                    step.extras += self.delete_twins(node, found[1:])
                    # What a lost answer left unfinished (attributes, policies, rules) is put
                    # right the way any change is.
                    _update(handler, self.ctx, node, step.physical_id, {}, props)
                else:
                    with retries_seen() as seen:
                        try:
                            made = handler.create(self.ctx, node, props)
                        except ClientError as exc:
                            made = self.adopt_after_conflict(node, props, exc)
                    step.physical_id = str(made)
                    step.started, step.clean_create = "created", not seen.any
                    if isinstance(made, Created) and step.clean_create:
                        # Its create's answer shows it usable: nothing to look at again.
                        step.result = made.ready
                        step.phase = "become ready"
                        return step
                step.phase = "become ready"
            elif state == R.READY and action == ACT.UPDATE:
                step.physical_id = (
                    _update(handler, self.ctx, node, physical_id, before, props) or physical_id
                )
                step.started, step.clean_create = "updating", True
                step.phase = "become ready"
            # A handler reporting progress of its own (its reason changed) is looked at again
            # at once rather than after a poll.
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

    def apply(self, record: Any, step: Step) -> bool:
        """Record what a forward step saw; True when the record failed for good."""
        label = self.label(record)
        hold = self.node(record).hold()
        if step.started in ("created", "adopted"):
            record.physical_id = step.physical_id
            record.next_check_at = self.now
            record.attributes = {**record.attributes, CREATED: timezone.now().isoformat()}
            if hold and record.action == ACT.CREATE:
                record.attributes = {
                    **record.attributes,
                    HELD: dict(hold.get("properties") or {}),
                }
            verb = (
                f"already exists as {step.physical_id}; adopting it"
                if step.started == "adopted"
                else f"creating {step.physical_id}"
            )
            self.set_state(record, R.CREATING, f"{label}: {verb}")
        elif step.started == "updating":
            record.physical_id = step.physical_id
            record.next_check_at = self.now
            names = ", ".join(sorted(_changed(record.applied or record.prior_applied, step.props)))
            self.set_state(
                record, R.UPDATING, f"{label}: updating in place" + (f" ({names})" if names else "")
            )
        for extra in step.extras:
            self.event(
                "duplicate",
                f"{label}: found a second resource {extra} with the same tags "
                f"(a retried create whose first response was lost); keeping {record.physical_id} "
                f"and deleting {extra}",
                record,
                duplicate=extra,
            )
        if step.error is not None:
            return self.handle_error(record, step.error, step.phase)
        result = step.result
        if isinstance(result, Ready) and step.started == "released":
            record.attributes = {
                k: v for k, v in {**record.attributes, **result.attributes}.items() if k != HELD
            }
            record.applied = step.props
            record.settled = True
            record.attempts = 0
            names = ", ".join(f"{k} {v}" for k, v in sorted(_changed_values(step.props, hold)))
            self.set_state(
                record,
                R.READY,
                f"{label} is released ({names}): everything its traffic crosses is ready",
            )
            return False
        if isinstance(result, Ready):
            created = _created_at(record)
            record.attributes = {
                k: v for k, v in {**record.attributes, **result.attributes}.items() if k != CREATED
            }
            record.applied = step.props
            record.attempts = 0
            record.ready_at = timezone.now()
            if created and record.action == ACT.CREATE and step.started != "created":
                # Seen ready by a later look: how long AWS took, for the next ones' first look.
                self.learned.append((record.type, (record.ready_at - created).total_seconds()))
            elapsed = (record.ready_at - (record.started_at or self.now)).total_seconds()
            verb = "is updated" if record.action == ACT.UPDATE else "is ready"
            if self.held(record) and record.action == ACT.CREATE:
                # Not done for this run until released (the run is not done before).
                record.settled = False
                record.next_check_at = None
                held = ", ".join(f"{k} {v}" for k, v in sorted(record.attributes[HELD].items()))
                self.set_state(
                    record,
                    R.READY,
                    f"{label} {verb} ({elapsed:.1f} s), held ({held}) until its traffic path "
                    "is ready",
                    elapsed=round(elapsed, 1),
                )
                return False
            # An update gives a function still held (a run that failed before releasing it)
            # its planned properties: it is released with them.
            record.attributes = {k: v for k, v in record.attributes.items() if k != HELD}
            record.settled = True
            self.set_state(
                record, R.READY, f"{label} {verb} ({elapsed:.1f} s)", elapsed=round(elapsed, 1)
            )
            return False
        if isinstance(result, Failed):
            record.last_error = result.reason
            self.set_state(record, R.FAILED, f"{label} failed: {result.reason}")
            return True
        assert isinstance(result, Pending)  # noqa: S101
        if result.attributes:
            # Known before the resource is ready: what refers only to them can start.
            record.attributes = {**record.attributes, **result.attributes}
            self.touch(record)
            self.progressed = True
        expected = self.expected.get(record.type) if record.action == ACT.CREATE else None
        record.next_check_at = self.now + timedelta(seconds=poll_delay(record, self.now, expected))
        for reason in step.reasons:
            self.event("waiting", f"{label}: {reason}", record)
        if record.waiting_reason != result.reason:
            record.waiting_reason = result.reason
            self.touch(record)
        return False

    # --- cleanup: delete in reverse ------------------------------------------------------------

    def cleanup(self) -> bool:
        """Delete the records this run deletes, in reverse dependency order and in waves of
        parallel AWS calls like :meth:`forward`; True when one cannot be deleted.

        A record goes once every other record being deleted whose node depends on it is gone;
        one being deleted is looked at again when due.
        """
        doomed = self.cleanup_records()
        looked_at: set[int] = set()
        while not self.over_budget():
            remaining = [r for r in doomed if r.state != R.DELETED]
            waiting_on: set[str] = set()
            for record in remaining:
                waiting_on |= {d for d in self.node(record).depends_on if d != record.logical_id}
            jobs, wave = [], []
            for record in reversed(remaining):
                if id(record) in looked_at or not self.due(record):
                    continue
                if record.logical_id in waiting_on:
                    # Another record still being deleted depends on this one.
                    holders = [
                        r
                        for r in remaining
                        if r is not record and record.logical_id in self.node(r).depends_on
                    ]
                    if holders:
                        continue
                node = self.node(record)
                if record.state != R.DELETING:
                    record.delete_started_at = record.delete_started_at or self.now
                    props = None
                    if not node.meta.get("unplanned"):
                        try:
                            props = node_properties(
                                node, {**self.live, **_by_lid(doomed)}, self.ctx
                            )
                        except Unresolvable:
                            props = None  # a dependency never existed, so neither did this one
                else:
                    props = None
                ids = record.attributes.get("_deleting") or (
                    [record.physical_id] if record.physical_id else []
                )
                jobs.append((node, record.state, list(ids), props))
                wave.append(record)
            if not jobs:
                return False
            failed = False
            for record, step in zip(wave, self.run_in_threads(self.delete_step, jobs), strict=True):
                looked_at.add(id(record))
                failed = self.apply_delete(record, step) or failed
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
                # A create may have taken effect without its answer being recorded: look by
                # tags too (they name the generation, so a replaced resource's successor is
                # never taken for it).
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

    def apply_delete(self, record: Any, step: DeleteStep) -> bool:
        """Record what a delete step saw; True when the record cannot be deleted."""
        label = self.label(record)
        if step.error is not None:
            return self.handle_error(record, step.error, "delete")
        if step.started and not step.ids:
            record.deleted_at = self.now
            record.settled = True
            self.set_state(record, R.DELETED, f"{label} was never created; nothing to delete")
            return False
        if step.started:
            record.physical_id = step.ids[0]
            record.attributes = {**record.attributes, "_deleting": step.ids}
            self.set_state(record, R.DELETING, f"Deleting {label}: {', '.join(step.ids)}")
        if not step.pending:
            record.deleted_at = self.now
            record.settled = True
            record.attributes = {k: v for k, v in record.attributes.items() if k != "_deleting"}
            self.set_state(record, R.DELETED, f"{label} is deleted")
            return False
        record.next_check_at = self.now + timedelta(seconds=poll_delay(record, self.now))
        if record.waiting_reason != step.pending:
            record.waiting_reason = step.pending
            self.touch(record)
            self.event("waiting", f"{label}: {step.pending}", record)
        return False

    # --- scheduling ----------------------------------------------------------------------------

    def next_delay(self) -> float:
        """Seconds until the earliest record with work left is due (0 when work waits now)."""
        if self.over_budget():
            return 0.0
        due = [
            r.next_check_at
            for r in self.records
            if r.next_check_at
            and r.state != R.FAILED
            and (
                (r.is_live and r.action in (ACT.CREATE, ACT.UPDATE) and not r.settled)
                or (r.action == ACT.DELETE and r.state != R.DELETED)
            )
        ]
        if not due:
            return 0.0
        return max(0.0, (min(due) - timezone.now()).total_seconds())


def drifted_before(record: Any, before: dict[str, Any]) -> dict[str, Any]:
    """What an update starts from: what was applied, with what the last drift check found
    instead where it differed (a repair must change what AWS has, not what Gantry recorded)."""
    if not record.drift_differences:
        return before
    found = {d["property"]: d.get("actual") for d in record.drift_differences if "property" in d}
    return {**before, **found}


def _update(
    handler: Any, ctx: AwsContext, node: ResourceNode, pid: str, before, after
) -> str | None:
    """The handler's update; a new physical id when the update gave the resource one (an
    inline policy moved to another role or renamed: its id is ``role|name``)."""
    moved = handler.update(ctx, node, pid, before, after)
    return moved if isinstance(moved, str) and moved else None


def _by_lid(records: Iterable[Any]) -> dict[str, Any]:
    """Records by logical id (the latest generation wins), for resolving what a record being
    deleted refers to."""
    out: dict[str, Any] = {}
    for record in sorted(records, key=lambda r: r.generation):
        out[record.logical_id] = record
    return out


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def _changed_values(props: dict[str, Any], hold: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The planned values a release gives the properties a hold overrode."""
    held = (hold or {}).get("properties") or {}
    return [(k, props.get(k)) for k in held]
